"""Evidence of the switch (``retire_on: usage``): does Entra's sign-in report show the consumers moved on?

A superseded credential may go, beyond the grace period, only when the report shows a sign-in with each
credential the sinks hold now made after it was handed out, and no sign-in with the superseded one later
than ``usage_lag`` after the last handout (time for a consumer to reload, and for the report, which lags by
hours, to show it). :func:`missing` says what is missing; the retirement rule keeps the credential while
anything is, until it expires (then it works for no one and goes anyway). The verification sign-in of a new
secret is made before any sink has it, so it never counts as the consumer's.

When the report could not be read (:attr:`service.model.Usage.gap`) no evidence is asked for: the grace
period alone decides, as with ``retire_on: grace_period``.
"""

from __future__ import annotations

from datetime import datetime

from service.clock import iso
from service.durations import format_duration
from service.model import Credential, MissingEvidence, Usage
from service.policy.facts import Facts


def evidence(facts: Facts) -> Usage | None:
    """The report to judge by: only with ``retire_on: usage`` and a report that was read and has data."""
    usage = facts.usage
    if not facts.policy.on_usage or usage is None or not usage.available:
        return None
    return usage


def handouts(facts: Facts) -> dict[str, datetime]:
    """Each credential a sink holds, and when a sink first took it (confirmed holdings with a time only)."""
    first: dict[str, datetime] = {}
    for h in facts.holdings:
        if h.key_id and facts.held.get(h.sink) and h.since is not None and not h.pending:
            first[h.key_id] = min(h.since, first.get(h.key_id, h.since))
    return first


def missing(facts: Facts, credential: Credential) -> MissingEvidence | None:
    """What the report has yet to show before ``credential`` (superseded) may go; None when it shows the switch,
    or when no evidence is asked for (see :func:`evidence`)."""
    usage = evidence(facts)
    first = handouts(facts)
    if usage is None or not first:
        return None
    last = usage.last_sign_in
    handed_out = max(h.since for h in facts.holdings if h.since is not None)
    quiet_from = handed_out + facts.policy.usage_lag
    said = []
    # Strictly after: the verification sign-in of a new secret comes just before its first handout, and both
    # times may be cut to the second (Key Vault's `created`, the report's), so the same second proves nothing.
    unseen = sorted(k for k, since in first.items() if (seen := last.get(k)) is None or seen <= since)
    if unseen:
        said.append(f"no sign-in with {', '.join(unseen)} since it was handed out")
    old = last.get(credential.key_id)
    if old is not None and old > quiet_from:
        said.append(
            f"{credential.key_id} still signed in at {iso(old)}, more than usage_lag "
            f"({format_duration(facts.policy.usage_lag)}) after its successor was handed out ({iso(handed_out)})"
        )
    lagging = bool(said)
    if facts.now < quiet_from:
        said.append(f"the report may not show the last sign-ins before {iso(quiet_from)} (usage_lag)")
    if not said:
        return None
    in_use = tuple(sorted(first))
    return MissingEvidence(
        credential.key_id,
        in_use,
        handed_out,
        {k: last.get(k) for k in (credential.key_id, *in_use)},
        "; ".join(said),
        lagging,
    )
