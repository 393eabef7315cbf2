"""Which credentials may go, and why: named rules asked of each credential no sink can hold.

A credential is retired only when this service may remove it (:meth:`Facts.ours`: its own by name, or
``retire_unmanaged``), no sink holds it and no other store's consumer may (:attr:`Facts.protected`), and a
rule says why: :func:`orphan` (never handed out) or :func:`superseded` (handed out, and every sink has
held its successor for the grace period; with ``retire_on: usage`` also the sign-in report shows the switch,
or the credential has expired: service/policy/evidence.py). ``--revoke-previous`` adds :func:`revoked` after
the rotation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from service.durations import format_duration
from service.model import Action, Credential, Kind, MissingEvidence, Reason
from service.policy.evidence import evidence, missing
from service.policy.facts import Facts, first, rounded

RetireRule = Callable[[Facts, Credential], Action | None]


def known(facts: Facts) -> bool:
    """Every sink says what it recorded: only then does "never recorded" prove "never handed out"."""
    return all(h.known for h in facts.holdings)


def settles_at(facts: Facts) -> datetime | None:
    """When every sink will have held its current credential for the grace period: the last of them to have
    taken its credential, plus ``grace_period``. None while a sink holds none known and confirmed."""
    if not facts.holdings or not known(facts):
        return None
    if not all(facts.held.get(h.sink) is not None and not h.pending and h.since is not None for h in facts.holdings):
        return None
    return max(h.since for h in facts.holdings if h.since is not None) + facts.policy.grace_period


def settled(facts: Facts) -> bool:
    """Every sink holds a credential of the app, confirmed, for at least the grace period: what none of them
    holds is no one's any more."""
    at = settles_at(facts)
    return at is not None and facts.now >= at


def _expired(facts: Facts, credential: Credential) -> str:
    return " (expired)" if credential.expired(facts.now) else ""


def orphan(facts: Facts, credential: Credential) -> Action | None:
    """This service made it and no sink ever recorded it, so nobody ever had its secret; once it is older than
    ``in_flight_timeout`` (the pass that made it may still be delivering it). Only while every sink says what
    it recorded: with every managed credential no sink recorded that is no stranger being this store's own."""
    if not credential.managed(facts.policy.marker) or credential.key_id in facts.recorded or not known(facts):
        return None
    if facts.in_flight(credential):
        return None
    return Action(
        Kind.RETIRE,
        Reason.ORPHAN,
        f"{credential.key_id}{_expired(facts, credential)} was created "
        f"{format_duration(rounded(facts.age(credential)))} ago and no sink ever recorded it",
        key_id=credential.key_id,
    )


def superseded(facts: Facts, credential: Credential) -> Action | None:
    """A sink was given it once (or it is not this service's by name, with ``retire_unmanaged``), and every sink
    has held its current credential for the grace period (:func:`settled`)."""
    if credential.managed(facts.policy.marker) and credential.key_id not in facts.recorded:
        return None  # never handed out: the orphan rule's
    if not settled(facts):
        return None
    message = (
        f"{credential.key_id}{_expired(facts, credential)} is superseded and every sink has held its successor "
        f"for at least {format_duration(facts.policy.grace_period)}"
    )
    if evidence(facts) is None:
        return Action(Kind.RETIRE, Reason.SUPERSEDED, message, key_id=credential.key_id)
    gap = missing(facts, credential)
    if gap is None:
        return Action(
            Kind.RETIRE,
            Reason.SUPERSEDED,
            f"{message}, and the sign-in report shows the switch",
            key_id=credential.key_id,
        )
    if credential.expired(facts.now):
        # It works for no one now, whoever still presents it: keeping it would only hold a slot.
        return Action(
            Kind.RETIRE,
            Reason.SUPERSEDED_EXPIRED,
            f"{credential.key_id} has expired; the sign-in report never showed the switch ({gap.missing})",
            key_id=credential.key_id,
        )
    return None


RETIREMENT: tuple[RetireRule, ...] = (orphan, superseded)


def retirements(facts: Facts) -> list[Action]:
    """Credentials no sink can hold that may go now, in the app's order. Each is provably unheld: while any
    sink's holding is unknown, none is planned (no orphan, and nothing is settled).

    A credential another store created (``strangers``) is never planned: the consumer may hold it, until
    an answer records it as superseded. Everything else stays as provable with strangers about: a push
    sink holds either what its receipt says or something pushed since by another store, which is a
    credential that store created (one young when this store recorded what it recorded, so never one of
    those) or what a shared Key Vault held (which a Key Vault sink here holds too); so neither this store's
    own orphans (never pushed by anyone) nor what it recorded before its last confirmed push can be held.
    """
    actions = []
    for credential in facts.credentials:
        if credential.key_id in facts.protected or not facts.ours(credential):
            continue
        action = first(rule(facts, credential) for rule in RETIREMENT)
        if action is not None:
            actions.append(action)
    return actions


def lagging_consumers(facts: Facts) -> list[MissingEvidence]:
    """The superseded credentials that only the sign-in report keeps (``retire_on: usage``): the grace period
    has run, and the report shows no switch (``consumer.lagging``). Kept until the report shows it, or until
    they expire."""
    if not settled(facts):
        return []
    return [gap for gap in awaiting_evidence(facts) if gap.lagging]


def awaiting_evidence(facts: Facts) -> list[MissingEvidence]:
    """Each valid superseded credential this service may retire, with the evidence it waits for
    (``retire_on: usage``); [] when no evidence is asked for."""
    if evidence(facts) is None:
        return []
    found = []
    for credential in facts.credentials:
        if credential.key_id in facts.protected or not facts.ours(credential) or credential.expired(facts.now):
            continue
        if credential.managed(facts.policy.marker) and credential.key_id not in facts.recorded:
            continue  # never handed out (the orphan rule's): no consumer to wait for
        gap = missing(facts, credential)
        if gap is not None:
            found.append(gap)
    return found


def revoked(facts: Facts, credential: Credential) -> Action | None:
    """``--revoke-previous``: every other credential this service may remove or that a sink was given (a
    hand-made secret a consumer had, too), once the new secret is in every sink; never one still in flight
    (another pass's, that nobody recorded yet)."""
    if not facts.flags.revoke_previous:
        return None
    if not (facts.ours(credential) or credential.key_id in facts.recorded) or facts.in_flight(credential):
        return None
    return Action(
        Kind.RETIRE,
        Reason.REVOKED,
        f"revoke {credential.key_id} once the new secret is in every sink",
        key_id=credential.key_id,
        after_rotation=True,
    )


def revocations(facts: Facts, retired: Iterable[str | None]) -> list[Action]:
    """What :func:`revoked` takes besides the credentials already ``retired`` in the same pass."""
    gone = set(retired)
    return [a for c in facts.credentials if c.key_id not in gone and (a := revoked(facts, c)) is not None]
