"""Time: the system clock behind the :class:`service.ports.Clock` port, and the one way a time is written.

Nothing else in the service reads the time: the engine, the runner and the daemon ask the clock they
were given, so that a test (or the emulator's clock) decides what time it is.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import overload

# UTC ISO 8601 to the second with a Z: log fields, `plan`/`status` output, push bodies, credential names.
STAMP = "%Y-%m-%dT%H:%M:%SZ"


class SystemClock:
    """The machine's clock: wall time in UTC, and a monotonic clock for measuring how long things take."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """Seconds from an arbitrary start that never go backwards (:func:`time.monotonic`)."""
        return time.monotonic()


@overload
def iso(value: datetime) -> str: ...


@overload
def iso(value: None) -> None: ...


@overload
def iso(value: datetime | None) -> str | None: ...


def iso(value: datetime | None) -> str | None:
    """``value`` in UTC as ``2026-01-02T03:04:05Z`` (:data:`STAMP`); None stays None."""
    return value.astimezone(UTC).strftime(STAMP) if value is not None else None
