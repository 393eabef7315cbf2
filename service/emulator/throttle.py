"""Service-side throttling: at most so many requests per window for each key (a tenant for Graph, the vault).

Graph throttles an app in a tenant (each request inside a `$batch` counts on its own); Key Vault counts the
operations on a vault. Over the limit the service answers 429 with a Retry-After saying when the window
has room again. Windows slide over real (monotonic) time, not the emulator's clock, which tests move by days.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class Throttle:
    """A sliding-window counter per key; ``limit`` None lets everything through."""

    def __init__(
        self, limit: int | None = None, window: float = 10.0, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.refused = 0  # requests answered 429 so far
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._monotonic = monotonic

    def take(self, key: str) -> int | None:
        """Count one request for ``key``; None if it may go on, else the whole seconds to wait (Retry-After)."""
        if self.limit is None:
            return None
        now = self._monotonic()
        with self._lock:
            seen = self._seen.setdefault(key, deque())
            while seen and seen[0] <= now - self.window:
                seen.popleft()
            if len(seen) < self.limit:
                seen.append(now)
                return None
            self.refused += 1
            return max(1, math.ceil(seen[0] + self.window - now))
