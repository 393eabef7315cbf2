"""Invariants of the planner over random apps, sinks, intents and policies (DESIGN.md I3 and I4)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from service.catalogue import EvidenceGap
from service.model import (
    Action,
    Credential,
    Flags,
    Holding,
    Intent,
    Kind,
    Policy,
    Reason,
    State,
    Usage,
    credential_name,
)
from service.policy import claims, foreign, plan, renewal_time, standings
from tests.conftest import examples

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
MARKER = "secret-rotator"
UNKNOWN = "gone"  # a key id a sink may name that is not on the app

REPAIRS = (Reason.PENDING_UNCONFIRMED, Reason.SINK_LAGS_UNREADABLE)

# 300 in CI, fewer in a developer's loop (tests/conftest.py, HYPOTHESIS_PROFILE).
FAST = settings(max_examples=examples(300))

# Minutes, with the boundaries the rules compare against (15m, 1d, ...) likely to be hit exactly.
minutes = st.one_of(
    st.integers(0, 200 * 24 * 60),
    st.sampled_from([0, 1, 14, 15, 16, 60, 23 * 60, 24 * 60, 25 * 60, 2 * 24 * 60, 30 * 24 * 60]),
)


# True one time in five: operator flags and pending receipts are the exception, and they mask other rules.
rarely = st.sampled_from([False, False, False, False, True])


# Names that are not this service's, look-alikes of its own included.
NOT_OURS = [
    None,
    "",
    "by hand",
    "rotator",
    MARKER,
    f"{MARKER}-staging 2025-01-01T00:00:00Z",
    f"{MARKER}: break-glass 2025-01-01",
    f"{MARKER}  2025-01-01T00:00:00Z",
    f"{MARKER} 2025-01-01T00:00:00Z (copy)",
]


def ago(m: int) -> datetime:
    return NOW - timedelta(minutes=m)


@st.composite
def credentials(draw: st.DrawFn) -> list[Credential]:
    result = []
    for i in range(draw(st.integers(0, 8))):
        start = ago(draw(minutes)) if draw(st.integers(0, 9)) else NOW + timedelta(minutes=draw(st.integers(1, 60)))
        end = None if draw(st.integers(0, 19)) == 0 else start + timedelta(minutes=draw(st.integers(1, 400 * 24 * 60)))
        managed = draw(st.booleans())
        name = credential_name(MARKER, start) if managed else draw(st.sampled_from(NOT_OURS))
        result.append(Credential(key_id=f"k{i}", display_name=name, hint=None, start=start, end=end))
    return result


@st.composite
def holdings(draw: st.DrawFn, key_ids: list[str]) -> list[Holding]:
    result = []
    for i in range(draw(st.integers(1, 3))):
        key_id = draw(st.sampled_from(key_ids) if key_ids and not draw(rarely) else st.sampled_from([UNKNOWN, None]))
        recorded = draw(st.frozensets(st.sampled_from([*key_ids, UNKNOWN])) if key_ids else st.just(frozenset()))
        readable = draw(st.booleans())
        # A push sink with no receipt at all does not know what its consumer holds.
        known = readable or key_id is not None or not draw(st.booleans())
        result.append(
            Holding(
                sink=f"sink{i}",
                key_id=key_id,
                # Adapters always know since when a named key is held (a Key Vault version's created time,
                # a receipt's time); only "holds nothing" comes without one.
                since=ago(draw(minutes)) if key_id is not None else None,
                readable=readable,
                pending=key_id is not None and draw(rarely),
                recorded=(recorded | ({key_id} if key_id else frozenset())) if known else frozenset(),
                known=known,
            )
        )
    return result


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    lifetime = timedelta(minutes=draw(st.integers(2, 120 * 24 * 60)))
    return Policy(
        lifetime=lifetime,
        renew_before=draw(st.none() | st.integers(0, 120 * 24 * 60).map(lambda m: timedelta(minutes=m))),
        renew_before_ratio=draw(st.floats(0.05, 0.95)),
        grace_period=timedelta(minutes=draw(minutes)),
        in_flight_timeout=timedelta(minutes=draw(st.integers(0, 120))),
        max_credentials=draw(st.integers(2, 8)),
        retire_unmanaged=draw(st.booleans()),
        marker=MARKER,
        retire_on=draw(st.sampled_from(["grace_period", "usage"])),
        usage_lag=timedelta(minutes=draw(st.integers(0, 24 * 60))),
    )


@st.composite
def usages(draw: st.DrawFn, key_ids: list[str]) -> Usage | None:
    """Entra's sign-in report: not read, unreadable, or a last sign-in for some of the credentials."""
    kind = draw(st.sampled_from(["none", "gap", "read", "read", "read"]))
    if kind == "none":
        return None
    if kind == "gap":
        return Usage(gap=draw(st.sampled_from(list(EvidenceGap))), detail="d", hint="h")
    chosen = draw(st.frozensets(st.sampled_from(key_ids))) if key_ids else frozenset()
    return Usage(last_sign_in={k: ago(draw(minutes)) for k in sorted(chosen)})


@st.composite
def intents(draw: st.DrawFn, creds: list[Credential]) -> tuple[Intent, ...]:
    """What this state store set out to create: most managed credentials, some with the reason of an answer."""
    reasons = st.sampled_from([Reason.RENEWAL_DUE, Reason.NO_RECEIPT, Reason.FOREIGN_CREDENTIAL, Reason.FORCED])
    # Most with the key id addPassword answered; now and then the answer was lost.
    made = [
        Intent(str(c.display_name), c.start or NOW, draw(reasons).value, None if draw(rarely) else c.key_id)
        for c in creds
        if c.managed(MARKER) and draw(st.sampled_from([True, True, False]))
    ]
    # One addPassword refused (nothing came of it), now and then, named like some credential.
    if creds and draw(rarely):
        named = draw(st.sampled_from(creds))
        made.append(Intent(str(named.display_name), named.start or NOW, draw(reasons).value, refused=True))
    # One whose credential never came to be (addPassword refused), now and then.
    if draw(rarely):
        made.append(Intent(credential_name(MARKER, ago(draw(minutes))), ago(draw(minutes)), draw(reasons).value))
    return tuple(made)


@dataclass(frozen=True)
class Scenario:
    credentials: list[Credential]
    holdings: list[Holding]
    policy: Policy
    flags: Flags
    intents: tuple[Intent, ...] = ()
    usage: Usage | None = None

    def plan(self) -> list[Action]:
        return plan(NOW, self.credentials, self.holdings, self.policy, self.flags, self.intents, self.usage)

    def foreign(self) -> list[Credential]:
        return foreign(NOW, self.credentials, self.holdings, self.policy, self.intents)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    creds = draw(credentials())
    return Scenario(
        creds,
        draw(holdings([c.key_id for c in creds])),
        draw(policies()),
        # Operator flags are rare, as in life; with them every pass rotates and hides the other rules.
        Flags(force=draw(rarely), revoke_previous=draw(rarely)),
        draw(intents(creds)),
        draw(usages([c.key_id for c in creds])),
    )


def retirements(actions: list[Action], *, after_rotation: bool | None = None) -> list[Action]:
    return [
        a for a in actions if a.kind is Kind.RETIRE and (after_rotation is None or a.after_rotation is after_rotation)
    ]


# I4, one rule per function; one generated scenario is checked against all of them (generation is the
# expensive part, and a failure names the rule in its traceback).


def no_credential_a_sink_holds_is_retired_before_the_rotation(s: Scenario, actions: list[Action]) -> None:
    held = {h.key_id for h in s.holdings if h.key_id}  # pending receipts included
    assert not {a.key_id for a in retirements(actions, after_rotation=False)} & held


def a_retirement_after_the_rotation_follows_a_creation_and_only_revocations_need_the_flag(
    s: Scenario, actions: list[Action]
) -> None:
    for i, action in enumerate(actions):
        if action.after_rotation:
            assert action.kind is Kind.RETIRE
            assert any(a.kind is Kind.CREATE for a in actions[:i])
        if action.reason is Reason.REVOKED:
            assert s.flags.revoke_previous
            assert action.after_rotation


def nothing_is_retired_before_the_new_secret_is_everywhere_while_a_sink_may_hold_anything(
    s: Scenario, actions: list[Action]
) -> None:
    strangers = {c.key_id for c in s.foreign()}
    # Another store's secret, which a push sink may hold, goes only by --revoke-previous, once the new secret
    # is in every sink (and then only when its own pass is surely over: older than in_flight_timeout).
    for a in retirements(actions):
        if a.key_id in strangers:
            assert a.reason is Reason.REVOKED
            assert a.after_rotation
    if all(h.known for h in s.holdings):
        return
    # Only --revoke-previous's revocations, and they wait for the new secret to be in every sink.
    assert all(a.after_rotation and a.reason is Reason.REVOKED for a in retirements(actions))


def a_retirement_before_the_creation_only_makes_room_for_it(s: Scenario, actions: list[Action]) -> None:
    creations = [i for i, a in enumerate(actions) if a.kind is Kind.CREATE]
    if not creations:
        return
    first = retirements(actions[: creations[0]])
    if first:
        # Every one of them is of a credential no sink can hold, and no more go than the cap needs.
        assert all(h.known for h in s.holdings)
        assert not {a.key_id for a in first} & {c.key_id for c in s.foreign()}
        spare = 0 if any(h.readable for h in s.holdings) else 1
        assert len(s.credentials) - len(first) + 1 + spare >= s.policy.max_credentials


def no_superseded_credential_goes_before_every_sink_held_a_live_one_for_the_grace_period(
    s: Scenario, actions: list[Action]
) -> None:
    if not any(a.reason is Reason.SUPERSEDED for a in actions):
        return
    on_app = {c.key_id for c in s.credentials}
    for h in s.holdings:
        assert h.key_id in on_app
        assert not h.pending
        assert h.since is not None
        assert NOW - h.since >= s.policy.grace_period


def with_retire_on_usage_a_live_superseded_credential_goes_only_on_the_reports_evidence(
    s: Scenario, actions: list[Action]
) -> None:
    usage = s.usage
    if not s.policy.on_usage or usage is None or not usage.available:
        assert not any(a.reason is Reason.SUPERSEDED_EXPIRED for a in actions)
        return
    by_id = {c.key_id: c for c in s.credentials}
    handed_out = max((h.since for h in s.holdings if h.since is not None), default=None)
    for action in actions:
        if action.reason is Reason.SUPERSEDED_EXPIRED:
            assert by_id[str(action.key_id)].expired(NOW)
        if action.reason is not Reason.SUPERSEDED:
            continue
        assert handed_out is not None
        assert handed_out + s.policy.usage_lag <= NOW, "the report had no time to show the last sign-ins"
        old = usage.last_sign_in.get(str(action.key_id))
        assert old is None or old <= handed_out + s.policy.usage_lag, "the old secret still signed in"
        for h in s.holdings:
            seen = usage.last_sign_in.get(str(h.key_id))
            first = min(x.since for x in s.holdings if x.key_id == h.key_id and x.since is not None)
            assert seen is not None, "no sign-in with a credential in use"
            assert seen > first, "no sign-in with a credential in use since it was handed out"


def no_orphan_goes_before_in_flight_timeout_nor_if_a_sink_ever_recorded_it(s: Scenario, actions: list[Action]) -> None:
    by_id = {c.key_id: c for c in s.credentials}
    recorded = set().union(*(h.recorded for h in s.holdings))
    known = {i.key_id for i in s.intents if i.key_id}
    unclaimed = [c.display_name for c in s.credentials if c.key_id not in known]
    lost = [i.name for i in s.intents if not i.key_id and not i.refused]
    for action in actions:
        if action.reason is Reason.ORPHAN:
            assert all(h.known for h in s.holdings), "an orphan needs every sink to say what it recorded"
            credential = by_id[action.key_id]
            assert credential.managed(MARKER)
            if not all(h.readable for h in s.holdings):
                # A push sink may hold what another state store created: only this store's own lost answer
                # (its name an intent no other credential shares) or a dead secret is an orphan there.
                name = credential.display_name
                ours = credential.key_id in known or 0 < unclaimed.count(name) <= lost.count(name)
                assert ours or credential.expired(NOW)
            assert action.key_id not in recorded
            assert credential.start is not None
            assert NOW - credential.start >= s.policy.in_flight_timeout


def an_unmanaged_credential_is_retired_only_when_the_config_says_so_or_it_leaked(
    s: Scenario, actions: list[Action]
) -> None:
    by_id = {c.key_id: c for c in s.credentials}
    handed_out = set().union(*(h.recorded for h in s.holdings)) | {h.key_id for h in s.holdings if h.key_id}
    for action in retirements(actions):
        if not by_id[action.key_id].managed(MARKER):
            revoked = action.reason is Reason.REVOKED and action.key_id in handed_out
            assert s.policy.retire_unmanaged or revoked


def a_delivery_records_only_what_the_consumer_may_hold_and_never_what_may_still_be_in_flight(
    s: Scenario, actions: list[Action]
) -> None:
    by_id = {c.key_id: c for c in s.credentials}
    mine = {i.name for i in s.intents}
    claimed = {i.key_id for i in (*s.intents, *claims(s.credentials, s.intents)) if i.key_id}
    recorded = set().union(*(h.recorded for h in s.holdings)) | {h.key_id for h in s.holdings if h.key_id}
    for action in actions:
        if not action.supersedes:
            continue
        assert action.kind in (Kind.CREATE, Kind.RESYNC)
        assert not all(h.readable for h in s.holdings), "a Key Vault holding is read back, never assumed"
        for key_id in action.supersedes:
            credential = by_id[key_id]
            assert credential.managed(MARKER)
            assert not credential.expired(NOW)
            young = NOW - (credential.start or NOW) < s.policy.in_flight_timeout
            # Recorded by a sink already, it adds nothing; another store's, it may still be on its way.
            stranger = credential.display_name not in mine and key_id not in recorded and key_id not in claimed
            assert not (young and stranger), "another store may still deliver it"


def an_answer_is_blocked_only_right_after_this_stores_own_answer(s: Scenario, actions: list[Action]) -> None:
    blocked = [a for a in actions if a.reason is Reason.COMPETING_STATE_STORE]
    if not blocked:
        return
    # Retirements of what no push sink can hold still go (this store's own orphans, what it superseded
    # before its last confirmed push); nothing is created, re-sent, or taken from what a consumer may hold.
    *before, last_action = actions
    assert last_action.kind is Kind.BLOCKED
    assert all(a.kind is Kind.RETIRE and not a.after_rotation for a in before), "nothing but retirements while in doubt"
    may_hold = {c.key_id for c in s.foreign()} | {h.key_id for h in s.holdings if not h.readable}
    assert not may_hold & {a.key_id for a in before}, "nothing a push sink may hold is retired while in doubt"
    last = max((i for i in s.intents if not i.refused), key=lambda i: i.at)
    assert last.reason in (Reason.NO_RECEIPT, Reason.FOREIGN_CREDENTIAL)
    assert NOW - last.at < s.policy.grace_period
    assert any(c.start is not None and c.start > last.at for c in s.foreign())
    on_app = {c.key_id for c in s.credentials}
    assert all(h.key_id in on_app for h in s.holdings if not h.readable), "what it was last given still works"
    assert not s.flags.force
    assert not s.flags.revoke_previous


@FAST
@given(scenarios())
def test_no_credential_is_removed_while_a_sink_holds_it_nor_before_its_time(s: Scenario) -> None:
    actions = s.plan()
    no_credential_a_sink_holds_is_retired_before_the_rotation(s, actions)
    a_retirement_after_the_rotation_follows_a_creation_and_only_revocations_need_the_flag(s, actions)
    nothing_is_retired_before_the_new_secret_is_everywhere_while_a_sink_may_hold_anything(s, actions)
    a_retirement_before_the_creation_only_makes_room_for_it(s, actions)
    no_superseded_credential_goes_before_every_sink_held_a_live_one_for_the_grace_period(s, actions)
    no_orphan_goes_before_in_flight_timeout_nor_if_a_sink_ever_recorded_it(s, actions)
    with_retire_on_usage_a_live_superseded_credential_goes_only_on_the_reports_evidence(s, actions)
    an_unmanaged_credential_is_retired_only_when_the_config_says_so_or_it_leaked(s, actions)
    a_delivery_records_only_what_the_consumer_may_hold_and_never_what_may_still_be_in_flight(s, actions)
    an_answer_is_blocked_only_right_after_this_stores_own_answer(s, actions)


@FAST
@given(scenarios())
def test_the_credential_count_never_exceeds_max_credentials_at_any_step(s: Scenario) -> None:
    count = len(s.credentials)
    if count > s.policy.max_credentials:
        return
    on_app = {c.key_id for c in s.credentials}
    for action in s.plan():
        if action.kind is Kind.RETIRE:
            assert action.key_id in on_app, "retires a credential twice or one that is not there"
            on_app.discard(action.key_id)
            count -= 1
        elif action.kind is Kind.CREATE:
            count += 1
            # A target no sink of which can be read back keeps a slot free for repairing an unconfirmed
            # push by another rotation (only that repair may take it).
            if not any(h.readable for h in s.holdings) and action.reason not in REPAIRS:
                assert count < s.policy.max_credentials
        assert count <= s.policy.max_credentials


@FAST
@given(scenarios())
def test_the_plan_has_a_lawful_shape(s: Scenario) -> None:
    actions = s.plan()
    kinds = [a.kind for a in actions]
    rotations = [i for i, k in enumerate(kinds) if k in (Kind.CREATE, Kind.BLOCKED)]
    assert len(rotations) <= 1
    if rotations:
        # Retirements that make room come first; everything after the rotation waits for it.
        assert all(a.kind is Kind.RETIRE and not a.after_rotation for a in actions[: rotations[0]])
        assert all(a.after_rotation for a in actions[rotations[0] + 1 :])
        assert Kind.RESYNC not in kinds
    else:
        # Re-syncs come before any retirement, and nothing waits for a rotation that is not planned.
        assert kinds == sorted(kinds, key=lambda k: k is Kind.RETIRE)
        assert not any(a.after_rotation for a in actions)
    for a in actions:
        if a.kind is Kind.BLOCKED:
            assert a.reason in (Reason.CAP_REACHED, Reason.NO_ROOM_FOR_RETRY, Reason.COMPETING_STATE_STORE)
            if a.reason is Reason.NO_ROOM_FOR_RETRY:
                assert not any(h.readable for h in s.holdings)
        if a.kind is Kind.RESYNC:
            assert a.sink is not None
            assert a.source is not None
            assert a.sink != a.source
    on_app = {c.key_id for c in s.credentials}
    if not any(h.key_id in on_app for h in s.holdings):
        # No credential in use: the pass rotates, or says why it cannot.
        assert rotations


@FAST
@given(scenarios())
def test_plan_is_deterministic_and_pure(s: Scenario) -> None:
    before = copy.deepcopy(s)
    first = s.plan()
    assert s == before
    assert s.plan() == first


@st.composite
def steady_states(draw: st.DrawFn) -> Scenario:
    """Every sink holds the newest credential, which is not due, and nothing may be retired yet."""
    policy = draw(policies().filter(lambda p: p.grace_period > timedelta(0)))
    age = draw(st.integers(0, 60 * 24 * 60))
    life = draw(st.integers(age + 2, 400 * 24 * 60))
    current = Credential("cur", credential_name(MARKER, ago(age)), None, ago(age), ago(age) + timedelta(minutes=life))
    due = renewal_time(current, policy)
    if due is not None and due <= NOW:
        current = Credential("cur", current.display_name, None, current.start, None)
    # Kept: hand-made ones (unless retire_unmanaged), a superseded one within grace, and young orphans.
    others = []
    if not policy.retire_unmanaged:
        others += [
            Credential(f"hand{i}", "by hand", None, ago(m), None)
            for i, m in enumerate(draw(st.lists(minutes, max_size=2)))
        ]
    old = Credential("old", credential_name(MARKER, ago(age + 1)), None, ago(age + 1), None)
    others += [old] if draw(st.booleans()) else []
    young = st.integers(0, max(0, int(policy.in_flight_timeout.total_seconds() // 60) - 1))
    if policy.in_flight_timeout > timedelta(0):
        others += [
            Credential(f"young{i}", credential_name(MARKER, ago(m)), None, ago(m), None)
            for i, m in enumerate(draw(st.lists(young, max_size=2)))
        ]
    within_grace = (
        st.integers(0, int(policy.grace_period.total_seconds() // 60) - 1)
        if any(o.key_id == "old" for o in others)
        else minutes
    )
    held = [
        Holding(
            f"sink{i}", "cur", ago(draw(within_grace)), readable=draw(st.booleans()), recorded=frozenset({"cur", "old"})
        )
        for i in range(draw(st.integers(1, 3)))
    ]
    # The newest in use must be the current one whatever order the others come in.
    creds = draw(st.permutations([current, *others]))
    return Scenario(list(creds), held, policy, Flags())


@FAST
@given(steady_states())
def test_a_steady_state_needs_nothing(s: Scenario) -> None:
    assert s.plan() == []


@FAST
@given(scenarios())
def test_status_says_due_exactly_for_what_the_plan_retires_and_names_every_credential_once(s: Scenario) -> None:
    said = standings(NOW, s.credentials, s.holdings, s.policy, s.intents, s.usage)
    # An expired superseded credential the sign-in report never showed switched from is still "superseded".
    retired = {
        a.key_id: Reason.SUPERSEDED if a.reason is Reason.SUPERSEDED_EXPIRED else a.reason
        for a in s.plan()
        if a.kind is Kind.RETIRE and a.reason is not Reason.REVOKED
    }

    assert [x.key_id for x in said] == [c.key_id for c in s.credentials]
    due = {x.key_id: x.state for x in said if x.due}
    assert due == {key: State(reason.value) for key, reason in retired.items()}
    held = {h.key_id for h in s.holdings}
    for x in said:
        assert (x.state is State.IN_USE) == (x.key_id in held)
        assert x.retire_after is None or x.state in (State.SUPERSEDED, State.ORPHAN)
        if x.retire_after is not None and x.state is State.SUPERSEDED:
            assert x.due == (x.retire_after <= NOW)
