"""The `windows:` policy key: maintenance windows as the config writes them, checked and made into
:class:`service.windows.Window` s."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from service.config.fields import StrictModel
from service.windows import DAY_NAMES, MINUTES_PER_DAY, Window

_CLOCK = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")
_DAY_FIX = "write days as mon, tue, wed, thu, fri, sat, sun, or a range like mon-fri"


_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAYS = {name: i for i, names in enumerate(zip(DAY_NAMES, _FULL_NAMES, strict=True)) for name in names}


def _day(name: str) -> int:
    day = _DAYS.get(name.strip().lower())
    if day is None:
        raise ValueError(f"a day that is not one: {_DAY_FIX}")
    return day


def parse_days(items: list[str]) -> frozenset[int]:
    """Day names and ranges (``mon``, ``mon-fri``, ``fri-mon`` across the weekend) as weekday numbers
    (0 = Monday); ValueError naming the fix."""
    days: set[int] = set()
    for item in items:
        ends = str(item).split("-")
        if len(ends) > 2:
            raise ValueError(f"a day that is not one: {_DAY_FIX}")
        first, last = _day(ends[0]), _day(ends[-1])
        days.update((first + i) % 7 for i in range((last - first) % 7 + 1))
    if not days:
        raise ValueError(f"no day given: {_DAY_FIX}")
    return frozenset(days)


def parse_clock(value: Any, *, key: str) -> int:
    """``HH:MM`` (24-hour, ``24:00`` for the end of the day) as minutes after midnight; ValueError saying how
    to write it."""
    match = _CLOCK.match(value) if isinstance(value, str) else None
    minutes = int(match[1]) * 60 + int(match[2]) if match else -1
    if not match or minutes > MINUTES_PER_DAY or (key == "start" and minutes == MINUTES_PER_DAY):
        end = ', or "24:00" for midnight at the end of the day' if key == "end" else ""
        # YAML 1.1 reads an unquoted 17:30 as a number (base 60): say why the quotes matter.
        unquoted = " (without quotes YAML reads 17:30 as a number)" if isinstance(value, int) else ""
        raise ValueError(f'must be a 24-hour time in quotes, like "08:00" or "17:30"{end}{unquoted}')
    return minutes


class MaintenanceWindow(StrictModel):
    """One weekly maintenance window: the days it opens on, from when to when, and the time zone of those
    times. A window whose end is not after its start runs across midnight into the next day (it belongs to
    the day it opens on: `days: [fri]`, `start: "22:00"`, `end: "02:00"` is Friday night)."""

    days: list[str] = Field(
        json_schema_extra={"minItems": 1},
        description="The days the window opens on: mon, tue, wed, thu, fri, sat, sun, or ranges of them "
        "(mon-fri; fri-mon runs across the weekend).",
        examples=[["mon-fri"]],
    )
    start: str = Field(
        description='When the window opens, 24-hour wall-clock time in time_zone, quoted ("08:00").',
        examples=["08:00"],
    )
    end: str = Field(
        description='When it closes, 24-hour wall-clock time in time_zone, quoted; "24:00" is midnight at the '
        "end of the day, and a time not after start is on the next day (a window across midnight).",
        examples=["17:00"],
    )
    time_zone: str = Field(
        description="The IANA time zone of start and end (Europe/Amsterdam, America/New_York, UTC): the "
        "window keeps its wall-clock hours across daylight saving changes.",
        examples=["Europe/Amsterdam"],
    )

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        parse_days(value)
        return value

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock(cls, value: Any, info: Any) -> Any:
        parse_clock(value, key=info.field_name)
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            if not value or value != value.strip() or value.startswith("/"):
                raise ValueError
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            # Never the value: the wording of config errors names keys, not what was found.
            raise ValueError(
                "not a time zone this system knows: give an IANA name such as Europe/Amsterdam or UTC "
                "(a system without a time zone database needs the tzdata package)"
            ) from None
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> MaintenanceWindow:
        if parse_clock(self.start, key="start") == parse_clock(self.end, key="end"):
            raise ValueError('start and end are the same time: for a whole day write start: "00:00", end: "24:00"')
        return self

    def window(self) -> Window:
        """The window as :mod:`service.windows` reckons with it."""
        return Window(
            parse_days(self.days),
            parse_clock(self.start, key="start"),
            parse_clock(self.end, key="end"),
            self.time_zone,
        )
