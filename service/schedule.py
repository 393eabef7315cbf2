"""The daemon's schedule: the config's crontab expression, checked without APScheduler and read by it.

APScheduler 3 reads a crontab's day-of-week field with 0 = Monday (its own numbering, see
``CronTrigger.from_crontab``'s warning), where cron means 0 = Sunday: ``0 3 * * 0`` would run on
Mondays. The field is translated into weekday names here so that the expression means what cron says.

``config check`` validates the expression with :func:`check_crontab`, which reads each field by
APScheduler 3's own grammar (tests/unit/test_schedule.py holds the two to the same verdicts) without
importing it: the scheduler is the daemon's business, and costs a tenth of a second to import.
"""

from __future__ import annotations

import re
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

# Cron's weekday numbers: 0 and 7 are Sunday.
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# The first four fields and their bounds, as APScheduler 3 checks them (a day is at most 31 in any month).
_BOUNDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12))
# APScheduler 3's expressions. A month name and `last` are matched at the start of the item, as it does.
_EVERY = re.compile(r"\*(?:/(?P<step>\d+))?$")
_RANGE = re.compile(r"(?P<first>\d+)(?:-(?P<last>\d+))?(?:/(?P<step>\d+))?$")
_MONTH_NAMES = re.compile(r"(?P<first>[a-z]+)(?:-(?P<last>[a-z]+))?", re.IGNORECASE)
_LAST_DAY = re.compile(r"last", re.IGNORECASE)
_SEPARATOR = re.compile(" *, *")


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


def _crontab_fields(expression: str) -> list[str]:
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"a crontab expression has 5 fields, not {len(fields)}: {expression!r}")
    return fields


def check_crontab(expression: str) -> None:
    """Raise ValueError saying what is wrong when :func:`cron_trigger` would refuse ``expression``."""
    fields = _crontab_fields(expression)
    for (name, low, high), field in zip(_BOUNDS, fields, strict=False):
        for item in _SEPARATOR.split(field.strip()):
            _check_item(name, low, high, item)
    cron_weekdays(fields[4])


def _number(text: str | None) -> int | None:
    return None if text is None else int(text)


def _check_item(name: str, low: int, high: int, item: str) -> None:
    if every := _EVERY.match(item):
        step = _number(every["step"])
        if step == 0:
            raise ValueError(f"{item!r} in the {name} field: a step must be at least 1")
        if step and step > high - low:
            raise ValueError(f"{item!r} in the {name} field: the step is larger than the range ({high - low})")
        return
    if numbers := _RANGE.match(item):
        first, last, step = int(numbers["first"]), _number(numbers["last"]), _number(numbers["step"])
        _check_range(name, low, high, item, first, last, step)
        return
    if name == "day" and _LAST_DAY.match(item):
        return  # the month's last day
    if name == "month" and (names := _MONTH_NAMES.match(item)):
        last_month = _month(item, names["last"]) if names["last"] else None
        _check_range(name, low, high, item, _month(item, names["first"]), last_month, None)
        return
    raise ValueError(f"{item!r} is not an expression the {name} field takes")


def _month(item: str, name: str) -> int:
    if name.lower() not in _MONTHS:
        raise ValueError(f"{item!r} in the month field: {name!r} is not a month's name (jan ... dec)")
    return _MONTHS.index(name.lower()) + 1


def _check_range(name: str, low: int, high: int, item: str, first: int, last: int | None, step: int | None) -> None:
    where = f"{item!r} in the {name} field"
    if step == 0:
        raise ValueError(f"{where}: a step must be at least 1")
    if last is None and step is None:
        last = first
    if last is not None and first > last:
        raise ValueError(f"{where}: the range runs backwards")
    if first < low or (last is not None and last > high):
        raise ValueError(f"{where}: the {name} is between {low} and {high}")
    # APScheduler measures a range that ends at 0 (`0-0/5`) up to the field's maximum.
    if step and step > min(high - low, (last or high) - first):
        raise ValueError(f"{where}: the step is larger than the range")


def cron_trigger(expression: str, jitter: timedelta = timedelta(0)) -> CronTrigger:
    """The trigger for a 5-field crontab expression, in UTC, each fire time moved by up to ``jitter``."""
    from apscheduler.triggers.cron import CronTrigger  # the daemon's: `config check` never imports it

    minute, hour, day, month, day_of_week = _crontab_fields(expression)
    seconds = int(jitter.total_seconds())
    options: dict[str, Any] = {"jitter": seconds} if seconds > 0 else {}
    return CronTrigger(
        minute=minute, hour=hour, day=day, month=month, day_of_week=cron_weekdays(day_of_week), timezone=UTC, **options
    )
