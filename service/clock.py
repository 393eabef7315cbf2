"""The system clock, behind the :class:`service.ports.Clock` protocol so that time stays an argument."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)
