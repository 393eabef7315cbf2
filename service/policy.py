"""The pure decision: what one pass should do to one target, and why.

``plan(now, credentials, holdings, policy)`` reads nothing and writes nothing; time is an argument.
It imports no adapter and no SDK. The rules are DESIGN.md's "rotation protocol", step 2.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from service.durations import format_duration
from service.model import NO_FLAGS, Action, Credential, Flags, Holding, Kind, Policy, Reason

_MIN = datetime.min.replace(tzinfo=UTC)


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


def notes(now: datetime, credentials: Sequence[Credential], holdings: Sequence[Holding]) -> list[str]:
    """What `plan` and `status` must say that is no action: each sink whose holding is unknown."""
    live = ", ".join(_describe(c) for c in may_be_held(now, credentials)) or "none is valid now"
    return [
        f"no receipt: {h.sink} may hold any of these: {live}; none of them is retired until it has held a new "
        "secret for the grace period"
        for h in holdings
        if not h.known
    ]


def plan(
    now: datetime,
    credentials: Sequence[Credential],
    holdings: Sequence[Holding],
    policy: Policy,
    flags: Flags | None = None,
) -> list[Action]:
    """The actions for one target, in the order apply must take them."""
    flags = flags or NO_FLAGS
    by_id = {c.key_id: c for c in credentials}
    # A sink whose key id is no longer on the app holds a dead secret: it holds nothing usable.
    held = {h.sink: h.key_id if h.key_id in by_id else None for h in holdings}
    held_credentials = {by_id[k] for k in held.values() if k is not None}
    recorded = set().union(*(h.recorded for h in holdings)) | {k for k in held.values() if k}
    current = newest(held_credentials)
    unknown = [h.sink for h in holdings if not h.known]

    rotate: tuple[Reason, str] | None = None
    resyncs: list[Action] = []
    if current is not None:
        rotate, resyncs = _converge(current, holdings, held)

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
    elif current is None:
        rotate = (Reason.NO_CREDENTIAL_IN_USE, "no sink holds a credential of this app")
    elif rotate is None and renew_at is not None and renew_at <= now:
        if current.expired(now):
            rotate = (Reason.RENEWAL_DUE, f"{_describe(current)} expired at {current.end:%Y-%m-%d %H:%M}Z")
        else:
            rotate = (Reason.RENEWAL_DUE, f"{_describe(current)} was due for renewal at {renew_at:%Y-%m-%d %H:%M}Z")

    retirements = _retirements(now, credentials, holdings, held, recorded, policy)
    if rotate is None:
        # The lagging sinks get the current secret first; nothing a sink is known to hold is retired anyway.
        return resyncs + retirements
    return _rotation(now, rotate, credentials, holdings, recorded, retirements, policy, flags)


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
    actions.append(Action(Kind.CREATE, reason, why))
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
    current: Credential, holdings: Sequence[Holding], held: dict[str, str | None]
) -> tuple[tuple[Reason, str] | None, list[Action]]:
    """Re-sync each sink lagging behind ``current`` (the newest held) from a readable sink, or say why to rotate."""
    sources = [h for h in holdings if h.readable and not h.pending and held[h.sink] == current.key_id]
    resyncs = []
    for h in holdings:
        key = held[h.sink]
        if key == current.key_id and not h.pending:
            continue
        if h.pending and key == current.key_id:
            reason, state = Reason.PENDING_RESYNC, "never confirmed receiving it"
        elif not h.known:
            reason, state = Reason.SINK_LAGS, "has no receipt (it may hold any of the app's secrets)"
        else:
            reason, state = Reason.SINK_LAGS, f"holds {key or 'nothing known'}"
        if not sources:
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
) -> list[Action]:
    """Credentials no sink can hold that may go now. Each is provably unheld: while any sink's holding is
    unknown, none is planned (no orphan, and nothing is settled)."""
    # `held` counts pending receipts too: the consumer may be using that secret.
    protected = {k for k in held.values() if k}
    # "Never recorded" proves "never handed out" only when every sink says what it recorded.
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
