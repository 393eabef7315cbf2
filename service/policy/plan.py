"""The actions for one target in the order apply must take them: the rules' answers put together.

:func:`plan` asks the retirement rules (service/policy/retirement.py) which credentials may go, the
rotation chain (rotation.py) whether to create one and why, and, if so, the blocking rules (blocking.py)
whether it must wait; then it orders what is left, and the maintenance windows (window.py) say what of it
may happen now so that a pass that dies at any point leaves every
consumer working.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from service.model import NO_FLAGS, Action, Credential, Flags, Holding, Intent, Kind, Policy, Reason, Usage
from service.policy.blocking import BLOCKING, room_needed
from service.policy.facts import EARLIEST, Facts, first, may_be_held
from service.policy.retirement import retirements, revocations
from service.policy.rotation import ROTATION, Why, lagging, sources
from service.policy.window import windowed


def plan(
    now: datetime,
    credentials: Sequence[Credential],
    holdings: Sequence[Holding],
    policy: Policy,
    flags: Flags | None = None,
    intents: Sequence[Intent] = (),
    usage: Usage | None = None,
) -> list[Action]:
    """The actions for one target, in the order apply must take them.

    ``intents`` are the credentials this state store set out to create for the target (see
    :class:`service.model.Intent`); they tell its own lost ``addPassword`` answers (orphans) from
    credentials another host or state store created (:func:`~service.policy.facts.foreign`). ``usage`` is
    Entra's sign-in report, read for ``retire_on: usage`` (service/policy/evidence.py).
    """
    facts = Facts.of(now, credentials, holdings, policy, flags or NO_FLAGS, intents, usage)
    return windowed(facts, unwindowed(facts))


def unwindowed(facts: Facts) -> list[Action]:
    """The actions as if a maintenance window were open now."""
    retiring = retirements(facts)
    why = first(rule(facts) for rule in ROTATION)
    if why is None:
        # The lagging sinks get the current secret first; nothing a sink is known to hold is retired anyway.
        return [*resyncs(facts), *retiring]
    blocked = first(rule(facts, why, retiring) for rule in BLOCKING)
    if blocked is not None:
        return [*retiring, blocked]
    return rotation(facts, why, retiring)


def supersedes(facts: Facts) -> frozenset[str]:
    """What a push sink's consumer may hold beyond this store's receipts, that a delivery to it replaces.

    With no receipt at all, any valid managed credential (hand-made ones are never orphans, and recording
    them would let --revoke-previous take them); else the ones another store created. Never one still in
    flight: its pass may deliver it after ours, and then the consumer holds it, not ours, so it must stay
    unrecorded (foreign, never superseded) until a later pass answers it.
    """
    if all(h.readable for h in facts.holdings):
        return frozenset()
    if any(not h.known for h in facts.holdings if not h.readable):
        candidates = [c for c in may_be_held(facts.now, facts.credentials) if c.managed(facts.policy.marker)]
    else:
        candidates = list(facts.strangers)
    fresh = {c.key_id for c in facts.strangers if facts.in_flight(c)}
    return frozenset(c.key_id for c in candidates if c.key_id not in fresh)


def resyncs(facts: Facts) -> list[Action]:
    """Each lagging sink re-sent the credential in use from a readable sink that holds it.

    Only asked when the rotation chain has no answer, so a readable source exists for every lag
    (:func:`~service.policy.rotation.lag_without_source` answers otherwise).
    """
    current, found, handed_out = facts.current, sources(facts), supersedes(facts)
    if current is None or not found:
        return []
    return [
        Action(
            Kind.RESYNC,
            lag.reason,
            f"{lag.holding.sink} {lag.state}; re-send {current.key_id} from {found[0].sink}",
            key_id=current.key_id,
            sink=lag.holding.sink,
            source=found[0].sink,
            supersedes=handed_out - {current.key_id},
        )
        for lag in lagging(facts)
    ]


def rotation(facts: Facts, why: Why, retiring: Sequence[Action]) -> list[Action]:
    """A creation, and the retirements of this pass placed around it.

    The order is what keeps consumers working when a pass dies at any point. Nothing is removed before
    the new secret has reached every sink, except what must make room under ``max_credentials`` — and
    every planned retirement is of a credential no sink can hold (none is planned while a sink's holding
    is unknown), so removing it first cuts nobody off. Everything else is marked ``after_rotation``: if
    the pass dies or the rotation fails, it simply waits for a later pass. That also covers a holding
    that is wrong (a receipt from a restored backup): by the time such a removal runs, every sink has
    been given the new secret.
    """

    def rank(action: Action) -> tuple[bool, bool, datetime, str]:
        # Make room with what was never handed out first, then with what no longer works, then the oldest.
        credential = facts.by_id[str(action.key_id)]
        return (
            action.reason is not Reason.ORPHAN,
            not credential.expired(facts.now),
            credential.start or EARLIEST,
            credential.key_id,
        )

    room = {a.key_id for a in sorted(retiring, key=rank)[: max(room_needed(facts, why), 0)]}
    return [
        *(a for a in retiring if a.key_id in room),
        Action(Kind.CREATE, why.reason, why.message, supersedes=supersedes(facts)),
        *(replace(a, after_rotation=True) for a in retiring if a.key_id not in room),
        *revocations(facts, (a.key_id for a in retiring)),
    ]
