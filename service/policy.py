"""The pure decision: what one pass should do to one target, and why.

``plan(now, credentials, holdings, policy, flags, intents)`` reads nothing and writes nothing; time is an
argument. It imports no adapter and no SDK. The rules are DESIGN.md's "rotation protocol", step 2.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from service.durations import format_duration
from service.model import NO_FLAGS, Action, Credential, Flags, Holding, Intent, Kind, Policy, Reason

_MIN = datetime.min.replace(tzinfo=UTC)
# Rotations that answer a push sink whose holding is unknown: another store answering one of them soon
# after is the mark of two state stores rotating one target.
_ANSWERS = frozenset({Reason.NO_RECEIPT, Reason.FOREIGN_CREDENTIAL})


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


def _describe(credential: Credential) -> str:
    hint = f" (hint {credential.hint}…)" if credential.hint else ""
    return f"{credential.key_id}{hint}"


def _age(now: datetime, since: datetime | None) -> timedelta:
    return now - since if since is not None else timedelta.max


def newest(credentials: Iterable[Credential]) -> Credential | None:
    """The credential the sinks converge to: the one created last."""
    return max(credentials, key=lambda c: (c.start or _MIN, c.end or _MIN, c.key_id), default=None)


def in_use(credentials: Iterable[Credential], holdings: Iterable[Holding]) -> set[str]:
    """Key ids some sink holds (pending included) that are still on the app."""
    on_app = {c.key_id for c in credentials}
    return {h.key_id for h in holdings if h.key_id in on_app}


def may_be_held(now: datetime, credentials: Iterable[Credential]) -> list[Credential]:
    """The credentials a sink whose holding is unknown may hold and depend on: every one still valid."""
    return [c for c in credentials if not c.expired(now)]


def _recorded(credentials: Sequence[Credential], holdings: Sequence[Holding]) -> set[str]:
    """Every key id some sink recorded (pending receipts and what a sink holds now included)."""
    on_app = {c.key_id for c in credentials}
    return set().union(*(h.recorded for h in holdings)) | {h.key_id for h in holdings if h.key_id in on_app}


def needs_history(
    credentials: Sequence[Credential], holdings: Sequence[Holding], policy: Policy, flags: Flags | None = None
) -> bool:
    """Whether the plan needs every key id the sinks ever recorded, while some holding names only what its
    sink holds now (``history`` False).

    "Ever recorded" decides only about a credential that no sink holds: whether a managed one is an orphan
    or superseded (or another store's), and whether --revoke-previous takes an unmanaged one. So it is
    needed when a credential on the app that no sink holds could be retired: a managed one, any one with
    ``retire_unmanaged``, or any one under --revoke-previous.
    """
    if all(h.history for h in holdings):
        return False
    flags = flags or NO_FLAGS
    held = in_use(credentials, holdings)
    retirable = policy.retire_unmanaged or flags.revoke_previous
    return any(c.key_id not in held and (retirable or c.managed(policy.marker)) for c in credentials)


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
    recorded = _recorded(credentials, holdings)
    mine = {i.key_id for i in (*intents, *claims(credentials, intents)) if i.key_id}
    return [
        c for c in credentials
        if c.managed(policy.marker) and not c.expired(now) and c.key_id not in recorded | mine
    ]


def _in_flight(now: datetime, credential: Credential, policy: Policy) -> bool:
    """Young enough that the pass that created it may still be verifying or delivering it."""
    return _age(now, credential.start) < policy.in_flight_timeout


def notes(
    now: datetime,
    credentials: Sequence[Credential],
    holdings: Sequence[Holding],
    policy: Policy | None = None,
    intents: Sequence[Intent] = (),
) -> list[str]:
    """What `plan` and `status` must say that is no action: each push sink whose holding is unknown, or
    may be a credential another host or state store created."""
    policy = policy or Policy()
    live = ", ".join(_describe(c) for c in may_be_held(now, credentials)) or "none is valid now"
    said = [
        f"no receipt: {h.sink} may hold any of these: {live}; none of them is retired until it has held a new "
        "secret for the grace period"
        for h in holdings
        if not h.known
    ]
    strangers = foreign(now, credentials, holdings, policy, intents)
    if strangers:
        young = [c for c in strangers if _in_flight(now, c, policy)]
        wait = (
            f"; {', '.join(_describe(c) for c in young)} is younger than in_flight_timeout "
            f"({format_duration(policy.in_flight_timeout)}): the pass that made it may still be delivering it, so "
            "it is answered once it is older"
            if young else ""
        )
        described = ", ".join(_describe(c) for c in strangers)
        said += [
            f"created by another host or state store: {h.sink} may hold {described}; kept until {h.sink} has "
            f"held a newer secret for the grace period{wait}"
            for h in holdings
            if h.known and not h.readable
        ]
    return said


def plan(
    now: datetime,
    credentials: Sequence[Credential],
    holdings: Sequence[Holding],
    policy: Policy,
    flags: Flags | None = None,
    intents: Sequence[Intent] = (),
) -> list[Action]:
    """The actions for one target, in the order apply must take them.

    ``intents`` are the credentials this state store set out to create for the target (see
    :class:`service.model.Intent`); they tell its own lost ``addPassword`` answers (orphans) from
    credentials another host or state store created (:func:`foreign`).
    """
    flags = flags or NO_FLAGS
    by_id = {c.key_id: c for c in credentials}
    # A sink whose key id is no longer on the app holds a dead secret: it holds nothing usable.
    held = {h.sink: h.key_id if h.key_id in by_id else None for h in holdings}
    held_credentials = {by_id[k] for k in held.values() if k is not None}
    recorded = _recorded(credentials, holdings)
    current = newest(held_credentials)
    unknown = [h.sink for h in holdings if not h.known]
    strangers = foreign(now, credentials, holdings, policy, intents)
    # One still in flight is waited for: answered now, it could reach the consumer after our answer did.
    answerable = [c for c in strangers if not _in_flight(now, c, policy)]

    rotate: tuple[Reason, str] | None = None
    resyncs: list[Action] = []
    if current is not None:
        rotate, resyncs = _converge(current, holdings, held, answerable)

    renew_at = renewal_time(current, policy) if current is not None else None
    if flags.revoke_previous:
        rotate = (Reason.REVOKE_PREVIOUS, "--revoke-previous: replace the secret in use and revoke the older ones")
    elif flags.force:
        rotate = (Reason.FORCED, "--force: rotate although nothing is due")
    elif current is None and unknown and may_be_held(now, credentials):
        rotate = (
            Reason.NO_RECEIPT,
            f"no receipt: {', '.join(unknown)} may hold any of the app's "
            f"{len(may_be_held(now, credentials))} valid secret(s): give it a new one it is known to hold, and "
            "keep all of them until it has held that one for the grace period",
        )
    elif current is None and answerable:
        why = _foreign_why(holdings, answerable, "no sink holds a credential still on the app")
        rotate = (Reason.FOREIGN_CREDENTIAL, why)
    elif current is None:
        rotate = (Reason.NO_CREDENTIAL_IN_USE, "no sink holds a credential of this app")
    elif rotate is None and renew_at is not None and renew_at <= now:
        if current.expired(now):
            rotate = (Reason.RENEWAL_DUE, f"{_describe(current)} expired at {current.end:%Y-%m-%d %H:%M}Z")
        else:
            rotate = (Reason.RENEWAL_DUE, f"{_describe(current)} was due for renewal at {renew_at:%Y-%m-%d %H:%M}Z")

    retirements = _retirements(now, credentials, holdings, held, recorded, policy, strangers=strangers)
    supersedes = _supersedes(now, credentials, holdings, strangers, policy)
    if rotate is None:
        # The lagging sinks get the current secret first; nothing a sink is known to hold is retired anyway.
        return [replace(a, supersedes=supersedes - {a.key_id}) for a in resyncs] + retirements
    if rotate[0] is Reason.FOREIGN_CREDENTIAL:
        competing = _competing(now, answerable, intents, held, holdings, policy)
        if competing is not None:
            return [*retirements, competing]
    return _rotation(now, rotate, credentials, holdings, recorded, retirements, policy, flags, supersedes)


def _foreign_why(holdings: Sequence[Holding], strangers: Sequence[Credential], state: str) -> str:
    sinks = ", ".join(h.sink for h in holdings if not h.readable)
    return (
        f"{', '.join(_describe(c) for c in strangers)} created by another host or state store: {sinks} may hold "
        f"it ({state}): give it a new secret it is known to hold, and keep the others until it has held that one "
        "for the grace period"
    )


def _supersedes(
    now: datetime, credentials: Sequence[Credential], holdings: Sequence[Holding], strangers: Sequence[Credential],
    policy: Policy,
) -> frozenset[str]:
    """What a push sink's consumer may hold beyond this store's receipts, that a delivery to it replaces.

    With no receipt at all, any valid managed credential (hand-made ones are never orphans, and recording
    them would let --revoke-previous take them); else the ones another store created. Never one still in
    flight: its pass may deliver it after ours, and then the consumer holds it, not ours, so it must stay
    unrecorded (foreign, never superseded) until a later pass answers it.
    """
    if all(h.readable for h in holdings):
        return frozenset()
    fresh = {c.key_id for c in strangers if _in_flight(now, c, policy)}
    if any(not h.known for h in holdings if not h.readable):
        candidates = [c for c in may_be_held(now, credentials) if c.managed(policy.marker)]
    else:
        candidates = list(strangers)
    return frozenset(c.key_id for c in candidates if c.key_id not in fresh)


def _competing(
    now: datetime, answerable: Sequence[Credential], intents: Sequence[Intent], held: dict[str, str | None],
    holdings: Sequence[Holding], policy: Policy,
) -> Action | None:
    """A blocked answer, when another state store answered this one's own answer within the grace period.

    Two rotators with separate state stores on one push target can never agree: each takes the other's new
    secret for one its consumer may hold, and answers it with a new one. Rather than rotating back and
    forth, this store waits (safely: it never retires another store's secret, and what it last pushed
    still works) and says what to fix. After the grace period it answers anyway, so that a one-off run
    from another host never leaves a target stuck.
    """
    made = [i for i in intents if not i.refused]
    answers = [i for i in made if i.reason in _ANSWERS]
    if not answers:
        return None
    last = max(answers, key=lambda i: i.at)
    if last is not max(made, key=lambda i: i.at) or now - last.at >= policy.grace_period:
        return None
    later = [c for c in answerable if c.start is not None and c.start > last.at]
    # Never while a push sink was last given something that no longer works: that needs a new secret.
    if not later or any(held[h.sink] is None for h in holdings if not h.readable):
        return None
    return Action(
        Kind.BLOCKED,
        Reason.COMPETING_STATE_STORE,
        f"{', '.join(_describe(c) for c in later)} was created by another host or state store after this store "
        f"answered one it had not recorded ({last.reason}, {format_duration(_round(now - last.at))} ago): two "
        "rotators with separate state stores keep rotating this target. Give them one shared state store (the "
        "same state.path volume, or one state ConfigMap), or stop all but one. Nothing the push sinks may hold "
        "is retired meanwhile; "
        f"this store answers again once its last answer is {format_duration(policy.grace_period)} old",
    )


# Rotations that repair an unconfirmed or lagging push: they may take the slot kept free for them.
_REPAIRS = frozenset({Reason.PENDING_UNCONFIRMED, Reason.SINK_LAGS_UNREADABLE})


def _rotation(
    now: datetime,
    rotate: tuple[Reason, str],
    credentials: Sequence[Credential],
    holdings: Sequence[Holding],
    recorded: set[str],
    retirements: list[Action],
    policy: Policy,
    flags: Flags,
    supersedes: frozenset[str] = frozenset(),
) -> list[Action]:
    """A creation, and the retirements of this pass placed around it.

    The order is what keeps consumers working when a pass dies at any point. Nothing is removed before
    the new secret has reached every sink, except what must make room under ``max_credentials`` — and
    every planned retirement is of a credential no sink can hold (``_retirements`` plans none while a
    sink's holding is unknown), so removing it first cuts nobody off. Everything else is marked
    ``after_rotation``: if the pass dies or the rotation fails, it simply waits for a later pass. That
    also covers a holding that is wrong (a receipt from a restored backup): by the time such a removal
    runs, every sink has been given the new secret.
    """
    reason, why = rotate
    # A push that is never confirmed (a crash, a timeout) can only be repaired by yet another rotation
    # when no sink can be read back to re-send the secret: so keep a slot free for it, or the target is
    # stuck at the cap with two secrets that may not go (the one sent, the one perhaps still in use).
    spare = 1 if not any(h.readable for h in holdings) and reason not in _REPAIRS else 0
    need = len(credentials) + 1 + spare - policy.max_credentials
    if need > len(retirements):
        return [*retirements, _blocked(rotate, len(credentials) - len(retirements), spare, policy)]
    by_id = {c.key_id: c for c in credentials}

    def rank(action: Action) -> tuple[bool, bool, datetime, str]:
        # Make room with what was never handed out first, then with what no longer works, then the oldest.
        credential = by_id[str(action.key_id)]
        return (action.reason is not Reason.ORPHAN, not credential.expired(now), credential.start or _MIN,
                credential.key_id)

    ranked = sorted(retirements, key=rank)
    room = {a.key_id for a in ranked[: max(need, 0)]}
    actions = [a for a in retirements if a.key_id in room]
    actions.append(Action(Kind.CREATE, reason, why, supersedes=supersedes))
    actions.extend(replace(a, after_rotation=True) for a in retirements if a.key_id not in room)
    if flags.revoke_previous:
        retired = {a.key_id for a in retirements}
        actions.extend(
            Action(
                Kind.RETIRE,
                Reason.REVOKED,
                f"revoke {_describe(c)} once the new secret is in every sink",
                key_id=c.key_id,
                after_rotation=True,
            )
            for c in credentials
            if c.key_id not in retired
            and (c.managed(policy.marker) or policy.retire_unmanaged or c.key_id in recorded)
            # A young credential no sink recorded may be another pass's, still in flight.
            and not (c.key_id not in recorded and _age(now, c.start) < policy.in_flight_timeout)
        )
    return actions


def _blocked(rotate: tuple[Reason, str], remaining: int, spare: int, policy: Policy) -> Action:
    reason, why = rotate
    cap = policy.max_credentials
    if spare and remaining + 1 <= cap:
        return Action(
            Kind.BLOCKED,
            Reason.NO_ROOM_FOR_RETRY,
            f"{why}, but no sink of this target can be read back: a push that is never confirmed can only be "
            f"repaired by another rotation, so one slot must stay free for it. The app has {remaining} "
            f"secret(s) that may not be retired yet and max_credentials is {cap}: raise max_credentials to "
            f"{remaining + 2}, or remove a secret of the app that no consumer uses",
        )
    stuck = (
        " (an unconfirmed push needs a new secret to repair it: see the runbook, 'push never confirmed, no room')"
        if reason in _REPAIRS
        else ""
    )
    return Action(
        Kind.BLOCKED,
        Reason.CAP_REACHED,
        f"{why}, but the app has {remaining} secret(s) that may not be retired yet and "
        f"max_credentials is {cap}: remove an unused secret or raise max_credentials to "
        f"{remaining + 1 + spare}{stuck}",
    )


def _converge(
    current: Credential, holdings: Sequence[Holding], held: dict[str, str | None], strangers: Sequence[Credential]
) -> tuple[tuple[Reason, str] | None, list[Action]]:
    """Re-sync each sink lagging behind ``current`` (the newest held) from a readable sink, or say why to rotate.

    A push sink lags too when it may hold a credential another store created (``strangers``), whatever its
    receipt says."""
    sources = [h for h in holdings if h.readable and not h.pending and held[h.sink] == current.key_id]
    resyncs = []
    for h in holdings:
        key = held[h.sink]
        doubted = bool(strangers) and not h.readable
        if key == current.key_id and not h.pending and not doubted:
            continue
        if h.pending and key == current.key_id:
            reason, state = Reason.PENDING_RESYNC, "never confirmed receiving it"
        elif not h.known:
            reason, state = Reason.SINK_LAGS, "has no receipt (it may hold any of the app's secrets)"
        elif key != current.key_id:
            reason, state = Reason.SINK_LAGS, f"holds {key or 'nothing known'}"
        else:
            reason = Reason.FOREIGN_CREDENTIAL
            state = (f"may hold {', '.join(_describe(c) for c in strangers)}, created by another host or state "
                     "store, although its receipt says it holds " + current.key_id)
        if not sources:
            if reason is Reason.FOREIGN_CREDENTIAL:
                return (reason, _foreign_why(holdings, strangers, f"its receipt says {current.key_id}")), []
            why = Reason.PENDING_UNCONFIRMED if h.pending else Reason.SINK_LAGS_UNREADABLE
            return (why, f"{h.sink} {state}, and no readable sink holds {current.key_id} to re-send"), []
        resyncs.append(
            Action(
                Kind.RESYNC,
                reason,
                f"{h.sink} {state}; re-send {_describe(current)} from {sources[0].sink}",
                key_id=current.key_id,
                sink=h.sink,
                source=sources[0].sink,
            )
        )
    return None, resyncs


def _retirements(
    now: datetime,
    credentials: Sequence[Credential],
    holdings: Sequence[Holding],
    held: dict[str, str | None],
    recorded: set[str],
    policy: Policy,
    *,
    strangers: Sequence[Credential] = (),
) -> list[Action]:
    """Credentials no sink can hold that may go now. Each is provably unheld: while any sink's holding is
    unknown, none is planned (no orphan, and nothing is settled).

    A credential another store created (``strangers``) is never planned: the consumer may hold it, until
    an answer records it as superseded. Everything else stays as provable with strangers about: a push
    sink holds either what its receipt says or something pushed since by another store, which is a
    credential that store created (one young when this store recorded what it recorded, so never one of
    those) or what a shared Key Vault held (which a Key Vault sink here holds too); so neither this store's
    own orphans (never pushed by anyone) nor what it recorded before its last confirmed push can be held.
    """
    # `held` counts pending receipts too: the consumer may be using that secret.
    protected = {k for k in held.values() if k} | {c.key_id for c in strangers}
    # "Never recorded" proves "never handed out" only when every sink says what it recorded, and then
    # every managed credential no sink recorded that is no stranger is this store's own: an orphan.
    known = all(h.known for h in holdings)
    settled = bool(holdings) and known and all(
        held.get(h.sink) is not None and not h.pending and h.since is not None
        and now - h.since >= policy.grace_period
        for h in holdings
    )
    actions = []
    for c in credentials:
        if c.key_id in protected:
            continue
        managed = c.managed(policy.marker)
        if not (managed or policy.retire_unmanaged):
            continue
        expired = " (expired)" if c.expired(now) else ""
        if managed and c.key_id not in recorded and known:
            age = _age(now, c.start)
            if age >= policy.in_flight_timeout:
                actions.append(
                    Action(
                        Kind.RETIRE,
                        Reason.ORPHAN,
                        f"{_describe(c)}{expired} was created {format_duration(_round(age))} ago and no sink "
                        f"ever recorded it",
                        key_id=c.key_id,
                    )
                )
        elif settled:
            actions.append(
                Action(
                    Kind.RETIRE,
                    Reason.SUPERSEDED,
                    f"{_describe(c)}{expired} is superseded and every sink has held its successor for "
                    f"at least {format_duration(policy.grace_period)}",
                    key_id=c.key_id,
                )
            )
    return actions


def _round(age: timedelta) -> timedelta:
    return timedelta(seconds=int(age.total_seconds()))
