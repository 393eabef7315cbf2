"""When a plan made from what each sink holds now equals the plan made from all they ever recorded.

A pass reads a Key Vault secret's current version from one listing of the vault (the holding's ``recorded``
then names that version's key id alone, ``history`` False); ``needs_history`` says when the plan depends
on the rest, so that the versions are read only for those targets.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given

from service.model import Credential, Flags, Holding, Policy
from service.policy import needs_history, plan
from tests.unit.test_policy import DAY, NOW, cred, keyvault, push
from tests.unit.test_policy_properties import FAST, Scenario, scenarios

CURRENT = cred("cur", age=10 * DAY)
OLD = cred("old", age=80 * DAY)
BY_HAND = cred("hand", age=80 * DAY, managed=False)


def listed(holding: Holding) -> Holding:
    """A readable sink's holding as the vault's listing gives it: what it holds now, and no more."""
    if not holding.readable:
        return holding
    return replace(holding, recorded=frozenset({holding.key_id}) if holding.key_id else frozenset(), history=False)


@pytest.mark.parametrize(
    ("credentials", "holdings", "policy", "flags", "expected"),
    [
        pytest.param(
            [CURRENT],
            [listed(keyvault("cur")), push("cur")],
            Policy(),
            Flags(),
            False,
            id="the one credential on the app is held: nothing else to decide",
        ),
        pytest.param(
            [CURRENT, OLD],
            [keyvault("cur", recorded=("old",)), push("cur")],
            Policy(),
            Flags(),
            False,
            id="every holding has its whole history already",
        ),
        pytest.param(
            [CURRENT, OLD],
            [listed(keyvault("cur")), push("cur")],
            Policy(),
            Flags(),
            True,
            id="a managed credential no sink holds: orphan or superseded depends on the history",
        ),
        pytest.param(
            [CURRENT, BY_HAND],
            [listed(keyvault("cur")), push("cur")],
            Policy(),
            Flags(),
            False,
            id="a hand-made credential no sink holds is never retired: its history does not matter",
        ),
        pytest.param(
            [CURRENT, BY_HAND],
            [listed(keyvault("cur")), push("cur")],
            Policy(retire_unmanaged=True),
            Flags(),
            True,
            id="unless retire_unmanaged may retire it",
        ),
        pytest.param(
            [CURRENT, BY_HAND],
            [listed(keyvault("cur")), push("cur")],
            Policy(),
            Flags(revoke_previous=True),
            True,
            id="or --revoke-previous may revoke it",
        ),
        pytest.param(
            [CURRENT],
            [listed(keyvault(None)), push(None)],
            Policy(),
            Flags(),
            True,
            id="no sink holds anything: the app's managed credential is unheld",
        ),
    ],
)
def test_needs_history(
    credentials: list[Credential], holdings: list[Holding], policy: Policy, flags: Flags, expected: bool
) -> None:
    assert needs_history(credentials, holdings, policy, flags) is expected


@FAST
@given(scenarios())
def test_when_the_history_is_not_needed_the_plan_without_it_is_the_plan_with_it(s: Scenario) -> None:
    glanced = [listed(h) for h in s.holdings]

    if needs_history(s.credentials, glanced, s.policy, s.flags):
        return
    without = plan(NOW, s.credentials, glanced, s.policy, s.flags, s.intents, s.usage)

    assert without == s.plan()
