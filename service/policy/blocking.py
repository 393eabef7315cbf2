"""When a rotation the chain asked for must not happen, and what to do instead: named rules, first wins.

Each rule takes the facts, the rotation's :class:`~service.policy.rotation.Why` and the retirements this
pass plans, and answers a BLOCKED action (the pass fails with it, naming the fix) or None.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from service.durations import format_duration
from service.model import Action, Kind, Reason
from service.policy.facts import Facts, rounded
from service.policy.rotation import Why

BlockRule = Callable[[Facts, Why, Sequence[Action]], Action | None]

# Rotations that answer a push sink whose holding is unknown: another store answering one of them soon
# after is the mark of two state stores rotating one target.
ANSWERS = frozenset({Reason.NO_RECEIPT, Reason.FOREIGN_CREDENTIAL})
# Rotations that repair an unconfirmed or lagging push: they may take the slot kept free for them.
REPAIRS = frozenset({Reason.PENDING_UNCONFIRMED, Reason.SINK_LAGS_UNREADABLE})


def spare_slot(facts: Facts, why: Why) -> int:
    """1 when the rotation must leave a slot free under ``max_credentials``, else 0.

    A push that is never confirmed (a crash, a timeout) can only be repaired by yet another rotation when
    no sink can be read back to re-send the secret: so keep a slot free for it, or the target is stuck at
    the cap with two secrets that may not go (the one sent, the one perhaps still in use). A repair itself
    may take that slot.
    """
    return 1 if not any(h.readable for h in facts.holdings) and why.reason not in REPAIRS else 0


def room_needed(facts: Facts, why: Why) -> int:
    """How many credentials must go before the new one is created (0 or less: none)."""
    return len(facts.credentials) + 1 + spare_slot(facts, why) - facts.policy.max_credentials


def competing_state_store(facts: Facts, why: Why, retirements: Sequence[Action]) -> Action | None:
    """An answer to another store's credential, when another state store answered this one's own answer
    within the grace period.

    Two rotators with separate state stores on one push target can never agree: each takes the other's new
    secret for one its consumer may hold, and answers it with a new one. Rather than rotating back and
    forth, this store waits (safely: it never retires another store's secret, and what it last pushed
    still works) and says what to fix. After the grace period it answers anyway, so that a one-off run
    from another host never leaves a target stuck.
    """
    if why.reason is not Reason.FOREIGN_CREDENTIAL:
        return None
    made = [i for i in facts.intents if not i.refused]
    answers = [i for i in made if i.reason in ANSWERS]
    if not answers:
        return None
    last = max(answers, key=lambda i: i.at)
    if last is not max(made, key=lambda i: i.at) or facts.now - last.at >= facts.policy.grace_period:
        return None
    later = [c for c in facts.answerable if c.start is not None and c.start > last.at]
    # Never while a push sink was last given something that no longer works: that needs a new secret.
    if not later or any(facts.held[h.sink] is None for h in facts.holdings if not h.readable):
        return None
    return Action(
        Kind.BLOCKED,
        Reason.COMPETING_STATE_STORE,
        f"{', '.join(c.key_id for c in later)} was created by another host or state store after this store "
        f"answered one it had not recorded ({last.reason}, {format_duration(rounded(facts.now - last.at))} ago): "
        "two rotators with separate state stores keep rotating this target. Give them one shared state store (the "
        "same state.path volume, or one state ConfigMap), or stop all but one. Nothing the push sinks may hold "
        "is retired meanwhile; "
        f"this store answers again once its last answer is {format_duration(facts.policy.grace_period)} old",
    )


def no_room(facts: Facts, why: Why, retirements: Sequence[Action]) -> Action | None:
    """The new credential would exceed ``max_credentials`` (keeping the repair slot, :func:`spare_slot`) even
    after every retirement this pass may make."""
    if room_needed(facts, why) <= len(retirements):
        return None
    remaining, spare = len(facts.credentials) - len(retirements), spare_slot(facts, why)
    cap = facts.policy.max_credentials
    if spare and remaining + 1 <= cap:
        return Action(
            Kind.BLOCKED,
            Reason.NO_ROOM_FOR_RETRY,
            f"{why.message}, but no sink of this target can be read back: a push that is never confirmed can only "
            f"be repaired by another rotation, so one slot must stay free for it. The app has {remaining} "
            f"secret(s) that may not be retired yet and max_credentials is {cap}: raise max_credentials to "
            f"{remaining + 2}, or remove a secret of the app that no consumer uses",
        )
    stuck = (
        " (an unconfirmed push needs a new secret to repair it: see the runbook, 'push never confirmed, no room')"
        if why.reason in REPAIRS
        else ""
    )
    return Action(
        Kind.BLOCKED,
        Reason.CAP_REACHED,
        f"{why.message}, but the app has {remaining} secret(s) that may not be retired yet and "
        f"max_credentials is {cap}: remove an unused secret or raise max_credentials to "
        f"{remaining + 1 + spare}{stuck}",
    )


BLOCKING: tuple[BlockRule, ...] = (competing_state_store, no_room)
