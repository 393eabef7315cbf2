"""What the rules read: one target's credentials, holdings and intents, and what follows from them.

The small pure functions here answer one question each (when is a credential due, which is newest, which
does a sink hold, whose is it); :class:`Facts` works them out once per plan, so that every rule reads the
same answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from service.model import NO_FLAGS, Credential, Flags, Holding, Intent, Policy, Usage

EARLIEST = datetime.min.replace(tzinfo=UTC)  # for sorting credentials without a date first
_T = TypeVar("_T")


def first(answers: Iterable[_T | None]) -> _T | None:
    """The first answer that is not None: how a chain of rules decides (``first(rule(facts) for rule in
    CHAIN)`` asks the rules in order and stops at the first that answers)."""
    return next((answer for answer in answers if answer is not None), None)


def renewal_time(credential: Credential, policy: Policy) -> datetime | None:
    """When ``credential`` should be replaced; None for a credential that never expires.

    ``renew_before`` if set, else ``renew_before_ratio`` of the credential's own lifetime. Never earlier
    than half its lifetime: a credential shortened by a tenant's lifetime policy (or made by hand with a
    short life) must not be due the moment it is created, or every pass would rotate.
    """
    if credential.end is None:
        return None
    lifetime = credential.end - credential.start if credential.start is not None else None
    if policy.renew_before is not None:
        before = policy.renew_before
    else:
        before = (lifetime if lifetime is not None else policy.lifetime) * policy.renew_before_ratio
    if lifetime is not None and lifetime > timedelta(0):
        before = min(before, lifetime / 2)
    return credential.end - before


def lifetime_under(limit: timedelta) -> timedelta:
    """The lifetime to ask for under a tenant's password lifetime ``limit``: a margin short of it, for the
    clock skew between us and Graph, which measures from its own start time."""
    return limit - min(timedelta(hours=1), limit / 10)


def newest(credentials: Iterable[Credential]) -> Credential | None:
    """The credential the sinks converge to: the one created last."""
    return max(credentials, key=lambda c: (c.start or EARLIEST, c.end or EARLIEST, c.key_id), default=None)


def in_use(credentials: Iterable[Credential], holdings: Iterable[Holding]) -> set[str]:
    """Key ids some sink holds (pending included) that are still on the app."""
    on_app = {c.key_id for c in credentials}
    return {h.key_id for h in holdings if h.key_id in on_app}


def may_be_held(now: datetime, credentials: Iterable[Credential]) -> list[Credential]:
    """The credentials a sink whose holding is unknown may hold and depend on: every one still valid."""
    return [c for c in credentials if not c.expired(now)]


def recorded(credentials: Sequence[Credential], holdings: Sequence[Holding]) -> set[str]:
    """Every key id some sink recorded (pending receipts and what a sink holds now included)."""
    on_app = {c.key_id for c in credentials}
    return set().union(*(h.recorded for h in holdings)) | {h.key_id for h in holdings if h.key_id in on_app}


def age(now: datetime, credential: Credential) -> timedelta:
    """How long ago ``credential`` was created (forever, for one without a start date)."""
    return now - credential.start if credential.start is not None else timedelta.max


def rounded(value: timedelta) -> timedelta:
    """``value`` cut to whole seconds, as messages say a duration."""
    return timedelta(seconds=int(value.total_seconds()))


def claims(credentials: Sequence[Credential], intents: Sequence[Intent]) -> tuple[Intent, ...]:
    """Intents whose ``addPassword`` answer was lost, each with the key id of the credential it made, where
    the app shows that beyond doubt: no more credentials of its name (none of them another intent's by key
    id) than such intents. Names have whole seconds, so another store may name one alike in the same
    second; then none is claimed, and all of them count as another store's.

    The engine records these in `run` before it acts on them: once claimed by key id, a credential of the
    same name that another store made stays that store's, even after this store's own has gone.
    """
    known = {i.key_id for i in intents if i.key_id}
    lost: dict[str, list[Intent]] = {}
    for intent in intents:
        if not intent.key_id and not intent.refused:
            lost.setdefault(intent.name, []).append(intent)
    found = []
    for name, waiting in lost.items():
        named = [c for c in credentials if c.display_name == name and c.key_id not in known]
        if 0 < len(named) <= len(waiting):
            pairs = zip(sorted(waiting, key=lambda i: i.at), sorted(named, key=lambda c: c.key_id), strict=False)
            found += [replace(intent, key_id=c.key_id) for intent, c in pairs]
    return tuple(found)


def foreign(
    now: datetime,
    credentials: Sequence[Credential],
    holdings: Sequence[Holding],
    policy: Policy,
    intents: Sequence[Intent] = (),
) -> list[Credential]:
    """Valid managed credentials that another host or state store created: a push sink may hold them.

    Only a target with a sink that cannot be read back has any: what a Key Vault sink was given is in
    its versions' tags, shared by every rotator. A managed credential no sink recorded is this store's own
    when one of its intents has the credential's key id, or claims it (:func:`claims`); any other one was
    created elsewhere, and a pass there may have pushed it. An expired one is no one's secret.
    """
    if all(h.readable for h in holdings):
        return []
    handed_out = recorded(credentials, holdings)
    mine = {i.key_id for i in (*intents, *claims(credentials, intents)) if i.key_id}
    return [
        c for c in credentials if c.managed(policy.marker) and not c.expired(now) and c.key_id not in handed_out | mine
    ]


@dataclass(frozen=True)
class Facts:
    """One target as the rules see it: the plan's inputs, and what follows from them, worked out once.

    ``held`` maps each sink to the key id it holds (pending included) when that credential is still on
    the app, else None: a sink whose key id is gone holds a dead secret, nothing usable. ``current`` is
    the newest credential some sink holds; ``strangers`` the credentials another host or state store
    created that a push sink may hold (:func:`foreign`), and ``answerable`` those of them old enough to
    answer: one still in flight is waited for, since answered now it could reach the consumer after our
    answer did. ``usage`` is Entra's sign-in report (``retire_on: usage``; see service/policy/evidence.py).
    """

    now: datetime
    credentials: Sequence[Credential]
    holdings: Sequence[Holding]
    policy: Policy
    flags: Flags
    intents: Sequence[Intent]
    by_id: Mapping[str, Credential]
    held: Mapping[str, str | None]
    recorded: frozenset[str]
    current: Credential | None
    strangers: tuple[Credential, ...]
    answerable: tuple[Credential, ...]
    usage: Usage | None = None  # Entra's sign-in report, for retire_on: usage (None: not read)

    @classmethod
    def of(
        cls,
        now: datetime,
        credentials: Sequence[Credential],
        holdings: Sequence[Holding],
        policy: Policy,
        flags: Flags = NO_FLAGS,
        intents: Sequence[Intent] = (),
        usage: Usage | None = None,
    ) -> Facts:
        """The facts of one target's plan."""
        by_id = {c.key_id: c for c in credentials}
        held = {h.sink: h.key_id if h.key_id in by_id else None for h in holdings}
        strangers = tuple(foreign(now, credentials, holdings, policy, intents))
        facts = cls(
            now,
            credentials,
            holdings,
            policy,
            flags,
            intents,
            by_id,
            held,
            recorded=frozenset(recorded(credentials, holdings)),
            current=newest(by_id[k] for k in held.values() if k is not None),
            strangers=strangers,
            answerable=(),
            usage=usage,
        )
        return replace(facts, answerable=tuple(c for c in strangers if not facts.in_flight(c)))

    @property
    def unknown(self) -> list[str]:
        """The sinks nothing says the holding of (push sinks without a receipt)."""
        return [h.sink for h in self.holdings if not h.known]

    @property
    def renew_at(self) -> datetime | None:
        """When the credential in use is due for renewal (None: nothing in use, or it never expires)."""
        return renewal_time(self.current, self.policy) if self.current is not None else None

    @property
    def protected(self) -> frozenset[str]:
        """Key ids no retirement may touch: what a sink holds (pending receipts too: the consumer may be using
        that secret), and what another store created (a push sink's consumer may hold it)."""
        return frozenset({k for k in self.held.values() if k} | {c.key_id for c in self.strangers})

    def age(self, credential: Credential) -> timedelta:
        """How long ago ``credential`` was created."""
        return age(self.now, credential)

    def in_flight(self, credential: Credential) -> bool:
        """No sink recorded ``credential`` and it is younger than ``in_flight_timeout``: the pass that made it
        may still be verifying or delivering it, so no rule may take it away or answer it yet."""
        return credential.key_id not in self.recorded and self.age(credential) < self.policy.in_flight_timeout

    def ours(self, credential: Credential) -> bool:
        """This service may remove ``credential``: it made it (the marker's name), or ``retire_unmanaged``."""
        return credential.managed(self.policy.marker) or self.policy.retire_unmanaged
