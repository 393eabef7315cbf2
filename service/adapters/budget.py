"""Staying inside a service's request budget: a token bucket per budget, and a pause when the service says so.

Graph allows an app about 3,500 requests per 10 s in a tenant, each request inside a ``$batch`` counted on
its own; Key Vault 4,000 operations per 10 s on a vault. A bucket that holds ``burst`` tokens and gains
``(limit - burst) / window`` a second never lets more than ``limit`` through in any window, however long
the pass: it can empty its bucket once, then gains at most ``limit - burst`` in the window. A 429's
Retry-After pauses the whole budget: the service is telling every request of this caller, not one. Nothing
is saved up during a pause: after it, requests resume at the budget's rate, not in a burst that the
service would answer with the next 429.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """At most ``requests`` per ``window`` seconds."""

    requests: int
    window: float = 10.0

    @property
    def burst(self) -> int:
        """What may go at once: a tenth of the window's budget."""
        return max(1, self.requests // 10)

    @property
    def rate(self) -> float:
        """Tokens gained a second."""
        return (self.requests - self.burst) / self.window

    def shared(self, processes: int) -> Limit:
        """This limit split evenly over ``processes`` that spend it at once without telling each other (a
        pass's workers and the Indexed Job's pods all reading one vault): together they stay within it."""
        return Limit(max(1, self.requests // max(1, processes)), self.window)


# Microsoft's documented limits, with a margin for the other callers an app or a vault may have.
GRAPH_LIMIT = Limit(3_000)  # Graph: ~3,500 requests / 10 s per app per tenant (directory reads and writes)
VAULT_LIMIT = Limit(3_500)  # Key Vault: 4,000 operations / 10 s per vault


class Budget:
    """One caller's budget at one service (an app in a tenant, a vault): ``await take(n)`` before n requests."""

    def __init__(
        self,
        limit: Limit,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limit = limit
        self._monotonic = monotonic
        self._sleep = sleep
        self._tokens = float(limit.burst)
        self._stamp = monotonic()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self.waited = 0.0  # seconds spent waiting for room, all callers together (for the bench)

    def pause(self, seconds: float) -> None:
        """No request goes for ``seconds`` from now (a 429's Retry-After); a longer pause already set stays.
        When it ends, one request may go at once and the rest at the budget's rate."""
        until = self._monotonic() + seconds
        if until > self._paused_until:
            self._paused_until = until
            self._tokens = min(self._tokens, 1.0)

    async def take(self, n: int = 1) -> None:
        """Wait until ``n`` requests fit in the budget, then count them. Callers go in the order they came."""
        need = min(float(n), float(self.limit.burst))  # a batch larger than the burst waits for a full bucket
        async with self._lock:
            while True:
                now = self._monotonic()
                gaining_since = max(self._stamp, self._paused_until)  # nothing is gained while paused
                if now > gaining_since:
                    gained = (now - gaining_since) * self.limit.rate
                    self._tokens = min(float(self.limit.burst), self._tokens + gained)
                self._stamp = now
                wait = self._paused_until - now
                # Within a hair: a refill computed to just under one token must not wait for nothing forever.
                if wait <= 0 and self._tokens >= need - 1e-6:
                    self._tokens -= n
                    return
                wait = max(wait, (need - self._tokens) / self.limit.rate)
                self.waited += wait
                await self._sleep(wait)
