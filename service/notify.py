"""What a pass tells people: a short message per target and kind (rotated, failed, consumer_lagging,
evidence_unavailable), as Teams and Slack take it.

:func:`notices` reads a pass's results and nothing else; the bodies are built here too, so that what
reaches a channel is plain data a test can read. A notice names credentials by key id and says the
failure's reason and what to do; it never holds a secret, nor Graph's hint of one (a secret's first
characters): it is built from the plan's actions and the error, which carry neither, and scrubbed anyway.
The sending is service/adapters/notifier.py's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from service.config.notify import NotifyEvent
from service.model import Kind
from service.reconcile import Outcome, TargetResult
from service.redact import clip, scrub


@dataclass(frozen=True)
class Notice:
    """One message: which target, what kind, a title and facts (label, text) in the order shown."""

    target: str
    kind: NotifyEvent
    title: str
    facts: tuple[tuple[str, str], ...]


def notices(results: Sequence[TargetResult]) -> list[Notice]:
    """At most one notice per target and kind: ``rotated`` when a new secret reached every sink this pass,
    ``failed`` when the target's pass failed (both, when a rotation was done and a later step failed), and
    with ``retire_on: usage`` ``consumer_lagging`` and ``evidence_unavailable``."""
    found: list[Notice] = []
    for result in results:
        app = [("App", f"{result.app.display_name} ({result.app.app_id})")] if result.app is not None else []
        created = [a for a in result.done if a.kind is Kind.CREATE]
        if created:
            retired = [str(a.key_id) for a in result.done if a.kind is Kind.RETIRE]
            facts = [("Target", result.target), *app, ("Why", f"{created[-1].reason}: {created[-1].message}")]
            if created[-1].window_overridden:
                facts.append(("Outside the windows", created[-1].window_overridden))
            if retired:
                facts.append(("Retired", ", ".join(retired)))
            found.append(
                Notice(
                    result.target,
                    NotifyEvent.ROTATED,
                    f"secret-rotator: {result.target} has a new client secret in every sink",
                    tuple(facts),
                )
            )
        if result.outcome is Outcome.FAILED and result.error is not None:
            error = result.error
            facts = [
                ("Target", result.target),
                *app,
                ("Reason", error.reason.value),
                ("What happened", clip(error, 500)),
            ]
            if error.hint:
                facts.append(("What to do", clip(error.hint, 500)))
            found.append(
                Notice(
                    result.target,
                    NotifyEvent.FAILED,
                    f"secret-rotator: rotation failed for {result.target}",
                    tuple(facts),
                )
            )
        found.extend(_evidence_notices(result, app))
    return found


def _evidence_notices(result: TargetResult, app: list[tuple[str, str]]) -> list[Notice]:
    """With ``retire_on: usage``: the old secrets kept because their consumer shows no switch (one notice for
    all of them), and a sign-in report that gave no evidence (the grace period decides instead)."""
    plan, found = result.plan, []
    if plan is None:
        return []
    if plan.lagging:
        facts = [("Target", result.target), *app]
        facts += [(f"Kept {lag.key_id}", clip(lag.missing, 500)) for lag in plan.lagging]
        facts.append(
            (
                "What to do",
                "check that every consumer (each Dime.Scheduler instance) took the new secret; "
                "see the runbook, consumer.lagging",
            )
        )
        found.append(
            Notice(
                result.target,
                NotifyEvent.CONSUMER_LAGGING,
                f"secret-rotator: {result.target}'s consumer still uses an old secret, which is kept",
                tuple(facts),
            )
        )
    usage = plan.evidence_gap
    if usage is not None and usage.gap is not None:
        facts = [("Target", result.target), *app, ("Reason", usage.gap.value)]
        if usage.detail:
            facts.append(("What happened", clip(usage.detail, 500)))
        if usage.hint:
            facts.append(("What to do", clip(usage.hint, 500)))
        found.append(
            Notice(
                result.target,
                NotifyEvent.EVIDENCE_UNAVAILABLE,
                f"secret-rotator: no sign-in evidence for {result.target}; the grace period decides",
                tuple(facts),
            )
        )
    return found


def teams_body(notice: Notice) -> str:
    """A Teams incoming webhook's message: one Adaptive Card with the title and a fact set."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": notice.title,
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
                "color": "Good" if notice.kind is NotifyEvent.ROTATED else "Attention",
            },
            {"type": "FactSet", "facts": [{"title": label, "value": text} for label, text in notice.facts]},
        ],
    }
    message = {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card},
        ],
    }
    return scrub(json.dumps(message))


def _slack_escape(text: str) -> str:
    # Slack reads &, < and > as markup (links, mentions): escaped, a value shows as written.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(notice: Notice) -> str:
    """A Slack incoming webhook's message: the title in bold, then one line per fact."""
    lines = [f"*{_slack_escape(notice.title)}*", *(f"*{label}*: {_slack_escape(text)}" for label, text in notice.facts)]
    return scrub(json.dumps({"text": "\n".join(lines)}))


BODIES = {"teams": teams_body, "slack": slack_body}
