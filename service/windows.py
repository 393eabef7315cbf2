"""Maintenance windows: when a change may be made, as pure arithmetic on wall-clock times in an IANA zone.

A :class:`Window` opens on each of its ``days`` at ``start`` in its zone and closes at ``end`` (the next
day when ``end`` is not after ``start``: a window across midnight belongs to the day it opens on). The
times are the wall clock's, so a window keeps its hours across daylight saving changes. A wall time the
clock skips (02:30 on the night clocks go forward) is read as if the clock had not jumped, one hour later
by the new clock; a wall time the clock shows twice (02:30 on the night clocks go back) is its first
showing, so a window over that hour stays open through both. Both are :mod:`zoneinfo`'s own rules (PEP 495,
``fold=0``).

Nothing here reads the clock: ``now`` is an argument, an aware datetime.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = date.weekday()
MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True)
class Window:
    """One weekly maintenance window: ``days`` (0 = Monday … 6 = Sunday, the days it opens on), ``start`` and
    ``end`` in minutes after local midnight (``end`` up to 1440, 24:00; not after ``start``: the next day),
    and the IANA ``zone`` its wall-clock times are in."""

    days: frozenset[int]
    start: int
    end: int
    zone: str

    def spans(self, around: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Each opening and closing (in UTC) whose opening day is from the day before
        ``around`` (a window across midnight may still be open) to a week after it; a span that the rules for
        skipped wall times leave empty is left out."""
        zone = ZoneInfo(self.zone)
        today = around.astimezone(zone).date()
        for offset in range(-1, 8):
            day = today + timedelta(days=offset)
            if day.weekday() not in self.days:
                continue
            # In UTC: aware datetimes of one zone compare by wall clock, which the hours around a change mislead.
            opening = _at(day, self.start, zone).astimezone(UTC)
            closing = _at(day + timedelta(days=1) if self.end <= self.start else day, self.end, zone).astimezone(UTC)
            if closing > opening:
                yield opening, closing

    def describe(self) -> str:
        """The window in the words of the config: ``mon-fri 08:00-17:00 Europe/Amsterdam``."""
        return f"{describe_days(self.days)} {clock_text(self.start)}-{clock_text(self.end)} {self.zone}"


def _at(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """``minutes`` after midnight on ``day`` by the wall clock of ``zone`` (24:00 is the next midnight)."""
    if minutes == MINUTES_PER_DAY:
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=zone)


def is_open(windows: Sequence[Window], now: datetime) -> bool:
    """Whether some window is open at ``now`` (opening included, closing excluded)."""
    return any(opening <= now < closing for w in windows for opening, closing in w.spans(now))


def next_opening(windows: Sequence[Window], now: datetime) -> datetime | None:
    """The first moment from ``now`` on when some window is open (``now`` itself while one is), in UTC; None
    when there are no windows (or none opens within a week, which a valid window cannot do)."""
    now = now.astimezone(UTC)
    times = [max(opening, now) for w in windows for opening, closing in w.spans(now) if closing > now]
    return min(times, default=None)


def clock_text(minutes: int) -> str:
    """Minutes after midnight as the config writes them: ``08:00``, ``24:00``."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def describe_days(days: frozenset[int]) -> str:
    """Days as short names, runs of three or more as ranges: ``mon-fri,sun``."""
    parts: list[str] = []
    run: list[int] = []
    for day in [*sorted(days), None]:
        if day is not None and run and day == run[-1] + 1:
            run.append(day)
            continue
        if run:
            names = [DAY_NAMES[d] for d in run]
            parts += [f"{names[0]}-{names[-1]}"] if len(run) >= 3 else names
        run = [day] if day is not None else []
    return ",".join(parts)
