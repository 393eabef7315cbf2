"""The maintenance-window rule as a table: what of a plan waits for the next window, and when safety cannot wait.

NOW (tests/unit/test_policy.py) is Sunday 2025-06-01 12:00Z: office hours are closed and open on Monday
at 06:00Z (08:00 in Amsterdam, summer time).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from service.model import Credential, Flags, Holding, Kind, Policy
from service.policy.facts import Facts
from service.policy.window import deadline
from service.windows import Window
from tests.unit.test_policy import DAY, DUE, HOUR, NOW, OLD, WEEKDAYS, Case, cred, describe, keyvault, push

SUNDAY = Window(frozenset({6}), 0, 24 * 60, "Europe/Amsterdam")  # open at NOW
OFFICE = Policy(windows=(WEEKDAYS,))
SOON = cred("cur", age=88 * DAY)  # expires in 2 days: before Monday's window plus the 3 day margin
# Due, and expires Thursday 12:00Z: four days after the window opens, one more than the default margin.
THURSDAY = cred("cur", age=60 * DAY + 12 * HOUR, lifetime=64 * DAY + 12 * HOUR)

CASES: dict[str, Case] = {
    "a due rotation outside every window waits": Case([DUE], [keyvault("cur")], ["wait outside_window"], OFFICE),
    "a due rotation inside a window goes ahead": Case(
        [DUE], [keyvault("cur")], ["create renewal_due"], Policy(windows=(WEEKDAYS, SUNDAY))
    ),
    "without windows a due rotation goes ahead at any time": Case([DUE], [keyvault("cur")], ["create renewal_due"]),
    "a secret that expires before the window opens (within the margin) is rotated now": Case(
        [SOON], [keyvault("cur")], ["create renewal_due overriding the window"], OFFICE
    ),
    "a secret that expires more than window_margin after the window opens waits for it": Case(
        [THURSDAY], [keyvault("cur")], ["wait outside_window"], OFFICE
    ),
    "... and is rotated now when the margin is longer": Case(
        [THURSDAY],
        [keyvault("cur")],
        ["create renewal_due overriding the window"],
        replace(OFFICE, window_margin=5 * DAY),
    ),
    "an expired secret in use is rotated now": Case(
        [cred("cur", age=91 * DAY)], [keyvault("cur")], ["create renewal_due overriding the window"], OFFICE
    ),
    "a sink holding nothing that works gets a secret now": Case(
        [], [keyvault(None)], ["create no_credential_in_use overriding the window"], OFFICE
    ),
    "a push sink without receipt may hold any secret: the earliest expiry of them decides, far off here": Case(
        [cred("cur", age=10 * DAY)], [push(None)], ["wait outside_window"], OFFICE
    ),
    "a retirement outside every window waits": Case(
        [OLD, cred("cur", age=10 * DAY)], [keyvault("cur", recorded=("old",))], ["wait outside_window"], OFFICE
    ),
    "a rotation that cannot wait goes now and the retirements after it wait for the window": Case(
        [cred("old", age=100 * DAY), SOON],
        [keyvault("cur", recorded=("old",))],
        ["create renewal_due overriding the window", "wait outside_window"],
        replace(OFFICE, grace_period=HOUR),
    ),
    "a re-sync of a lagging sink does not wait for a window": Case(
        [OLD, cred("cur", age=10 * DAY)],
        [keyvault("cur", recorded=("old",)), push("old")],
        ["resync sink_lags cur to push from keyvault"],
        OFFICE,
    ),
    "--force beats the window: a person is at the keyboard": Case(
        [cred("cur", age=10 * DAY)], [keyvault("cur")], ["create forced"], OFFICE, Flags(force=True)
    ),
    "--revoke-previous beats the window: a leaked secret does not wait": Case(
        [OLD, cred("cur", age=10 * DAY)],
        [keyvault("cur", recorded=("old",))],
        ["create revoke_previous", "retire superseded old after rotation", "retire revoked cur after rotation"],
        OFFICE,
        Flags(revoke_previous=True),
    ),
    "nothing to do is nothing to wait for": Case([cred("cur", age=10 * DAY)], [keyvault("cur")], [], OFFICE),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_windowed_plan(case: Case) -> None:
    assert [describe(a) for a in case.plan()] == case.expected


def test_the_wait_says_when_the_window_opens_and_what_waits() -> None:
    (action,) = CASES["a due rotation outside every window waits"].plan()
    assert action.kind is Kind.WAIT
    assert action.waits_until == NOW + timedelta(hours=18)
    assert action.message.startswith(
        "waiting for window, opens at 2025-06-02 06:00Z (Mon 2025-06-02 08:00 Europe/Amsterdam): create (renewal_due): "
        "cur was due for renewal at"
    )


def test_an_override_says_why() -> None:
    (action,) = CASES["a secret that expires before the window opens (within the margin) is rotated now"].plan()
    assert action.window_overridden == (
        "outside the maintenance windows, but a secret a consumer depends on expires at 2025-06-03 12:00Z and the "
        "next window opens at 2025-06-02 06:00Z (Mon 2025-06-02 08:00 Europe/Amsterdam): less than window_margin "
        "before expiry, so it is rotated now"
    )


DEADLINES = {
    "the end of what the sink holds": ([SOON], [keyvault("cur")], NOW + 2 * DAY),
    "the earliest of what several sinks hold": ([OLD, SOON], [keyvault("old"), push("cur")], NOW + 2 * DAY),
    "now, for a sink that holds a credential no longer on the app": ([SOON], [keyvault("gone")], NOW),
    "the earliest valid secret, for a push sink without a receipt": ([OLD, SOON], [push(None)], NOW + 2 * DAY),
    "now, for a push sink without a receipt when no secret is valid": ([], [push(None)], NOW),
    "none, for a secret that never expires": ([replace(SOON, end=None)], [keyvault("cur")], None),
}


@pytest.mark.parametrize(("credentials", "holdings", "expected"), DEADLINES.values(), ids=DEADLINES.keys())
def test_deadline(credentials: list[Credential], holdings: list[Holding], expected: datetime | None) -> None:
    assert deadline(Facts.of(NOW, credentials, holdings, OFFICE)) == expected
