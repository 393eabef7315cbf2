"""The daemon's schedule: the config's crontab expression as an APScheduler trigger, with jitter.

APScheduler 3 reads a crontab's day-of-week field with 0 = Monday (its own numbering, see
``CronTrigger.from_crontab``'s warning), where cron means 0 = Sunday: ``0 3 * * 0`` would run on
Mondays. The field is translated into weekday names here so that the expression means what cron says.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from apscheduler.triggers.cron import CronTrigger

# Cron's weekday numbers: 0 and 7 are Sunday.
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _day(token: str) -> int:
    token = token.strip().lower()
    if token[:3] in _CRON_DAYS and token.isalpha():
        return _CRON_DAYS.index(token[:3])
    number = int(token)
    if not 0 <= number <= 7:
        raise ValueError(f"day of week {number} is not between 0 and 7")
    return number


def cron_weekdays(field: str) -> str:
    """A crontab day-of-week field in weekday names, which APScheduler reads the way cron does."""
    if field.strip() == "*":
        return "*"
    days: set[int] = set()
    for item in field.split(","):
        spec, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"step {step} in {field!r} must be at least 1")
        if spec == "*":
            first, last = 0, 6
        elif "-" in spec:
            start, _, end = spec.partition("-")
            first, last = _day(start), _day(end)
        else:
            first = _day(spec)
            last = 6 if step_text else first  # `1/2`: from Monday on, every other day
        if last < first:
            raise ValueError(f"the range {spec!r} in {field!r} runs backwards")
        days.update(day % 7 for day in range(first, last + 1, step))
    # In cron's order (Sunday first) so the field reads like the expression it came from.
    return ",".join(_CRON_DAYS[day] for day in sorted(days))


def cron_trigger(expression: str, jitter: timedelta = timedelta(0)) -> CronTrigger:
    """The trigger for a 5-field crontab expression, in UTC, each fire time moved by up to ``jitter``."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"a crontab expression has 5 fields, not {len(fields)}: {expression!r}")
    minute, hour, day, month, day_of_week = fields
    seconds = int(jitter.total_seconds())
    options: dict[str, Any] = {"jitter": seconds} if seconds > 0 else {}
    return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=cron_weekdays(day_of_week),
                       timezone=UTC, **options)
