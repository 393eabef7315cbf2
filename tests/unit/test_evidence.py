"""retire_on: usage: which consumers the sign-in report shows lagging, what plan/status say, and how a report
that cannot be read becomes an evidence gap with its fix."""

from __future__ import annotations

from datetime import datetime

import pytest

from service.catalogue import EvidenceGap
from service.errors import FailureReason, RemoteError
from service.model import Holding, Usage
from service.policy import Facts, lagging_consumers, notes, standings
from service.usage import FIXES, gap_of, read_usage
from tests.unit.test_policy import CUR, DAY, HOUR, NOW, OLD, ON_USAGE, SWITCHED, keyvault, made_here, signed_in


def facts(usage: Usage, holdings: list[Holding] = SWITCHED) -> Facts:
    return Facts.of(NOW, [OLD, CUR], holdings, ON_USAGE, intents=made_here(OLD, CUR), usage=usage)


def test_a_consumer_still_signing_in_with_the_old_secret_is_lagging_with_the_facts_to_log() -> None:
    [lag] = lagging_consumers(facts(signed_in(cur=HOUR, old=2 * HOUR)))

    assert (lag.key_id, lag.in_use, lag.handed_out) == ("old", ("cur",), NOW - 2 * DAY)
    assert lag.last_sign_in == {"old": NOW - 2 * HOUR, "cur": NOW - HOUR}
    assert lag.lagging
    assert "old still signed in at" in lag.missing


@pytest.mark.parametrize(
    ("usage", "holdings"),
    [
        (signed_in(cur=HOUR, old=3 * DAY), SWITCHED),
        (signed_in(cur=HOUR, old=2 * HOUR), [keyvault("cur", held_for=12 * HOUR, recorded=("old",))]),
        (Usage(gap=EvidenceGap.NO_DATA, detail="none", hint="wait"), SWITCHED),
    ],
    ids=[
        "a consumer that switched is not lagging",
        "before the grace period has run nobody is lagging yet",
        "without evidence nobody is called lagging",
    ],
)
def test_no_lagging_consumer(usage: Usage, holdings: list[Holding]) -> None:
    assert lagging_consumers(facts(usage, holdings)) == []


def test_plan_notes_say_which_evidence_is_missing_and_how_long_the_old_secret_is_kept() -> None:
    said = notes(NOW, [OLD, CUR], SWITCHED, ON_USAGE, made_here(OLD, CUR), signed_in(old=2 * HOUR))

    assert len(said) == 1
    assert said[0].startswith("consumer lagging for retiring old: no sign-in with cur since it was handed out")
    assert "kept until it expires" in said[0]


def test_plan_notes_say_why_the_report_gave_no_evidence_and_the_fix() -> None:
    fix = FIXES[EvidenceGap.NO_PERMISSION]
    usage = Usage(gap=EvidenceGap.NO_PERMISSION, detail="the report answered 403", hint=fix)

    [said] = notes(NOW, [OLD, CUR], SWITCHED, ON_USAGE, made_here(OLD, CUR), usage)

    assert said.startswith("evidence unavailable (no_permission): the report answered 403; superseded secrets go")
    assert "AuditLog.Read.All" in said


def test_status_standings_carry_each_credentials_last_sign_in_and_the_missing_evidence() -> None:
    said = {
        s.key_id: s
        for s in standings(NOW, [OLD, CUR], SWITCHED, ON_USAGE, made_here(OLD, CUR), signed_in(cur=HOUR, old=2 * HOUR))
    }

    assert said["cur"].last_sign_in == NOW - HOUR
    assert said["old"].last_sign_in == NOW - 2 * HOUR
    assert said["old"].missing is not None
    assert not said["old"].due
    assert said["old"].retire_after == OLD.end  # kept for its consumer until it expires


@pytest.mark.parametrize(
    ("status", "reason", "gap"),
    [
        (403, FailureReason.PERMISSION_DENIED, EvidenceGap.NO_PERMISSION),
        (401, FailureReason.PERMISSION_DENIED, EvidenceGap.NO_PERMISSION),
        (404, FailureReason.NOT_FOUND, EvidenceGap.NOT_IN_THIS_CLOUD),
        (400, FailureReason.UNEXPECTED, EvidenceGap.NOT_IN_THIS_CLOUD),
        (429, FailureReason.THROTTLED, EvidenceGap.UNREADABLE),
        (503, FailureReason.UNEXPECTED, EvidenceGap.UNREADABLE),
        (None, FailureReason.UNEXPECTED, EvidenceGap.UNREADABLE),
    ],
    ids=[
        "403 means the rotator lacks AuditLog.Read.All",
        "401 means the same",
        "404 means the report is not in this cloud",
        "400 for the segment means the report is not in this cloud",
        "throttling is a passing fault",
        "a 5xx is a passing fault",
        "no answer at all is a passing fault",
    ],
)
def test_a_report_that_fails_becomes_a_gap(status: int | None, reason: FailureReason, gap: EvidenceGap) -> None:
    error = RemoteError("no", service="graph", target="t", reason=reason, transient=False, status=status)

    assert gap_of(error) is gap


class Report:
    """A SignInReport that answers what it was given (a port, not an SDK)."""

    def __init__(self, answer: dict[str, datetime] | RemoteError) -> None:
        self.answer = answer

    async def last_sign_ins(self, client_id: str) -> dict[str, datetime]:
        if isinstance(self.answer, RemoteError):
            raise self.answer
        return self.answer


async def test_read_usage_takes_an_empty_report_for_no_data_and_a_failure_for_its_gap() -> None:
    empty = await read_usage(Report({}), "app")
    denied = await read_usage(
        Report(
            RemoteError(
                "Insufficient privileges",
                service="graph",
                target="t",
                reason=FailureReason.PERMISSION_DENIED,
                transient=False,
                status=403,
            )
        ),
        "app",
    )
    read = await read_usage(Report({"cur": NOW}), "app")

    assert (empty.gap, empty.hint) == (EvidenceGap.NO_DATA, FIXES[EvidenceGap.NO_DATA])
    assert denied.gap is EvidenceGap.NO_PERMISSION
    assert denied.detail == "the sign-in activity report answered 403 Insufficient privileges"
    assert read.available
    assert read.last_sign_in == {"cur": NOW}
