"""Maintenance window arithmetic as a table: is a window open at a moment, and when does the next one open,
across daylight saving changes and midnight; and how the config writes a window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from service.config.policy import PolicyOverrides, merge_policy, policy_problems
from service.config.problems import problems_of
from service.config.windows import parse_days
from service.windows import Window, is_open, next_opening

AMS = "Europe/Amsterdam"
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def at(text: str) -> datetime:
    """A moment in UTC, written ``2026-03-29 01:30``."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def window(days: set[int], start: str, end: str, zone: str = AMS) -> Window:
    def minutes(clock: str) -> int:
        hours, mins = clock.split(":")
        return int(hours) * 60 + int(mins)

    return Window(frozenset(days), minutes(start), minutes(end), zone)


OFFICE = window({MON, TUE, WED, THU, FRI}, "08:00", "17:00")
FRIDAY_NIGHT = window({FRI}, "22:00", "02:00")
EVENING = window({MON}, "20:00", "24:00")
# 2026: clocks in Amsterdam go forward on Sunday 29 March (02:00 CET -> 03:00 CEST, at 01:00Z) and back on
# Sunday 25 October (03:00 CEST -> 02:00 CET, at 01:00Z).
SPRING_NIGHT = window({SUN}, "01:00", "04:00")
SKIPPED_START = window({SUN}, "02:30", "05:00")
WHOLLY_SKIPPED = window({SUN}, "02:10", "02:50")
REPEATED_HOUR = window({SUN}, "02:00", "03:00")
SATURDAY_NIGHT = window({SAT}, "22:00", "04:00")
EVERY_DAY = window(set(range(7)), "08:00", "17:00")
NEW_YORK = window({MON}, "18:00", "19:00", "America/New_York")  # 23:00Z in winter

OPEN = {
    # (windows, moment, open?)
    "office hours are open on a winter Monday at 08:00 Amsterdam time (07:00Z)": ([OFFICE], "2026-11-30 07:00", True),
    "office hours are closed a minute before 08:00 in winter": ([OFFICE], "2026-11-30 06:59", False),
    "office hours are open at 08:00 in summer, 06:00Z": ([OFFICE], "2026-06-01 06:00", True),
    "office hours close at 17:00, the end excluded": ([OFFICE], "2026-11-30 16:00", False),
    "office hours are closed on Saturday": ([OFFICE], "2026-11-28 12:00", False),
    "a window across midnight is open on the night it opens": ([FRIDAY_NIGHT], "2026-11-27 22:30", True),
    "a window across midnight is still open after midnight, on the next day": (
        [FRIDAY_NIGHT],
        "2026-11-28 00:30",
        True,
    ),
    "a window across midnight closes at its end on the next day": ([FRIDAY_NIGHT], "2026-11-28 01:00", False),
    "a window across midnight is not open on the night before its day": ([FRIDAY_NIGHT], "2026-11-27 00:30", False),
    "a window to 24:00 is open a minute before midnight": ([EVENING], "2026-11-30 22:59", True),
    "a window to 24:00 is closed at midnight": ([EVENING], "2026-11-30 23:00", False),
    "spring forward: a night window is open just before the clocks jump": ([SPRING_NIGHT], "2026-03-29 00:59", True),
    "spring forward: a night window 01:00-04:00 lasts two real hours": ([SPRING_NIGHT], "2026-03-29 02:00", False),
    "spring forward: a start in the skipped hour opens an hour later by the new clock (03:30 CEST)": (
        [SKIPPED_START],
        "2026-03-29 01:29",
        False,
    ),
    "spring forward: ... and is open from then": ([SKIPPED_START], "2026-03-29 01:30", True),
    "spring forward: a window wholly inside the skipped hour is not open at 03:05 CEST": (
        [WHOLLY_SKIPPED],
        "2026-03-29 01:05",
        False,
    ),
    "spring forward: ... but an hour later by the new clock, 03:10-03:50 CEST": (
        [WHOLLY_SKIPPED],
        "2026-03-29 01:45",
        True,
    ),
    "a window inside the hour skipped in spring keeps its hours on other Sundays": (
        [WHOLLY_SKIPPED],
        "2026-04-05 00:20",
        True,
    ),
    "fall back: a window over the repeated hour is open at its first 02:30 (CEST)": (
        [REPEATED_HOUR],
        "2026-10-25 00:30",
        True,
    ),
    "fall back: ... and at its second 02:30 (CET)": ([REPEATED_HOUR], "2026-10-25 01:30", True),
    "fall back: ... and closes at 03:00 CET": ([REPEATED_HOUR], "2026-10-25 02:00", False),
    "fall back: a window across midnight that night runs seven real hours, open at 03:30 CET": (
        [SATURDAY_NIGHT],
        "2026-10-25 02:30",
        True,
    ),
    "fall back: ... and closed at 04:00 CET": ([SATURDAY_NIGHT], "2026-10-25 03:00", False),
    "several windows: open when any of them is": ([OFFICE, FRIDAY_NIGHT], "2026-11-28 00:30", True),
    "no windows: none is open": ([], "2026-11-30 12:00", False),
}


@pytest.mark.parametrize(("windows", "moment", "expected"), OPEN.values(), ids=OPEN.keys())
def test_is_open(windows: list[Window], moment: str, expected: bool) -> None:
    assert is_open(windows, at(moment)) is expected


NEXT = {
    # (windows, moment, next opening in UTC or None)
    "on a winter Saturday office hours open on Monday at 07:00Z": ([OFFICE], "2026-11-28 12:00", "2026-11-30 07:00"),
    "on a summer Saturday they open on Monday at 06:00Z": ([OFFICE], "2026-06-06 12:00", "2026-06-08 06:00"),
    "while a window is open the next opening is now": ([OFFICE], "2026-11-30 10:00", "2026-11-30 10:00"),
    "after closing time the next opening is the next morning": ([OFFICE], "2026-11-30 16:00", "2026-12-01 07:00"),
    "on Friday after closing time it is Monday": ([OFFICE], "2026-12-04 16:00", "2026-12-07 07:00"),
    "spring forward: on the Saturday before, every-day hours open Sunday at 08:00 CEST (06:00Z)": (
        [EVERY_DAY],
        "2026-03-28 18:00",
        "2026-03-29 06:00",
    ),
    "fall back: on the Saturday before, they open Sunday at 08:00 CET (07:00Z)": (
        [EVERY_DAY],
        "2026-10-24 18:00",
        "2026-10-25 07:00",
    ),
    "spring forward: a start in the skipped hour is 01:30Z": ([SKIPPED_START], "2026-03-28 12:00", "2026-03-29 01:30"),
    "fall back: a start at the repeated 02:00 is its first showing (00:00Z)": (
        [REPEATED_HOUR],
        "2026-10-24 12:00",
        "2026-10-25 00:00",
    ),
    "spring forward: a window wholly inside the skipped hour opens at 03:10 CEST (01:10Z)": (
        [WHOLLY_SKIPPED],
        "2026-03-28 12:00",
        "2026-03-29 01:10",
    ),
    "the next Sunday it opens at 02:10 CEST again (00:10Z)": ([WHOLLY_SKIPPED], "2026-03-29 02:00", "2026-04-05 00:10"),
    "a window across midnight that has closed opens next Friday": (
        [FRIDAY_NIGHT],
        "2026-11-28 03:00",
        "2026-12-04 21:00",
    ),
    "several windows in several zones: the earliest opening wins": (
        [OFFICE, NEW_YORK],
        "2026-11-28 12:00",
        "2026-11-30 07:00",
    ),
    "the later zone wins when the earlier window has closed": (
        [OFFICE, NEW_YORK],
        "2026-11-30 16:30",
        "2026-11-30 23:00",
    ),
    "no windows: none opens": ([], "2026-11-30 12:00", None),
}


@pytest.mark.parametrize(("windows", "moment", "expected"), NEXT.values(), ids=NEXT.keys())
def test_next_opening(windows: list[Window], moment: str, expected: str | None) -> None:
    assert next_opening(windows, at(moment)) == (at(expected) if expected else None)


@pytest.mark.parametrize("moment", ["2026-03-28 18:00", "2026-10-24 18:00", "2026-11-28 12:00"])
@pytest.mark.parametrize("windows", [[OFFICE], [FRIDAY_NIGHT], [SKIPPED_START], [SATURDAY_NIGHT]])
def test_a_window_is_open_at_its_next_opening_and_not_a_minute_before(windows: list[Window], moment: str) -> None:
    opening = next_opening(windows, at(moment))
    assert opening is not None
    assert is_open(windows, opening)
    assert not is_open(windows, opening - timedelta(minutes=1))


DAYS = {
    "one day": (["mon"], {MON}),
    "a range": (["mon-fri"], {MON, TUE, WED, THU, FRI}),
    "a range across the weekend": (["fri-mon"], {FRI, SAT, SUN, MON}),
    "full names in any case": (["Saturday", "SUNDAY"], {SAT, SUN}),
    "a range and a day": (["mon-wed", "fri"], {MON, TUE, WED, FRI}),
}


@pytest.mark.parametrize(("written", "expected"), DAYS.values(), ids=DAYS.keys())
def test_days(written: list[str], expected: set[int]) -> None:
    assert parse_days(written) == frozenset(expected)


def problems(window: dict[str, object]) -> list[str]:
    try:
        PolicyOverrides.model_validate({"windows": [window]})
    except ValidationError as error:
        return problems_of(error)
    return []


GOOD = {"days": ["mon-fri"], "start": "08:00", "end": "17:00", "time_zone": AMS}
BAD = {
    "an unknown time zone": (
        {"time_zone": "Europe/Amsterdan"},
        "windows[0].time_zone: not a time zone this system knows: give an IANA name",
    ),
    "a path for a time zone": ({"time_zone": "../../etc/passwd"}, "windows[0].time_zone: not a time zone"),
    "an hour past 24": ({"end": "25:00"}, 'windows[0].end: must be a 24-hour time in quotes, like "08:00"'),
    "minutes past 59": ({"start": "08:60"}, "windows[0].start: must be a 24-hour time"),
    "a start at 24:00": ({"start": "24:00"}, "windows[0].start: must be a 24-hour time"),
    "an unquoted time YAML read as a number": (
        {"end": 1020},
        'windows[0].end: must be a 24-hour time in quotes, like "08:00" or "17:30", or "24:00" '
        "for midnight at the end of the day (without quotes YAML reads 17:30 as a number)",
    ),
    "a misspelt day": ({"days": ["mon-fry"]}, "windows[0].days: a day that is not one: write days as mon, tue"),
    "no days": ({"days": []}, "windows[0].days: no day given"),
    "start and end the same": (
        {"start": "08:00", "end": "08:00"},
        'windows[0]: start and end are the same time: for a whole day write start: "00:00"',
    ),
    "no time zone": ({"time_zone": None}, "windows[0].time_zone: required: add it"),
}


@pytest.mark.parametrize(("change", "expected"), BAD.values(), ids=BAD.keys())
def test_a_bad_window_names_the_key_and_the_fix(change: dict[str, object], expected: str) -> None:
    told = problems({k: v for k, v in {**GOOD, **change}.items() if v is not None})
    assert any(p.startswith(expected) for p in told), told
    assert not any("Amsterdan" in p or "passwd" in p for p in told), "never echoes the value found"


GOOD_ONES = {
    "office hours": GOOD,
    "a whole day": {**GOOD, "start": "00:00", "end": "24:00"},
    "across midnight": {**GOOD, "start": "22:00", "end": "02:00"},
    "an hour without its leading zero": {**GOOD, "start": "8:00"},
}


@pytest.mark.parametrize("window", GOOD_ONES.values(), ids=GOOD_ONES.keys())
def test_a_good_window_is_taken(window: dict[str, object]) -> None:
    assert problems(window) == []


def test_a_targets_windows_replace_the_defaults_and_an_empty_list_means_any_time() -> None:
    defaults = PolicyOverrides.model_validate({"windows": [GOOD], "window_margin": "2d"})
    night = {"days": ["sat"], "start": "22:00", "end": "04:00", "time_zone": "UTC"}
    assert [w.describe() for w in merge_policy(defaults).windows] == ["mon-fri 08:00-17:00 Europe/Amsterdam"]
    target = PolicyOverrides.model_validate({"windows": [night]})
    assert [w.describe() for w in merge_policy(defaults, target).windows] == ["sat 22:00-04:00 UTC"]
    assert merge_policy(defaults, PolicyOverrides.model_validate({"windows": []})).windows == ()
    assert merge_policy(defaults).window_margin == timedelta(days=2)


def test_a_window_margin_as_long_as_the_lifetime_is_a_policy_problem() -> None:
    policy = merge_policy(PolicyOverrides.model_validate({"windows": [GOOD], "window_margin": "90d"}))
    assert policy_problems(policy) == [
        "window_margin (90d) must be shorter than lifetime (90d), else every pass would rotate outside the windows"
    ]
    assert policy_problems(merge_policy(PolicyOverrides.model_validate({"window_margin": "90d"}))) == []
