"""What a pass tells people, as a table: which notices a pass's results give (at most one per target and kind),
how Teams and Slack bodies look, and how a `notify:` entry that cannot be used is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from service.catalogue import EvidenceGap
from service.config.loading import parse_config
from service.config.problems import ConfigProblems
from service.errors import FailureReason, ServiceError
from service.model import Action, App, Kind, MissingEvidence, Plan, Reason, Standing, State, Usage
from service.notify import Notice, notices, slack_body, teams_body
from service.reconcile import Outcome, TargetResult

APP = App("object-id", "11111111-1111-1111-1111-111111111111", "Dime.Scheduler", ())
CREATE = Action(Kind.CREATE, Reason.RENEWAL_DUE, "cur was due for renewal at 2026-12-01 10:00Z")
RETIRE = Action(Kind.RETIRE, Reason.SUPERSEDED, "old was superseded", key_id="old")
DENIED = ServiceError(
    "Graph answered 403 Authorization_RequestDenied",
    reason=FailureReason.PERMISSION_DENIED,
    hint="grant Application.ReadWrite.OwnedBy and make the rotator an owner of the app",
)


def result(outcome: Outcome, *done: Action, error: ServiceError | None = None, target: str = "a") -> TargetResult:
    return TargetResult(target, outcome, app=APP, done=list(done), error=error)


HANDED_OUT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
LAG = MissingEvidence("old", ("cur",), HANDED_OUT, {"old": HANDED_OUT, "cur": None}, "no sign-in with cur", True)
NO_PERMISSION = Usage(gap=EvidenceGap.NO_PERMISSION, detail="Graph answered 403", hint="grant AuditLog.Read.All")
NO_DATA = Usage(gap=EvidenceGap.NO_DATA, detail="the report has no rows for the app", hint="wait")
SUPERSEDED = (Standing("old", State.SUPERSEDED),)


def planned(
    usage: Usage | None = None, lagging: tuple[MissingEvidence, ...] = (), standings: tuple[Standing, ...] = ()
) -> TargetResult:
    """A healthy target with retire_on usage: what its plan says of the sign-in report."""
    plan = Plan("a", (), usage=usage, lagging=lagging, standings=standings)
    return TargetResult("a", Outcome.HEALTHY, app=APP, plan=plan)


CASES = {
    "a consumer that shows no switch is told once, whatever the number of old secrets kept": (
        [planned(Usage(), lagging=(LAG, LAG))],
        [("a", "consumer_lagging")],
    ),
    "a report that cannot be read is told": ([planned(NO_PERMISSION)], [("a", "evidence_unavailable")]),
    "a report without data for a new target tells nothing": ([planned(NO_DATA)], []),
    "a report without data while an old secret waits on it is told": (
        [planned(NO_DATA, standings=SUPERSEDED)],
        [("a", "evidence_unavailable")],
    ),
    "a report that was read tells nothing": ([planned(Usage())], []),
    "a healthy target tells nothing": ([result(Outcome.HEALTHY)], []),
    "a retirement alone tells nothing": ([result(Outcome.CHANGED, RETIRE)], []),
    "a rotation is told once": ([result(Outcome.CHANGED, CREATE)], [("a", "rotated")]),
    "a failure is told once": ([result(Outcome.FAILED, error=DENIED)], [("a", "failed")]),
    "a rotation whose later retirement failed tells both, once each": (
        [result(Outcome.FAILED, CREATE, error=DENIED)],
        [("a", "rotated"), ("a", "failed")],
    ),
    "each target is told on its own": (
        [result(Outcome.CHANGED, CREATE), result(Outcome.FAILED, error=DENIED, target="b")],
        [("a", "rotated"), ("b", "failed")],
    ),
}


@pytest.mark.parametrize(("results", "expected"), CASES.values(), ids=CASES.keys())
def test_notices(results: list[TargetResult], expected: list[tuple[str, str]]) -> None:
    assert [(n.target, n.kind.value) for n in notices(results)] == expected


def test_a_failure_says_the_reason_what_happened_and_what_to_do() -> None:
    [notice] = notices([result(Outcome.FAILED, error=DENIED)])
    assert dict(notice.facts) == {
        "Target": "a",
        "App": f"Dime.Scheduler ({APP.app_id})",
        "Reason": "permission_denied",
        "What happened": "Graph answered 403 Authorization_RequestDenied",
        "What to do": DENIED.hint,
    }


def test_a_rotation_says_why_and_what_was_retired() -> None:
    [notice] = notices([result(Outcome.CHANGED, CREATE, RETIRE)])
    assert dict(notice.facts)["Why"] == f"renewal_due: {CREATE.message}"
    assert dict(notice.facts)["Retired"] == "old"


NOTICE = Notice(
    "a", notices([result(Outcome.FAILED, error=DENIED)])[0].kind, "secret-rotator: <b> & co", (("Reason", "x <y> & z"),)
)


def test_the_teams_body_is_one_adaptive_card_with_a_fact_set() -> None:
    body = json.loads(teams_body(NOTICE))
    [attachment] = body["attachments"]
    assert body["type"] == "message"
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    title, facts = attachment["content"]["body"]
    assert (title["text"], title["color"]) == ("secret-rotator: <b> & co", "Attention")
    assert facts["facts"] == [{"title": "Reason", "value": "x <y> & z"}]


def test_the_slack_body_is_text_with_markup_escaped() -> None:
    text = json.loads(slack_body(NOTICE))["text"]
    assert text == "*secret-rotator: &lt;b&gt; &amp; co*\n*Reason*: x &lt;y&gt; &amp; z"


TARGET = {
    "name": "a",
    "tenant_id": "00000000-0000-0000-0000-000000000000",
    "client_id": "11111111-1111-1111-1111-111111111111",
    "sinks": [{"type": "keyvault", "vault_url": "https://v.vault.azure.net", "secret_name": "s"}],
}
BAD = {
    "an inline URL": (
        {"type": "slack", "url": "https://hooks.slack.com/services/T/B/x"},
        {},
        "notify[0].url: an inline secret is refused: write {env: NAME} or {file: PATH} instead",
    ),
    "an unset variable": (
        {"type": "teams", "url": {"env": "HOOK"}},
        {},
        "notify[0].url: environment variable HOOK is not set",
    ),
    "plain http to another host": (
        {"type": "teams", "url": {"env": "HOOK"}},
        {"HOOK": "http://example.com/hook/token"},
        "notify[0].url: the URL in environment variable HOOK is plain http: a webhook URL is a secret, use the https",
    ),
    "no URL at all": (
        {"type": "slack", "url": {"env": "HOOK"}},
        {"HOOK": "hooks.slack.com/x"},
        "notify[0].url: the URL in environment variable HOOK is not an absolute https URL",
    ),
    "an unknown type": (
        {"type": "discord", "url": {"env": "HOOK"}},
        {"HOOK": "https://x.example/h"},
        "notify[0].type: Input should be 'teams' or 'slack'",
    ),
    "an unknown kind": (
        {"type": "slack", "url": {"env": "HOOK"}, "events": ["retired"]},
        {"HOOK": "https://x.example/h"},
        "notify[0].events[0]: Input should be 'rotated', 'failed', 'consumer_lagging' or 'evidence_unavailable'",
    ),
}


@pytest.mark.parametrize(("hook", "environ", "expected"), BAD.values(), ids=BAD.keys())
def test_a_webhook_that_cannot_be_used_is_refused_naming_the_key(
    hook: dict[str, Any], environ: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigProblems) as caught:
        parse_config(yaml.safe_dump({"targets": [TARGET], "notify": [hook]}), "x.yaml", environ=environ)
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems
    assert not any("token" in p or "hooks.slack.com/services" in p for p in caught.value.problems), "never the URL"


def test_a_loopback_http_webhook_is_taken() -> None:
    config = parse_config(
        yaml.safe_dump({"targets": [TARGET], "notify": [{"type": "slack", "url": {"env": "H"}}]}),
        "x.yaml",
        environ={"H": "http://127.0.0.1:8080/hook"},
    )
    assert [h.type for h in config.notify] == ["slack"]


def test_a_lagging_consumer_says_which_secret_is_kept_and_why() -> None:
    [notice] = notices([planned(Usage(), lagging=(LAG,))])
    assert dict(notice.facts)["Kept old"] == "no sign-in with cur"
    assert "consumer.lagging" in dict(notice.facts)["What to do"]


def test_an_unreadable_report_says_the_reason_and_the_fix() -> None:
    [notice] = notices([planned(NO_PERMISSION)])
    assert dict(notice.facts)["Reason"] == "no_permission"
    assert dict(notice.facts)["What to do"] == "grant AuditLog.Read.All"
