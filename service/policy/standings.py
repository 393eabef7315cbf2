"""What is becoming of each credential (`status`'s STATE column), by the rules :func:`plan` retires by.

No rule is written twice: a standing asks the same :class:`Facts` and retirement rules the plan does, and
adds the dates they imply. A property test holds ``due`` to exactly the credentials the plan retires.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from service.model import Credential, Holding, Intent, Policy, Standing, State, Usage
from service.policy.evidence import evidence
from service.policy.facts import Facts, renewal_time
from service.policy.retirement import awaiting_evidence, known, lagging_consumers, settles_at, superseded


def standings(
    now: datetime,
    credentials: Sequence[Credential],
    holdings: Sequence[Holding],
    policy: Policy,
    intents: Sequence[Intent] = (),
    usage: Usage | None = None,
) -> list[Standing]:
    """Each credential's :class:`State`, with when it renews (in use) or may go (superseded, orphan); with
    ``retire_on: usage`` each one's last sign-in and the evidence a superseded one waits for."""
    facts = Facts.of(now, credentials, holdings, policy, intents=intents, usage=usage)
    held = set(k for k in facts.held.values() if k)
    pending = {h.key_id for h in holdings if h.pending}
    strangers = {c.key_id for c in facts.strangers}
    settle_at = settles_at(facts)
    waiting = {gap.key_id: gap for gap in awaiting_evidence(facts)}
    kept = {gap.key_id for gap in lagging_consumers(facts)}
    usage = evidence(facts)
    seen = dict(usage.last_sign_in) if usage is not None else {}
    result = []
    for c in credentials:
        if c.key_id in held:
            result.append(
                Standing(
                    c.key_id,
                    State.IN_USE,
                    renew_at=renewal_time(c, policy),
                    pending=c.key_id in pending,
                    last_sign_in=seen.get(c.key_id),
                )
            )
        elif c.key_id in strangers:
            result.append(Standing(c.key_id, State.FOREIGN))
        elif not facts.ours(c):
            result.append(Standing(c.key_id, State.UNMANAGED))
        elif c.managed(policy.marker) and c.key_id not in facts.recorded and known(facts):
            after = c.start + policy.in_flight_timeout if c.start is not None else None
            result.append(Standing(c.key_id, State.ORPHAN, retire_after=after, due=not facts.in_flight(c)))
        elif not known(facts):
            result.append(Standing(c.key_id, State.MAY_BE_HELD))
        else:
            gap = waiting.get(c.key_id)
            # Kept for its consumer: it goes when the report shows the switch, at the latest once it expired.
            # Too young to tell: not before usage_lag has run since the handout (the report may lag that much).
            after = c.end if c.key_id in kept else settle_at
            if gap is not None and c.key_id not in kept and after is not None:
                after = max(after, gap.handed_out + policy.usage_lag)
            result.append(
                Standing(
                    c.key_id,
                    State.SUPERSEDED,
                    retire_after=after,
                    due=superseded(facts, c) is not None,
                    last_sign_in=seen.get(c.key_id),
                    missing=gap.missing if gap else None,
                )
            )
    return result
