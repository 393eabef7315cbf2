"""The emulator's notion of time: real time plus an offset that tests move.

Entra, Graph and Key Vault all judge expiry against their own clock, so the emulator does the same with
this one. Advancing it lets a test make a secret expire without waiting and without patching
``datetime`` anywhere in the code under test.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class Clock:
    """Aware UTC time that runs with the wall clock and can be pushed forward (or set) by tests."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self._offset = offset
        # Seeding runs on the test's thread while requests are served on the emulator's.
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            offset = self._offset
        return datetime.now(UTC) + offset

    def monotonic(self) -> float:
        """The machine's monotonic seconds: moving the clock makes things expire, it never shortens a wait."""
        return time.monotonic()

    @property
    def offset(self) -> timedelta:
        with self._lock:
            return self._offset

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._offset += delta

    def set_offset(self, offset: timedelta) -> None:
        with self._lock:
            self._offset = offset
