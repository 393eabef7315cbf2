"""Whether to create a new credential, and why: a chain of named rules, the first that answers decides.

Each rule is a small pure function of :class:`~service.policy.facts.Facts` that returns a :class:`Why`
(the reason and a sentence) or None, like cert-manager's ``policies.Chain``. :data:`ROTATION` is the
chain in order: what the operator asked for first, then a target with nothing in use, then one whose
sinks cannot be brought to the secret in use, then renewal. When none answers, the sinks that lag are
re-synced instead (:func:`resyncs`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from service.model import Credential, Holding, Reason
from service.policy.facts import Facts, may_be_held


class Why(NamedTuple):
    """A rule's answer: the reason, and the sentence `plan` and the log show."""

    reason: Reason
    message: str


Rule = Callable[[Facts], Why | None]


def foreign_why(facts: Facts, strangers: Sequence[Credential], state: str) -> str:
    """Why another store's credential is answered with a new secret: who made it, who may hold it."""
    sinks = ", ".join(h.sink for h in facts.holdings if not h.readable)
    return (
        f"{', '.join(c.key_id for c in strangers)} created by another host or state store: {sinks} may hold "
        f"it ({state}): give it a new secret it is known to hold, and keep the others until it has held that one "
        "for the grace period"
    )


# --- the rules, in the chain's order ----------------------------------------------------------------


def revoke_previous_asked(facts: Facts) -> Why | None:
    """``--revoke-previous`` (a leaked secret): rotate, whatever else holds."""
    if not facts.flags.revoke_previous:
        return None
    return Why(Reason.REVOKE_PREVIOUS, "--revoke-previous: replace the secret in use and revoke the older ones")


def force_asked(facts: Facts) -> Why | None:
    """``--force``: rotate although nothing is due."""
    if not facts.flags.force:
        return None
    return Why(Reason.FORCED, "--force: rotate although nothing is due")


def holding_unknown(facts: Facts) -> Why | None:
    """No sink holds a credential of the app and a push sink has no receipt, while some credential is valid:
    that sink may hold any of them, so give it one it is known to hold (and keep the others)."""
    unknown = facts.unknown
    valid = may_be_held(facts.now, facts.credentials)
    if facts.current is not None or not unknown or not valid:
        return None
    return Why(
        Reason.NO_RECEIPT,
        f"no receipt: {', '.join(unknown)} may hold any of the app's {len(valid)} valid secret(s): give it a new "
        "one it is known to hold, and keep all of them until it has held that one for the grace period",
    )


def foreign_unanswered(facts: Facts) -> Why | None:
    """No sink holds a credential of the app, and a push sink may hold one another store created: answer it."""
    if facts.current is not None or not facts.answerable:
        return None
    return Why(
        Reason.FOREIGN_CREDENTIAL,
        foreign_why(facts, facts.answerable, "no sink holds a credential still on the app"),
    )


def nothing_in_use(facts: Facts) -> Why | None:
    """No sink holds a credential of the app (a first run, or every sink holds a removed one)."""
    if facts.current is not None:
        return None
    return Why(Reason.NO_CREDENTIAL_IN_USE, "no sink holds a credential of this app")


def lag_without_source(facts: Facts) -> Why | None:
    """A sink lags behind the credential in use and no readable sink holds that one to re-send: only a new
    credential, given to every sink, brings them together."""
    current, lags = facts.current, lagging(facts)
    if current is None or not lags or sources(facts):
        return None
    first = lags[0]
    if first.reason is Reason.FOREIGN_CREDENTIAL:
        return Why(first.reason, foreign_why(facts, facts.answerable, f"its receipt says {current.key_id}"))
    reason = Reason.PENDING_UNCONFIRMED if first.holding.pending else Reason.SINK_LAGS_UNREADABLE
    return Why(reason, f"{first.holding.sink} {first.state}, and no readable sink holds {current.key_id} to re-send")


def renewal_due(facts: Facts) -> Why | None:
    """The credential in use has reached its renewal time (:func:`~service.policy.facts.renewal_time`)."""
    current, renew_at = facts.current, facts.renew_at
    if current is None or renew_at is None or renew_at > facts.now:
        return None
    if current.expired(facts.now):
        return Why(Reason.RENEWAL_DUE, f"{current.key_id} expired at {current.end:%Y-%m-%d %H:%M}Z")
    return Why(Reason.RENEWAL_DUE, f"{current.key_id} was due for renewal at {renew_at:%Y-%m-%d %H:%M}Z")


ROTATION: tuple[Rule, ...] = (
    revoke_previous_asked,
    force_asked,
    holding_unknown,
    foreign_unanswered,
    nothing_in_use,
    lag_without_source,
    renewal_due,
)


# --- sinks that lag behind the credential in use ------------------------------------------------------


@dataclass(frozen=True)
class Lag:
    """A sink that does not (surely) hold the credential in use: why (a resync reason) and its state in words."""

    holding: Holding
    reason: Reason
    state: str


def lagging(facts: Facts) -> list[Lag]:
    """Each sink that lags behind the credential in use, in the holdings' order ([] when none is in use).

    A push sink lags too when it may hold a credential another store created (``answerable``), whatever
    its receipt says.
    """
    current = facts.current
    if current is None:
        return []
    lags = []
    for h in facts.holdings:
        key = facts.held[h.sink]
        doubted = bool(facts.answerable) and not h.readable
        if key == current.key_id and not h.pending and not doubted:
            continue
        if h.pending and key == current.key_id:
            lags.append(Lag(h, Reason.PENDING_RESYNC, "never confirmed receiving it"))
        elif not h.known:
            lags.append(Lag(h, Reason.SINK_LAGS, "has no receipt (it may hold any of the app's secrets)"))
        elif key != current.key_id:
            lags.append(Lag(h, Reason.SINK_LAGS, f"holds {key or 'nothing known'}"))
        else:
            state = (
                f"may hold {', '.join(c.key_id for c in facts.answerable)}, created by another host or state "
                "store, although its receipt says it holds " + current.key_id
            )
            lags.append(Lag(h, Reason.FOREIGN_CREDENTIAL, state))
    return lags


def sources(facts: Facts) -> list[Holding]:
    """The readable sinks that surely hold the credential in use: where a lagging sink is re-synced from."""
    current = facts.current
    if current is None:
        return []
    return [h for h in facts.holdings if h.readable and not h.pending and facts.held[h.sink] == current.key_id]
