"""Durations as operators write them, and as messages print them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.durations import format_duration, parse_duration

PARSED = {
    "days are written with d": ("90d", timedelta(days=90)),
    "hours are written with h": ("12h", timedelta(hours=12)),
    "minutes are written with m": ("30m", timedelta(minutes=30)),
    "seconds are written with s": ("45s", timedelta(seconds=45)),
    "weeks are written with w": ("2w", timedelta(weeks=2)),
    "a fraction is allowed": ("1.5h", timedelta(minutes=90)),
    "zero is allowed": ("0s", timedelta(0)),
    "spaces around and inside are ignored": (" 90 d ", timedelta(days=90)),
    "ISO 8601 days": ("P90D", timedelta(days=90)),
    "ISO 8601 weeks": ("P1W", timedelta(weeks=1)),
    "ISO 8601 time": ("PT12H30M15S", timedelta(hours=12, minutes=30, seconds=15)),
    "ISO 8601 days and time": ("P1DT12H", timedelta(days=1, hours=12)),
    "ISO 8601 in lower case": ("pt30m", timedelta(minutes=30)),
}


@pytest.mark.parametrize(("text", "expected"), PARSED.values(), ids=PARSED.keys())
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


REFUSED = {
    "a bare number could mean days or seconds": (90, "needs a unit"),
    "a bare number in a string too": ("90", "not a duration"),
    "a float is no duration": (1.5, "needs a unit"),
    "None is no duration": (None, "needs a unit"),
    "an empty string is no duration": ("", "not a duration"),
    "years are not a unit": ("1y", "not a duration"),
    "a negative duration is refused": ("-1d", "not a duration"),
    "two short units together are refused": ("1d12h", "not a duration"),
    "a bare P is refused": ("P", "not a duration"),
    "a bare PT is refused": ("PT", "not a duration"),
    "a trailing T is refused": ("P1DT", "not a duration"),
    "words are refused": ("one day", "not a duration"),
}


@pytest.mark.parametrize(("value", "fragment"), REFUSED.values(), ids=REFUSED.keys())
def test_parse_duration_refuses(value: object, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment) as info:
        parse_duration(value)  # type: ignore[arg-type]
    assert "90d" in str(info.value)  # the error shows the accepted forms


FORMATTED = {
    "whole days print as days": (timedelta(days=90), "90d"),
    "36 hours print as hours, not a day and a half": (timedelta(hours=36), "36h"),
    "whole minutes print as minutes": (timedelta(minutes=15), "15m"),
    "90 seconds print as seconds": (timedelta(seconds=90), "90s"),
    "zero prints as 0s": (timedelta(0), "0s"),
    "a fraction of a second prints exactly": (timedelta(milliseconds=1500), "1.5s"),
}


@pytest.mark.parametrize(("value", "expected"), FORMATTED.values(), ids=FORMATTED.keys())
def test_format_duration(value: timedelta, expected: str) -> None:
    assert format_duration(value) == expected


ROUND_TRIPS = {
    "whole days survive format then parse": timedelta(days=90),
    "hours that are not whole days survive format then parse": timedelta(hours=36),
    "minutes and seconds survive format then parse": timedelta(minutes=1, seconds=1),
    "a fraction of a second survives format then parse": timedelta(milliseconds=250),
    "a long duration with a fraction of a second survives format then parse": timedelta(days=12, milliseconds=500),
    "a microsecond survives format then parse": timedelta(microseconds=1),
}


@pytest.mark.parametrize("value", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_format_then_parse_gives_the_same_duration(value: timedelta) -> None:
    assert parse_duration(format_duration(value)) == value
