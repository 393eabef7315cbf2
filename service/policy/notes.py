"""What `plan` and `status` say about a target that is no action: facts an operator should know."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from service.clock import iso
from service.durations import format_duration
from service.model import Credential, Holding, Intent, Policy, Usage
from service.policy.facts import Facts, may_be_held
from service.policy.retirement import awaiting_evidence, lagging_consumers


def notes(
    now: datetime,
    credentials: Sequence[Credential],
    holdings: Sequence[Holding],
    policy: Policy | None = None,
    intents: Sequence[Intent] = (),
    usage: Usage | None = None,
) -> list[str]:
    """What `plan` and `status` must say that is no action: each push sink whose holding is unknown, or
    may be a credential another host or state store created; with ``retire_on: usage``, the sign-in report
    that could not be read, and the evidence each superseded credential waits for."""
    facts = Facts.of(now, credentials, holdings, policy or Policy(), intents=intents, usage=usage)
    live = ", ".join(c.key_id for c in may_be_held(now, credentials)) or "none is valid now"
    said = [
        f"no receipt: {h.sink} may hold any of these: {live}; none of them is retired until it has held a new "
        "secret for the grace period"
        for h in holdings
        if not h.known
    ]
    if facts.strangers:
        young = [c for c in facts.strangers if facts.in_flight(c)]
        wait = (
            f"; {', '.join(c.key_id for c in young)} is younger than in_flight_timeout "
            f"({format_duration(facts.policy.in_flight_timeout)}): the pass that made it may still be delivering "
            "it, so it is answered once it is older"
            if young
            else ""
        )
        described = ", ".join(c.key_id for c in facts.strangers)
        said += [
            f"created by another host or state store: {h.sink} may hold {described}; kept until {h.sink} has "
            f"held a newer secret for the grace period{wait}"
            for h in holdings
            if h.known and not h.readable
        ]
    return said + evidence_notes(facts)


def evidence_notes(facts: Facts) -> list[str]:
    """With ``retire_on: usage``: why the sign-in report gave no evidence, or what evidence each superseded
    credential still waits for."""
    usage = facts.usage
    if not facts.policy.on_usage or usage is None:
        return []
    if usage.gap is not None:
        return [
            f"evidence unavailable ({usage.gap}): {usage.detail}; superseded secrets go after the grace period "
            f"alone; fix: {usage.hint}"
        ]
    kept = {gap.key_id for gap in lagging_consumers(facts)}
    return [
        f"{'consumer lagging' if gap.key_id in kept else 'evidence missing'} for retiring {gap.key_id}: "
        f"{gap.missing}"
        + (
            f"; kept until it expires ({iso(end)}) or the report shows the switch"
            if gap.key_id in kept and (end := facts.by_id[gap.key_id].end)
            else ""
        )
        for gap in awaiting_evidence(facts)
    ]
