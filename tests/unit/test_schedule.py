"""`config check` reads the schedule without APScheduler: check_crontab must refuse exactly what the daemon's
trigger (APScheduler 3's CronTrigger, as cron_trigger builds it) refuses, and take everything it takes."""

from __future__ import annotations

from datetime import UTC

import pytest
from apscheduler.triggers.cron import CronTrigger
from hypothesis import given, settings
from hypothesis import strategies as st

from service.schedule import check_crontab, cron_weekdays
from tests.conftest import examples

FAST = settings(max_examples=examples(2000))  # fewer in a developer's loop: tests/conftest.py


def apscheduler_takes(expression: str) -> bool:
    """What the daemon did before check_crontab existed: build the trigger, and see whether it is refused."""
    try:
        fields = expression.split()
        if len(fields) != 5:
            return False
        minute, hour, day, month, day_of_week = fields
        CronTrigger(
            minute=minute, hour=hour, day=day, month=month, day_of_week=cron_weekdays(day_of_week), timezone=UTC
        )
    except (ValueError, TypeError):
        return False
    return True


def check_takes(expression: str) -> bool:
    try:
        check_crontab(expression)
    except ValueError:
        return False
    return True


EXPRESSIONS = {
    "the default schedule": "0 */6 * * *",
    "every minute": "* * * * *",
    "lists and ranges with steps": "0,30 8-18/2 1-15 1-6 1-5",
    "a step from a start": "5/15 */3 */10 */4 */2",
    "month names and a range of them": "0 0 1 jan-mar,dec *",
    "a month name in capitals": "0 0 1 JAN *",
    "a month name followed by anything (APScheduler reads the start)": "0 0 1 jan1 *",
    "the last day of the month": "0 0 last * *",
    "the last day in capitals, and more after it": "0 0 LASTday * *",
    "weekday names": "0 0 * * mon-fri",
    "Sunday as 7": "0 0 * * 7",
    "a range that ends at 0": "0-0/5 * * * *",
    "an impossible hour": "0 25 * * *",
    "an impossible minute": "60 * * * *",
    "day 0": "0 0 0 * *",
    "month 13": "0 0 1 13 *",
    "a step of 0": "*/0 * * * *",
    "a step of 0 in a range": "1-5/0 * * * *",
    "a step larger than the field": "*/60 * * * *",
    "a step larger than its range": "10-12/5 * * * *",
    "a range that runs backwards": "0 18-8 * * *",
    "a month range that runs backwards": "0 0 1 dec-jan *",
    "a word that is no month": "0 0 1 january *",
    "a misspelt month at the end of a range": "0 0 1 jan-fbe *",
    "a weekday name in the month field": "0 0 1 mon *",
    "last in the month field": "0 0 1 last *",
    "an empty item": "0,,5 * * * *",
    "a weekday 8": "0 0 * * 8",
    "a weekday range backwards": "0 0 * * fri-mon",
    "four fields": "0 */6 * *",
    "six fields": "0 0 */6 * * *",
    "words": "every six hours",
    "a negative number": "-5 * * * *",
}


@pytest.mark.parametrize("expression", EXPRESSIONS.values(), ids=EXPRESSIONS.keys())
def test_the_check_and_the_trigger_agree(expression: str) -> None:
    assert check_takes(expression) == apscheduler_takes(expression)


NUMBER = st.sampled_from(["0", "1", "5", "7", "12", "13", "23", "24", "31", "32", "59", "60", "99", "٣"])
NAME = st.sampled_from(["jan", "dec", "Feb", "january", "mon", "sun", "fri", "last", "L", "xyz"])
ITEM = st.one_of(
    st.just("*"),
    st.builds("*/{}".format, NUMBER),
    NUMBER,
    st.builds("{}-{}".format, NUMBER, NUMBER),
    st.builds("{}-{}/{}".format, NUMBER, NUMBER, NUMBER),
    st.builds("{}/{}".format, NUMBER, NUMBER),
    NAME,
    st.builds("{}-{}".format, NAME, NAME),
    st.builds("{}{}".format, NAME, NUMBER),
    st.sampled_from(["", "-", "?", "*/", "1-", "5/"]),
)
FIELD = st.lists(ITEM, min_size=1, max_size=3).map(",".join)


@st.composite
def expressions(draw: st.DrawFn) -> str:
    """Five fields; most of them `*`, so that one field's verdict decides (all five at random are rarely valid)."""
    fields = ["*"] * 5
    for position in draw(st.sets(st.integers(0, 4), min_size=1, max_size=5)):
        fields[position] = draw(FIELD)
    return " ".join(fields)


@FAST
@given(expressions())
def test_the_check_and_the_trigger_agree_on_any_expression(expression: str) -> None:
    assert check_takes(expression) == apscheduler_takes(expression), expression
