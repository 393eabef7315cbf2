"""Durations as operators write them: ``90d``, ``12h``, ``30m``, ``45s``, or ISO 8601 (``P90D``, ``PT12H``)."""

from __future__ import annotations

import re
from datetime import timedelta

_SHORT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(w|d|h|m|s)\s*$")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
_ISO = re.compile(
    r"^P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> timedelta:
    """Parse a duration; raises ValueError with the accepted forms when ``text`` is none of them.

    A bare number is refused: ``lifetime: 90`` could mean days or seconds, and guessing wrong would
    either never rotate or rotate every pass.
    """
    if not isinstance(text, str):
        raise ValueError("a duration needs a unit: write it like 90d, 12h, 30m, 45s or P90D")
    short = _SHORT.match(text.lower())
    if short:
        return timedelta(**{_UNITS[short.group(2)]: float(short.group(1))})
    iso = _ISO.match(text.strip().upper())
    if iso and any(iso.groupdict().values()) and not text.strip().upper().endswith("T"):
        return timedelta(**{k: float(v) for k, v in iso.groupdict().items() if v})
    raise ValueError("not a duration: write it like 90d, 12h, 30m, 45s or ISO 8601 (P90D, PT12H)")


def format_duration(value: timedelta) -> str:
    """The shortest exact short form (``90d``, ``36h``, ``90s``), for messages and `plan` output."""
    seconds = int(value.total_seconds())
    if seconds != value.total_seconds():
        exact = f"{value.total_seconds():.6f}".rstrip("0").rstrip(".")
        return f"{exact}s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
