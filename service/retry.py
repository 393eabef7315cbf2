"""Bounded retries of transient remote failures, honouring ``Retry-After``.

The SDKs' own retry middleware is switched off (msgraph's RetryHandler would retry ``addPassword`` and
create duplicates); every adapter retries through :func:`retrying`, so that the cap, the budget and
the decision of what is transient live in one place.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

from service.errors import RemoteError

T = TypeVar("T")

# Statuses that say "try again later" for every service we call.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How patient an adapter is with transient failures (see :func:`retrying`)."""

    attempts: int = 4  # the first try included
    base_delay: float = 0.5  # seconds; doubled each retry when the server gives no Retry-After
    max_delay: float = 30.0  # no single wait is longer, whatever Retry-After says
    budget: float = 90.0  # no retry starts later than this after the first try


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def delay_for(attempt: int, retry_after: float | None, policy: RetryPolicy) -> float:
    """How long to wait before retry number ``attempt`` (1 = the first retry)."""
    if retry_after is not None:
        return min(retry_after, policy.max_delay)
    return float(min(policy.base_delay * 2 ** (attempt - 1), policy.max_delay))


async def retrying(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    on_retry: Callable[[RemoteError, float], None] | None = None,
    observe: Callable[[str], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> T:
    """``await call()``, retrying RemoteErrors marked transient within the policy's attempts and budget.

    ``observe`` is told each attempt's outcome: ``ok``, ``transient`` or ``error`` (for metrics).
    """
    started = monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            result = await call()
        except RemoteError as error:
            if observe is not None:
                observe("transient" if error.transient else "error")
            if not error.transient or attempt >= policy.attempts:
                raise
            wait = delay_for(attempt, error.retry_after, policy)
            if monotonic() - started + wait > policy.budget:
                raise
            if on_retry is not None:
                on_retry(error, wait)
            await sleep(wait)
        else:
            if observe is not None:
                observe("ok")
            return result
