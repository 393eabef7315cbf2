"""The planner's rules as a table: given the app's credentials and what each sink holds, what one pass does."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from service.catalogue import EvidenceGap
from service.model import Action, Credential, Flags, Holding, Intent, Kind, Policy, Reason, Usage
from service.policy import Facts, claims, notes, plan, renewal_time
from service.policy.blocking import BLOCKING, BlockRule, competing_state_store, no_room
from service.policy.retirement import RETIREMENT, RetireRule, orphan, retirements, revoked, superseded
from service.policy.rotation import (
    ROTATION,
    Rule,
    force_asked,
    foreign_unanswered,
    holding_unknown,
    lag_without_source,
    nothing_in_use,
    renewal_due,
    revoke_previous_asked,
)
from service.windows import Window

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
KV = "keyvault"
PUSH = "push"


def cred(key_id: str, *, age: timedelta, lifetime: timedelta = 90 * DAY, managed: bool = True) -> Credential:
    """A credential created ``age`` ago that lives ``lifetime``."""
    start = NOW - age
    name = f"secret-rotator {start:%Y-%m-%dT%H:%M:%SZ}" if managed else "made by hand"
    return Credential(key_id=key_id, display_name=name, hint=key_id[:3], start=start, end=start + lifetime)


def keyvault(key_id: str | None, *, held_for: timedelta = 10 * DAY, recorded: tuple[str, ...] = ()) -> Holding:
    """A Key Vault sink (readable) whose latest version carries ``key_id`` and older versions ``recorded``."""
    ids = frozenset(recorded) | ({key_id} if key_id else set())
    return Holding(KV, key_id, NOW - held_for if key_id else None, readable=True, recorded=ids)


def push(
    key_id: str | None,
    *,
    held_for: timedelta = 10 * DAY,
    pending: bool = False,
    recorded: tuple[str, ...] = (),
    sink: str = PUSH,
) -> Holding:
    """A push sink (not readable): its holding is the last receipt; ``None``: it has no receipt at all."""
    ids = frozenset(recorded) | ({key_id} if key_id else set())
    return Holding(
        sink,
        key_id,
        NOW - held_for if key_id else None,
        readable=False,
        pending=pending,
        recorded=ids,
        known=key_id is not None,
    )


def describe(action: Action) -> str:
    """One action as a short sentence, so that a whole plan compares as a list of strings."""
    words = [str(action.kind), str(action.reason)]
    if action.key_id:
        words.append(action.key_id)
    if action.sink:
        words.append(f"to {action.sink} from {action.source}")
    if action.after_rotation:
        words.append("after rotation")
    if action.supersedes:
        words.append(f"supersedes {' '.join(sorted(action.supersedes))}")
    if action.window_overridden:
        words.append("overriding the window")
    return " ".join(words)


def made_here(*credentials: Credential, reason: Reason = Reason.RENEWAL_DUE) -> tuple[Intent, ...]:
    """The intents this state store recorded before creating ``credentials``, with the key id each
    ``addPassword`` answered, but for LOST's: its answer never came back."""
    return tuple(
        Intent(str(c.display_name), c.start or NOW, reason.value, None if c is LOST else c.key_id) for c in credentials
    )


def lost_answers(*credentials: Credential) -> tuple[Intent, ...]:
    """Intents whose ``addPassword`` answer never came back: only the name to go by."""
    return tuple(Intent(str(c.display_name), c.start or NOW, Reason.RENEWAL_DUE.value) for c in credentials)


@dataclass(frozen=True)
class Case:
    credentials: list[Credential]
    holdings: list[Holding]
    expected: list[str]
    policy: Policy = field(default_factory=Policy)
    flags: Flags = field(default_factory=Flags)
    # None: this state store created every managed credential of the case (it recorded an intent for each).
    intents: tuple[Intent, ...] | None = None
    usage: Usage | None = None  # Entra's sign-in report, for retire_on: usage

    def plan(self) -> list[Action]:
        intents = made_here(*self.credentials) if self.intents is None else self.intents
        return plan(NOW, self.credentials, self.holdings, self.policy, self.flags, intents, self.usage)


def signed_in(**ago: timedelta) -> Usage:
    """The sign-in report: each credential's last sign-in, ``ago`` before NOW."""
    return Usage(last_sign_in={key_id: NOW - before for key_id, before in ago.items()})


ON_USAGE = Policy(retire_on="usage")  # usage_lag 6h
SWITCHED = [keyvault("cur", held_for=2 * DAY, recorded=("old",)), push("cur", held_for=2 * DAY, recorded=("old",))]


CUR = cred("cur", age=10 * DAY)  # the credential in use, far from due under the default policy
OLD = cred("old", age=40 * DAY)  # its predecessor, still valid
EXPIRED_OLD = cred("old", age=100 * DAY)
HAND = cred("hand", age=200 * DAY, lifetime=730 * DAY, managed=False)
HAND2 = cred("hand2", age=100 * DAY, lifetime=730 * DAY, managed=False)
HAND3 = cred("hand3", age=50 * DAY, lifetime=730 * DAY, managed=False)
DUE = cred("cur", age=61 * DAY)  # past 2/3 of a 90 day life: due under the default 1/3 ratio

LOST = cred("lost", age=20 * MINUTE)  # created by this store, whose addPassword answer never came back
THEIRS = cred("theirs", age=HOUR)  # created by another host or state store
YOUNG_THEIRS = cred("young", age=5 * MINUTE)  # another store's, maybe still on its way to the consumer
# Two stores on one push target: this one made FIRST, answered THEIRS1 with ANSWER 6 hours ago, and the
# other store has since answered that with THEIRS2.
FIRST = cred("first", age=40 * DAY)
THEIRS1 = cred("theirs1", age=12 * HOUR)
ANSWER = cred("answer", age=6 * HOUR)
OLD_ANSWER = cred("answer", age=25 * HOUR)
THEIRS2 = cred("theirs2", age=HOUR)
# Monday to Friday, office hours in Amsterdam: closed at NOW (a Sunday); opens Monday 06:00Z.
WEEKDAYS = Window(frozenset(range(5)), 8 * 60, 17 * 60, "Europe/Amsterdam")
ROOMY = Policy(max_credentials=6)  # enough that the cap decides nothing
ANSWERED = (*made_here(FIRST), *made_here(ANSWER, reason=Reason.FOREIGN_CREDENTIAL))

CASES: dict[str, Case] = {
    # --- rotate because nothing is in use -------------------------------------------------------
    "a first run with no sink holding anything rotates": Case(
        [], [keyvault(None), push(None)], ["create no_credential_in_use"]
    ),
    "a hand-made secret that no sink is known to hold is left alone and a managed one is created": Case(
        [HAND], [keyvault(None)], ["create no_credential_in_use"]
    ),
    "a sink naming a key id that is no longer on the app holds nothing, so the pass rotates": Case(
        [CUR], [keyvault("gone", recorded=("cur",))], ["create no_credential_in_use"]
    ),
    "lost receipts leave a credential the consumer may hold: it is kept and a new one is created": Case(
        [CUR], [push(None)], ["create no_receipt supersedes cur"]
    ),
    "lost receipts keep even an old managed credential no other sink recorded": Case(
        [OLD, CUR], [keyvault(None), push(None)], ["create no_receipt supersedes cur old"]
    ),
    "lost receipts with only expired credentials on the app are no reason to name the receipt": Case(
        [EXPIRED_OLD], [push(None)], ["create no_credential_in_use"]
    ),
    "a push sink with a receipt for a key no longer on the app holds nothing, and knows what it was given": Case(
        [CUR], [push("gone")], ["create no_credential_in_use", "retire orphan cur after rotation"]
    ),
    # --- healthy ---------------------------------------------------------------------------------
    "every sink holding a credential that is not due needs nothing": Case([CUR], [keyvault("cur"), push("cur")], []),
    "a credential one day before its default renewal time needs nothing": Case(
        [cred("cur", age=59 * DAY)], [keyvault("cur")], []
    ),
    # --- renewal ---------------------------------------------------------------------------------
    "a credential past renew_before rotates": Case(
        [cred("cur", age=61 * DAY)],
        [keyvault("cur"), push("cur")],
        ["create renewal_due"],
        policy=Policy(renew_before=30 * DAY),
    ),
    "a credential one day before renew_before needs nothing": Case(
        [cred("cur", age=59 * DAY)], [keyvault("cur")], [], policy=Policy(renew_before=30 * DAY)
    ),
    "a credential past the default third of its lifetime rotates": Case(
        [DUE], [keyvault("cur"), push("cur")], ["create renewal_due"]
    ),
    "a credential past renew_before_ratio of its lifetime rotates": Case(
        [cred("cur", age=46 * DAY)], [keyvault("cur")], ["create renewal_due"], policy=Policy(renew_before_ratio=0.5)
    ),
    "a credential before renew_before_ratio of its lifetime needs nothing": Case(
        [cred("cur", age=44 * DAY)], [keyvault("cur")], [], policy=Policy(renew_before_ratio=0.5)
    ),
    "an expired credential in use rotates": Case(
        [cred("cur", age=91 * DAY)], [keyvault("cur"), push("cur")], ["create renewal_due"]
    ),
    "a credential shortened by a tenant policy is not due the moment it is created": Case(
        [cred("cur", age=1 * DAY, lifetime=7 * DAY)], [keyvault("cur")], [], policy=Policy(renew_before=30 * DAY)
    ),
    "a credential shortened by a tenant policy is due past half its lifetime": Case(
        [cred("cur", age=4 * DAY, lifetime=7 * DAY)],
        [keyvault("cur")],
        ["create renewal_due"],
        policy=Policy(renew_before=30 * DAY),
    ),
    "the newest credential in use decides renewal, not an older one still held": Case(
        [cred("old", age=89 * DAY), CUR],
        [keyvault("cur", recorded=("old",)), push("old")],
        ["resync sink_lags cur to push from keyvault"],
    ),
    # --- retire_on: usage (evidence of the switch) ---------------------------------------------
    "with retire_on usage an old secret goes once the new one signed in after the handout and the old one not": Case(
        [OLD, CUR],
        SWITCHED,
        ["retire superseded old"],
        policy=ON_USAGE,
        usage=signed_in(cur=HOUR, old=2 * DAY + HOUR),
    ),
    "with retire_on usage a consumer still signing in with the old secret keeps it": Case(
        [OLD, CUR],
        SWITCHED,
        [],
        policy=ON_USAGE,
        usage=signed_in(cur=HOUR, old=2 * HOUR),
    ),
    "with retire_on usage no sign-in with the new secret since its handout keeps the old one": Case(
        [OLD, CUR],
        SWITCHED,
        [],
        policy=ON_USAGE,
        usage=signed_in(cur=2 * DAY + MINUTE, old=3 * DAY),
    ),
    "with retire_on usage a sign-in in the very second of the handout (the verification's) is no evidence": Case(
        [OLD, CUR],
        SWITCHED,
        [],
        policy=ON_USAGE,
        usage=signed_in(cur=2 * DAY, old=3 * DAY),
    ),
    "with retire_on usage a report without the new secret at all keeps the old one": Case(
        [OLD, CUR],
        SWITCHED,
        [],
        policy=ON_USAGE,
        usage=signed_in(old=3 * DAY),
    ),
    "with retire_on usage the old secret may sign in up to usage_lag after the handout": Case(
        [OLD, CUR],
        SWITCHED,
        ["retire superseded old"],
        policy=ON_USAGE,
        usage=signed_in(cur=HOUR, old=2 * DAY - 5 * HOUR),
    ),
    "with retire_on usage a lagging consumer's old secret goes once it has expired": Case(
        [EXPIRED_OLD, CUR],
        SWITCHED,
        ["retire superseded_expired old"],
        policy=ON_USAGE,
        usage=signed_in(cur=3 * DAY, old=11 * DAY),
    ),
    "with retire_on usage a report that cannot be read falls back to the grace period": Case(
        [OLD, CUR],
        SWITCHED,
        ["retire superseded old"],
        policy=ON_USAGE,
        usage=Usage(gap=EvidenceGap.NO_PERMISSION, detail="403", hint="grant AuditLog.Read.All"),
    ),
    "with retire_on usage the grace period still comes first": Case(
        [OLD, CUR],
        [keyvault("cur", held_for=12 * HOUR, recorded=("old",))],
        [],
        policy=ON_USAGE,
        usage=signed_in(cur=HOUR, old=DAY),
    ),
    "with retire_on usage a handout younger than usage_lag waits for the report to catch up": Case(
        [OLD, CUR],
        [keyvault("cur", held_for=3 * HOUR, recorded=("old",))],
        [],
        policy=Policy(retire_on="usage", grace_period=HOUR),
        usage=signed_in(cur=HOUR, old=DAY),
    ),
    "with retire_on grace_period the sign-in report decides nothing": Case(
        [OLD, CUR],
        SWITCHED,
        ["retire superseded old"],
        usage=signed_in(cur=3 * DAY, old=MINUTE),
    ),
    "with retire_on usage an orphan needs no evidence: no consumer ever had it": Case(
        [cred("stray", age=DAY), CUR],
        SWITCHED,
        ["retire orphan stray"],
        policy=ON_USAGE,
        usage=signed_in(old=DAY),
    ),
    # --- operator flags --------------------------------------------------------------------------
    "--force rotates a healthy target": Case(
        [CUR], [keyvault("cur"), push("cur")], ["create forced"], flags=Flags(force=True)
    ),
    "--revoke-previous rotates and revokes the one in use and its managed predecessor after the rotation": Case(
        [OLD, CUR, HAND],
        [keyvault("cur", held_for=12 * HOUR, recorded=("old",)), push("cur", held_for=12 * HOUR)],
        ["create revoke_previous", "retire revoked old after rotation", "retire revoked cur after rotation"],
        flags=Flags(revoke_previous=True),
    ),
    "--revoke-previous revokes a hand-made secret a sink holds, since it was handed out": Case(
        [HAND],
        [keyvault("hand")],
        ["create revoke_previous", "retire revoked hand after rotation"],
        flags=Flags(revoke_previous=True),
    ),
    "--revoke-previous retires a superseded credential past grace and revokes the rest, all after the rotation": Case(
        [OLD, CUR],
        [keyvault("cur", recorded=("old",)), push("cur")],
        ["create revoke_previous", "retire superseded old after rotation", "retire revoked cur after rotation"],
        flags=Flags(revoke_previous=True),
    ),
    "--revoke-previous wins over --force": Case(
        [CUR],
        [keyvault("cur")],
        ["create revoke_previous", "retire revoked cur after rotation"],
        flags=Flags(force=True, revoke_previous=True),
    ),
    # --- sinks that lag --------------------------------------------------------------------------
    "Key Vault lagging behind the push sink cannot be re-synced from anywhere, so the pass rotates": Case(
        [OLD, CUR], [keyvault("old"), push("cur", recorded=("old",))], ["create sink_lags_unreadable"]
    ),
    "a push sink lagging behind Key Vault is re-synced from Key Vault": Case(
        [OLD, CUR], [keyvault("cur", recorded=("old",)), push("old")], ["resync sink_lags cur to push from keyvault"]
    ),
    "a push sink holding a key id no longer on the app is re-synced from Key Vault": Case(
        [CUR], [keyvault("cur"), push("gone")], ["resync sink_lags cur to push from keyvault"]
    ),
    "a push sink holding nothing known is re-synced from Key Vault": Case(
        [CUR], [keyvault("cur"), push(None)], ["resync sink_lags cur to push from keyvault"]
    ),
    "a push sink without a receipt re-synced from Key Vault records what it may have held before": Case(
        [OLD, CUR, HAND], [keyvault("cur"), push(None)], ["resync sink_lags cur to push from keyvault supersedes old"]
    ),
    "a pending receipt for the key Key Vault holds is re-pushed from Key Vault": Case(
        [CUR], [keyvault("cur"), push("cur", pending=True)], ["resync pending_resync cur to push from keyvault"]
    ),
    "a pending receipt with no readable sink holding its key rotates": Case(
        [CUR], [push("cur", pending=True)], ["create pending_unconfirmed"]
    ),
    "Key Vault lagging behind a pending receipt rotates": Case(
        [OLD, CUR], [keyvault("old"), push("cur", pending=True, recorded=("old",))], ["create sink_lags_unreadable"]
    ),
    # --- orphans ---------------------------------------------------------------------------------
    "a young orphan is kept, a concurrent pass may be verifying it": Case(
        [CUR, cred("young", age=5 * MINUTE)], [keyvault("cur"), push("cur")], []
    ),
    "an orphan older than in_flight_timeout is retired": Case(
        [CUR, cred("orphan", age=20 * MINUTE)], [keyvault("cur"), push("cur")], ["retire orphan orphan"]
    ),
    "an orphan is retired even while a sink is still within its grace period": Case(
        [CUR, cred("orphan", age=2 * HOUR)],
        [keyvault("cur", held_for=HOUR), push("cur", held_for=HOUR)],
        ["retire orphan orphan"],
    ),
    "an orphan waits for the rotation of the same pass to reach every sink": Case(
        [DUE, cred("orphan", age=20 * MINUTE)],
        [keyvault("cur"), push("cur")],
        ["create renewal_due", "retire orphan orphan after rotation"],
    ),
    "a managed credential no sink recorded is no orphan while a push sink has no receipt": Case(
        [CUR, cred("theirs", age=2 * HOUR)],
        [keyvault("cur"), push(None)],
        ["resync sink_lags cur to push from keyvault supersedes theirs"],
    ),
    "an expired managed credential is no orphan while a push sink has no receipt either": Case(
        [EXPIRED_OLD, CUR], [keyvault("cur"), push(None)], ["resync sink_lags cur to push from keyvault"]
    ),
    "one push sink without a receipt keeps every credential although another push sink has one": Case(
        [CUR, cred("maybe", age=2 * HOUR)],
        [push("cur"), push(None, sink="other-push")],
        ["create sink_lags_unreadable supersedes cur maybe"],
    ),
    "a credential only a pending receipt recorded is no orphan": Case(
        [CUR, cred("sent", age=2 * HOUR)],
        [keyvault("cur", held_for=HOUR), push("cur", held_for=HOUR, recorded=("sent",))],
        [],
    ),
    # --- whose credential: this store's intents, another host's or state store's -----------------
    "a credential this store set out to create and no sink recorded is an orphan (its answer was lost)": Case(
        [CUR, LOST], [push("cur")], ["retire orphan lost"], intents=made_here(CUR, LOST)
    ),
    "a credential another state store created is no orphan: a push-only target answers it with a new secret": Case(
        [CUR, THEIRS], [push("cur")], ["create foreign_credential supersedes theirs"], intents=made_here(CUR)
    ),
    "with Key Vault, a push sink that may hold another store's credential is re-sent what Key Vault holds": Case(
        [CUR, THEIRS],
        [keyvault("cur"), push("cur")],
        ["resync foreign_credential cur to push from keyvault supersedes theirs"],
        intents=made_here(CUR),
    ),
    "another store's credential that Key Vault recorded is superseded like any other: its tags are shared": Case(
        [THEIRS, CUR],
        [keyvault("cur", recorded=("theirs",)), push("cur")],
        ["retire superseded theirs"],
        intents=made_here(CUR),
    ),
    "on a Key-Vault-only target a credential no sink recorded is an orphan whoever made it": Case(
        [CUR, THEIRS], [keyvault("cur")], ["retire orphan theirs"], intents=()
    ),
    "another store's credential within in_flight_timeout is waited for, and kept": Case(
        [CUR, YOUNG_THEIRS], [push("cur")], [], intents=made_here(CUR)
    ),
    "what this store recorded before its last push goes after the grace period, another store's secret or not": Case(
        [OLD, CUR, YOUNG_THEIRS],
        [push("cur", recorded=("old",))],
        ["retire superseded old"],
        intents=made_here(OLD, CUR),
    ),
    "this store's own lost answer goes as an orphan, another store's secret or not": Case(
        [CUR, LOST, THEIRS],
        [keyvault("cur"), push("cur")],
        ["resync foreign_credential cur to push from keyvault supersedes theirs", "retire orphan lost"],
        intents=made_here(CUR, LOST),
    ),
    "another store's secret is never retired, not even with retire_unmanaged": Case(
        [CUR, THEIRS],
        [keyvault("cur"), push("cur")],
        ["resync foreign_credential cur to push from keyvault supersedes theirs"],
        intents=made_here(CUR),
        policy=Policy(retire_unmanaged=True),
    ),
    "a renewal while another store's credential is in flight does not record that one as superseded": Case(
        [DUE, YOUNG_THEIRS], [push("cur")], ["create renewal_due"], intents=made_here(DUE)
    ),
    "an expired credential no sink recorded goes as an orphan whoever made it: it authenticates no one": Case(
        [CUR, cred("dead", age=100 * DAY)], [push("cur")], ["retire orphan dead"], intents=made_here(CUR)
    ),
    "a pending receipt and another store's credential: the repair records that one as superseded": Case(
        [CUR, THEIRS],
        [push("cur", pending=True)],
        ["create pending_unconfirmed supersedes theirs"],
        intents=made_here(CUR),
    ),
    "a receipt naming a removed key and another store's credential: that one is answered": Case(
        [THEIRS], [push("gone", recorded=("old",))], ["create foreign_credential supersedes theirs"], intents=()
    ),
    "a credential named like this store's, in the same second, is another store's when this one was recorded": Case(
        [cred("cur", age=HOUR), cred("twin", age=HOUR)],
        [push("cur")],
        ["create foreign_credential supersedes twin"],
        intents=made_here(cred("cur", age=HOUR)),
    ),
    "two credentials this store made within one second are both its own: the unrecorded one is an orphan": Case(
        [cred("cur", age=HOUR), cred("twin", age=HOUR)],
        [push("cur")],
        ["retire orphan twin"],
        intents=made_here(cred("cur", age=HOUR), cred("twin", age=HOUR)),
    ),
    "so is one whose answer was lost, when the other of that name is this store's by its key id": Case(
        [cred("cur", age=HOUR), cred("twin", age=HOUR)],
        [push("cur")],
        ["retire orphan twin"],
        intents=(*made_here(cred("cur", age=HOUR)), *lost_answers(cred("twin", age=HOUR))),
    ),
    "a lost answer's name claims its credential however long ago it was": Case(
        [CUR, cred("lost", age=DAY)],
        [push("cur")],
        ["retire orphan lost"],
        intents=(*made_here(CUR), *lost_answers(cred("lost", age=DAY))),
    ),
    "an intent addPassword refused claims nothing: a credential of its name is another store's": Case(
        [CUR, THEIRS],
        [push("cur")],
        ["create foreign_credential supersedes theirs"],
        intents=(*made_here(CUR), replace(lost_answers(THEIRS)[0], refused=True)),
    ),
    "another store's credential named like this store's is never claimed, even when this store's is gone": Case(
        [cred("twin", age=HOUR), CUR],
        [push("cur")],
        ["create foreign_credential supersedes twin"],
        intents=(*made_here(CUR), Intent(str(cred("x", age=HOUR).display_name), NOW - HOUR, "forced", "retired")),
    ),
    "an intent whose name two unrecorded credentials carry proves neither is this store's lost answer": Case(
        [CUR, cred("a", age=HOUR), cred("b", age=HOUR)],
        [push("cur")],
        ["create foreign_credential supersedes a b"],
        intents=(*made_here(CUR), *lost_answers(cred("a", age=HOUR))),
        policy=ROOMY,
    ),
    # --- an upgraded install: receipts, and no intent recorded yet ------------------------------
    "an upgraded store whose receipts recorded every credential changes nothing": Case(
        [OLD, CUR], [push("cur", held_for=HOUR, recorded=("old",))], [], intents=()
    ),
    "an upgraded store takes a managed credential no receipt recorded for another store's: one answer": Case(
        [CUR, LOST], [push("cur")], ["create foreign_credential supersedes lost"], intents=()
    ),
    "after that answer the credential is recorded, and goes after the grace period like any superseded one": Case(
        [CUR, LOST, cred("new", age=2 * DAY)],
        [push("new", held_for=DAY, recorded=("cur", "lost"))],
        ["retire superseded cur", "retire superseded lost"],
        intents=made_here(cred("new", age=2 * DAY)),
    ),
    # --- two state stores that both keep rotating one push target --------------------------------
    "another store's credential made after this store's answer, within the grace period, blocks the answer": Case(
        [FIRST, THEIRS1, ANSWER, THEIRS2],
        [push("answer", held_for=6 * HOUR, recorded=("first", "theirs1"))],
        ["blocked competing_state_store"],
        intents=ANSWERED,
    ),
    "so does one made after this store's answer to a lost receipt": Case(
        [FIRST, ANSWER, THEIRS2],
        [push("answer", held_for=6 * HOUR, recorded=("first",))],
        ["blocked competing_state_store"],
        intents=made_here(ANSWER, reason=Reason.NO_RECEIPT),
    ),
    "once this store's answer is older than the grace period, it answers again": Case(
        [FIRST, THEIRS1, OLD_ANSWER, THEIRS2],
        [push("answer", held_for=DAY, recorded=("first", "theirs1"))],
        [
            "create foreign_credential supersedes theirs2",
            "retire superseded first after rotation",
            "retire superseded theirs1 after rotation",
        ],
        policy=ROOMY,
        intents=(*made_here(FIRST), *made_here(OLD_ANSWER, reason=Reason.FOREIGN_CREDENTIAL)),
    ),
    "a credential another store made before this store's answer is answered, not blocked": Case(
        [FIRST, ANSWER, cred("theirs2", age=7 * HOUR)],
        [push("answer", held_for=6 * HOUR, recorded=("first",))],
        ["create foreign_credential supersedes theirs2"],
        intents=ANSWERED,
        policy=ROOMY,
    ),
    "an answer this store tried after its last one, and addPassword refused, changes nothing: blocked": Case(
        [FIRST, THEIRS1, ANSWER, THEIRS2],
        [push("answer", held_for=6 * HOUR, recorded=("first", "theirs1"))],
        ["blocked competing_state_store"],
        intents=(
            *ANSWERED,
            Intent("secret-rotator 2025-06-01T11:30:00Z", NOW - 30 * MINUTE, "renewal_due", refused=True),
        ),
    ),
    "after a renewal of its own, another store's credential is answered, not blocked": Case(
        [FIRST, ANSWER, THEIRS2],
        [push("answer", held_for=6 * HOUR, recorded=("first",))],
        ["create foreign_credential supersedes theirs2"],
        intents=made_here(FIRST, ANSWER),
        policy=ROOMY,
    ),
    "a push sink last given a secret that is gone gets a new one, even right after an answer": Case(
        [THEIRS1, THEIRS2],
        [push("answer", recorded=("first",))],
        ["create foreign_credential supersedes theirs1 theirs2"],
        intents=ANSWERED,
    ),
    # --- superseded ------------------------------------------------------------------------------
    "a superseded credential within the grace period is kept": Case(
        [OLD, CUR], [keyvault("cur", held_for=12 * HOUR, recorded=("old",)), push("cur", held_for=12 * HOUR)], []
    ),
    "a superseded credential is kept until every sink has held its successor for the grace period": Case(
        [OLD, CUR], [keyvault("cur", held_for=2 * DAY, recorded=("old",)), push("cur", held_for=12 * HOUR)], []
    ),
    "a superseded credential is retired once every sink has held its successor for the grace period": Case(
        [OLD, CUR],
        [keyvault("cur", held_for=DAY, recorded=("old",)), push("cur", held_for=DAY)],
        ["retire superseded old"],
    ),
    "a superseded credential is kept while a receipt is pending": Case(
        [OLD, CUR],
        [keyvault("cur", held_for=2 * DAY, recorded=("old",)), push("cur", held_for=2 * DAY, pending=True)],
        ["resync pending_resync cur to push from keyvault"],
    ),
    "a credential recorded by the first receipt after receipts were lost waits for the grace period": Case(
        [OLD, CUR], [push("cur", held_for=12 * HOUR, recorded=("old",))], []
    ),
    "a credential recorded by the first receipt after receipts were lost goes after the grace period": Case(
        [OLD, CUR], [push("cur", held_for=DAY, recorded=("old",))], ["retire superseded old"]
    ),
    "an expired superseded credential is retired": Case(
        [EXPIRED_OLD, CUR], [keyvault("cur", recorded=("old",)), push("cur")], ["retire superseded old"]
    ),
    # --- what this service does not own ----------------------------------------------------------
    "an unmanaged credential no sink holds is left alone": Case([CUR, HAND], [keyvault("cur"), push("cur")], []),
    "an unmanaged credential a sink once recorded is left alone": Case(
        [HAND, CUR], [keyvault("cur", recorded=("hand",)), push("cur")], []
    ),
    "an unmanaged credential no sink holds is retired with retire_unmanaged": Case(
        [CUR, HAND], [keyvault("cur"), push("cur")], ["retire superseded hand"], policy=Policy(retire_unmanaged=True)
    ),
    "an unmanaged credential is kept within the grace period even with retire_unmanaged": Case(
        [CUR, HAND], [keyvault("cur", held_for=HOUR)], [], policy=Policy(retire_unmanaged=True)
    ),
    "a credential whose name has a different marker is not this service's": Case(
        [CUR, cred("theirs", age=50 * DAY)], [keyvault("cur")], [], policy=Policy(marker="other-rotator")
    ),
    # --- held credentials are never retired ------------------------------------------------------
    "an expired credential a sink still holds is never retired": Case(
        [EXPIRED_OLD, CUR],
        [keyvault("cur", recorded=("old",)), push("old")],
        ["resync sink_lags cur to push from keyvault"],
    ),
    "a credential a pending receipt names is never retired": Case(
        [EXPIRED_OLD, CUR],
        [keyvault("cur", recorded=("old",)), push("old", pending=True)],
        ["resync sink_lags cur to push from keyvault"],
    ),
    "an expired unmanaged credential a sink holds is never retired, even with retire_unmanaged": Case(
        [cred("hand", age=800 * DAY, lifetime=730 * DAY, managed=False), CUR],
        [keyvault("cur"), push("hand")],
        ["resync sink_lags cur to push from keyvault"],
        policy=Policy(retire_unmanaged=True),
    ),
    # --- max_credentials -------------------------------------------------------------------------
    "at the cap a retirement is planned before the creation": Case(
        [EXPIRED_OLD, HAND, HAND2, DUE],
        [keyvault("cur", recorded=("old",)), push("cur")],
        ["retire superseded old", "create renewal_due"],
    ),
    "at the cap with nothing retirable the rotation is blocked": Case(
        [HAND, HAND2, HAND3, DUE], [keyvault("cur"), push("cur")], ["blocked cap_reached"]
    ),
    "at the cap a young orphan cannot make room, so the rotation is blocked": Case(
        [HAND, HAND2, DUE, cred("young", age=MINUTE)], [keyvault("cur")], ["blocked cap_reached"]
    ),
    "at the cap a superseded credential within grace cannot make room, so a forced rotation is blocked": Case(
        [HAND, HAND2, OLD, CUR],
        [keyvault("cur", held_for=HOUR, recorded=("old",))],
        ["blocked cap_reached"],
        flags=Flags(force=True),
    ),
    "below the cap nothing needs to be retired first": Case(
        [HAND, HAND2, DUE], [keyvault("cur")], ["create renewal_due"]
    ),
    "a higher max_credentials lets the rotation through": Case(
        [HAND, HAND2, HAND3, DUE], [keyvault("cur")], ["create renewal_due"], policy=Policy(max_credentials=5)
    ),
    "at the cap an orphan makes room before a superseded credential, which waits for the rotation": Case(
        [OLD, cred("orphan", age=HOUR), HAND, DUE],
        [keyvault("cur", recorded=("old",)), push("cur")],
        ["retire orphan orphan", "create renewal_due", "retire superseded old after rotation"],
    ),
    "at the cap an expired credential makes room before a valid one": Case(
        [cred("old", age=40 * DAY), cred("older", age=100 * DAY), HAND, DUE],
        [keyvault("cur", recorded=("old", "older")), push("cur")],
        ["retire superseded older", "create renewal_due", "retire superseded old after rotation"],
    ),
    "a retirement that fails to make room is planned before the creation, so apply can stop": Case(
        [EXPIRED_OLD, HAND, HAND2, DUE],
        [keyvault("cur", recorded=("old",))],
        ["retire superseded old", "create renewal_due"],
    ),
    # --- room to repair an unconfirmed push on a target no sink of which can be read back --------
    "a push-only target rotates when a slot stays free for a repair": Case(
        [HAND, DUE], [push("cur")], ["create renewal_due"]
    ),
    "a push-only target refuses a rotation that would leave no slot for a repair": Case(
        [HAND, HAND2, DUE], [push("cur")], ["blocked no_room_for_retry"]
    ),
    "a push-only target retires to keep a slot free for a repair": Case(
        [HAND, EXPIRED_OLD, DUE], [push("cur", recorded=("old",))], ["retire superseded old", "create renewal_due"]
    ),
    "a push-only target's repair of an unconfirmed push may take the slot kept for it": Case(
        [HAND, HAND2, OLD, cred("sent", age=HOUR)],
        [push("sent", pending=True, recorded=("old",))],
        ["create pending_unconfirmed"],
        policy=Policy(max_credentials=5),
    ),
    "a push-only target's repair at the cap is blocked and names the runbook": Case(
        [HAND, HAND2, OLD, cred("sent", age=HOUR)],
        [push("sent", pending=True, recorded=("old",))],
        ["blocked cap_reached"],
        policy=Policy(max_credentials=4),
    ),
    "a target with a readable sink needs no slot for a repair": Case(
        [HAND, HAND2, DUE], [keyvault("cur"), push("cur")], ["create renewal_due"]
    ),
    # --- maintenance windows (the whole table: tests/unit/test_window_policy.py) ------------------------
    "a due rotation outside every maintenance window waits for the next one": Case(
        [DUE], [keyvault("cur")], ["wait outside_window"], policy=Policy(windows=(WEEKDAYS,))
    ),
    "a rotation outside the windows that cannot wait goes ahead and says why": Case(
        [cred("cur", age=88 * DAY)],
        [keyvault("cur")],
        ["create renewal_due overriding the window"],
        policy=Policy(windows=(WEEKDAYS,)),
    ),
    "a blocked rotation still plans the retirements it can": Case(
        [HAND, HAND2, cred("orphan", age=HOUR), DUE, cred("young", age=MINUTE)],
        [keyvault("cur")],
        ["retire orphan orphan", "blocked cap_reached"],
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_plan(case: Case) -> None:
    assert [describe(a) for a in case.plan()] == case.expected


def test_the_table_covers_every_kind_and_reason() -> None:
    said = " ".join(" ".join(case.expected) for case in CASES.values()).split()
    assert {str(k) for k in Kind} <= set(said)
    # compensation is apply's, never planned: a new secret no sink took is taken back (tests/integration/test_faults.py)
    assert {str(r) for r in Reason if r is not Reason.COMPENSATION} <= set(said)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_every_action_says_why_in_words(case: Case) -> None:
    for action in case.plan():
        message = action.message
        assert len(message.split()) >= 4, f"a sentence, not a code: {message!r}"
        if action.key_id:
            assert action.key_id in message, f"names the credential it acts on: {message!r}"
        if action.sink:
            assert f"{action.sink} " in message, message
            assert f"from {action.source}" in message, message
        if action.kind is Kind.BLOCKED:
            assert "max_credentials" in message or "state store" in message, f"says what would unblock it: {message!r}"


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_no_message_or_note_carries_a_hint(case: Case) -> None:
    """Graph's hint is a secret's first three characters: `plan` and the log name credentials by key id."""
    canary = replace(case, credentials=[replace(c, hint="~Z~") for c in case.credentials])
    intents = made_here(*canary.credentials) if canary.intents is None else canary.intents
    said = [a.message for a in canary.plan()] + notes(NOW, canary.credentials, canary.holdings, canary.policy, intents)
    assert not [text for text in said if "~Z~" in text]


# --- each rule on its own ----------------------------------------------------------------------------


def facts(case: Case) -> Facts:
    intents = made_here(*case.credentials) if case.intents is None else case.intents
    return Facts.of(NOW, case.credentials, case.holdings, case.policy, case.flags, intents)


ROTATION_RULES: dict[str, tuple[Rule, Case, Reason | None]] = {
    "revoke_previous_asked answers --revoke-previous": (
        revoke_previous_asked,
        Case([CUR], [keyvault("cur")], [], flags=Flags(revoke_previous=True)),
        Reason.REVOKE_PREVIOUS,
    ),
    "revoke_previous_asked is silent without it, even under --force": (
        revoke_previous_asked,
        Case([CUR], [keyvault("cur")], [], flags=Flags(force=True)),
        None,
    ),
    "force_asked answers --force on a healthy target": (
        force_asked,
        Case([CUR], [keyvault("cur")], [], flags=Flags(force=True)),
        Reason.FORCED,
    ),
    "force_asked is silent without it, even when renewal is due": (
        force_asked,
        Case([DUE], [keyvault("cur")], []),
        None,
    ),
    "holding_unknown answers a push sink without a receipt while nothing is held": (
        holding_unknown,
        Case([CUR], [push(None)], []),
        Reason.NO_RECEIPT,
    ),
    "holding_unknown is silent when every credential has expired": (
        holding_unknown,
        Case([EXPIRED_OLD], [push(None)], []),
        None,
    ),
    "holding_unknown is silent while another sink holds a credential": (
        holding_unknown,
        Case([CUR], [keyvault("cur"), push(None)], []),
        None,
    ),
    "foreign_unanswered answers another store's credential while nothing is held": (
        foreign_unanswered,
        Case([THEIRS], [push("gone", recorded=("old",))], [], intents=()),
        Reason.FOREIGN_CREDENTIAL,
    ),
    "foreign_unanswered waits for one still in flight": (
        foreign_unanswered,
        Case([YOUNG_THEIRS], [push("gone", recorded=("old",))], [], intents=()),
        None,
    ),
    "foreign_unanswered is silent while a sink holds a credential": (
        foreign_unanswered,
        Case([CUR, THEIRS], [push("cur")], [], intents=made_here(CUR)),
        None,
    ),
    "nothing_in_use answers a first run": (nothing_in_use, Case([], [keyvault(None)], []), Reason.NO_CREDENTIAL_IN_USE),
    "nothing_in_use answers sinks that hold only removed credentials": (
        nothing_in_use,
        Case([CUR], [keyvault("gone")], []),
        Reason.NO_CREDENTIAL_IN_USE,
    ),
    "nothing_in_use is silent while a sink holds a credential": (
        nothing_in_use,
        Case([CUR], [keyvault("cur")], []),
        None,
    ),
    "lag_without_source answers Key Vault lagging behind a push sink": (
        lag_without_source,
        Case([OLD, CUR], [keyvault("old"), push("cur", recorded=("old",))], []),
        Reason.SINK_LAGS_UNREADABLE,
    ),
    "lag_without_source answers a pending receipt no readable sink can repair": (
        lag_without_source,
        Case([CUR], [push("cur", pending=True)], []),
        Reason.PENDING_UNCONFIRMED,
    ),
    "lag_without_source answers a push-only sink that may hold another store's credential": (
        lag_without_source,
        Case([CUR, THEIRS], [push("cur")], [], intents=made_here(CUR)),
        Reason.FOREIGN_CREDENTIAL,
    ),
    "lag_without_source is silent when Key Vault can re-send the secret": (
        lag_without_source,
        Case([OLD, CUR], [keyvault("cur", recorded=("old",)), push("old")], []),
        None,
    ),
    "lag_without_source is silent when no sink lags": (
        lag_without_source,
        Case([CUR], [keyvault("cur"), push("cur")], []),
        None,
    ),
    "renewal_due answers a credential past its renewal time": (
        renewal_due,
        Case([DUE], [keyvault("cur")], []),
        Reason.RENEWAL_DUE,
    ),
    "renewal_due answers an expired credential in use": (
        renewal_due,
        Case([cred("cur", age=91 * DAY)], [keyvault("cur")], []),
        Reason.RENEWAL_DUE,
    ),
    "renewal_due is silent before the renewal time": (renewal_due, Case([CUR], [keyvault("cur")], []), None),
}


@pytest.mark.parametrize(("rule", "case", "expected"), ROTATION_RULES.values(), ids=ROTATION_RULES.keys())
def test_rotation_rule(rule: Rule, case: Case, expected: Reason | None) -> None:
    why = rule(facts(case))
    assert (why.reason if why else None) is expected
    if why is not None:
        assert len(why.message.split()) >= 4, why.message


def test_the_rotation_chain_asks_the_operator_first_then_what_is_held_then_renewal() -> None:
    assert [rule.__name__ for rule in ROTATION] == [
        "revoke_previous_asked",
        "force_asked",
        "holding_unknown",
        "foreign_unanswered",
        "nothing_in_use",
        "lag_without_source",
        "renewal_due",
    ]


RETIREMENT_RULES: dict[str, tuple[RetireRule, Case, str, Reason | None]] = {
    "orphan takes a managed credential no sink recorded, once past in_flight_timeout": (
        orphan,
        Case([CUR, cred("orphan", age=20 * MINUTE)], [keyvault("cur"), push("cur")], []),
        "orphan",
        Reason.ORPHAN,
    ),
    "orphan leaves one still in flight": (
        orphan,
        Case([CUR, cred("young", age=5 * MINUTE)], [keyvault("cur"), push("cur")], []),
        "young",
        None,
    ),
    "orphan leaves every credential while a push sink has no receipt": (
        orphan,
        Case([CUR, cred("maybe", age=2 * HOUR)], [keyvault("cur"), push(None)], []),
        "maybe",
        None,
    ),
    "orphan leaves a credential a sink recorded": (
        orphan,
        Case([OLD, CUR], [keyvault("cur", recorded=("old",))], []),
        "old",
        None,
    ),
    "orphan leaves a hand-made credential, whatever retire_unmanaged says": (
        orphan,
        Case([CUR, HAND], [keyvault("cur")], [], policy=Policy(retire_unmanaged=True)),
        "hand",
        None,
    ),
    "superseded takes a recorded credential once every sink has held its successor for the grace period": (
        superseded,
        Case([OLD, CUR], [keyvault("cur", held_for=DAY, recorded=("old",)), push("cur", held_for=DAY)], []),
        "old",
        Reason.SUPERSEDED,
    ),
    "superseded waits while a sink is within the grace period": (
        superseded,
        Case([OLD, CUR], [keyvault("cur", recorded=("old",)), push("cur", held_for=HOUR)], []),
        "old",
        None,
    ),
    "superseded waits while a receipt is pending": (
        superseded,
        Case([OLD, CUR], [keyvault("cur", recorded=("old",)), push("cur", pending=True)], []),
        "old",
        None,
    ),
    "superseded leaves a managed credential no sink recorded to the orphan rule": (
        superseded,
        Case([CUR, cred("orphan", age=HOUR)], [keyvault("cur")], []),
        "orphan",
        None,
    ),
    "superseded takes a hand-made credential no sink holds (retirements ask retire_unmanaged first)": (
        superseded,
        Case([CUR, HAND], [keyvault("cur")], [], policy=Policy(retire_unmanaged=True)),
        "hand",
        Reason.SUPERSEDED,
    ),
    "revoked takes the credential in use under --revoke-previous": (
        revoked,
        Case([CUR], [keyvault("cur")], [], flags=Flags(revoke_previous=True)),
        "cur",
        Reason.REVOKED,
    ),
    "revoked takes a hand-made credential a sink was given": (
        revoked,
        Case([HAND], [keyvault("hand")], [], flags=Flags(revoke_previous=True)),
        "hand",
        Reason.REVOKED,
    ),
    "revoked leaves a hand-made credential no sink was given": (
        revoked,
        Case([CUR, HAND], [keyvault("cur")], [], flags=Flags(revoke_previous=True)),
        "hand",
        None,
    ),
    "revoked leaves a credential still in flight": (
        revoked,
        Case([CUR, cred("young", age=MINUTE)], [keyvault("cur")], [], flags=Flags(revoke_previous=True)),
        "young",
        None,
    ),
    "revoked takes nothing without --revoke-previous": (revoked, Case([CUR], [keyvault("cur")], []), "cur", None),
}


@pytest.mark.parametrize(("rule", "case", "key_id", "expected"), RETIREMENT_RULES.values(), ids=RETIREMENT_RULES.keys())
def test_retirement_rule(rule: RetireRule, case: Case, key_id: str, expected: Reason | None) -> None:
    [credential] = [c for c in case.credentials if c.key_id == key_id]
    action = rule(facts(case), credential)
    assert (action.reason if action else None) is expected
    if action is not None:
        assert (action.kind, action.key_id) == (Kind.RETIRE, key_id)


def test_the_retirement_rules_are_orphan_then_superseded() -> None:
    assert [rule.__name__ for rule in RETIREMENT] == ["orphan", "superseded"]


def test_no_retirement_touches_what_a_sink_or_another_stores_consumer_may_hold() -> None:
    case = Case(
        [EXPIRED_OLD, CUR, THEIRS],
        [keyvault("cur", recorded=("old",)), push("old")],
        [],
        intents=made_here(EXPIRED_OLD, CUR),
        policy=Policy(retire_unmanaged=True),
    )
    assert [a.key_id for a in retirements(facts(case))] == []


def blocked(rule: BlockRule, case: Case) -> Reason | None:
    known = facts(case)
    why = next(answer for answer in (rotation_rule(known) for rotation_rule in ROTATION) if answer)
    action = rule(known, why, retirements(known))
    assert action is None or action.kind is Kind.BLOCKED
    return action.reason if action else None


BLOCKING_RULES: dict[str, tuple[BlockRule, Case, Reason | None]] = {
    "competing_state_store blocks an answer to what another store made after this store's answer": (
        competing_state_store,
        Case(
            [FIRST, THEIRS1, ANSWER, THEIRS2],
            [push("answer", held_for=6 * HOUR, recorded=("first", "theirs1"))],
            [],
            intents=ANSWERED,
        ),
        Reason.COMPETING_STATE_STORE,
    ),
    "competing_state_store lets the answer through once this store's answer is past the grace period": (
        competing_state_store,
        Case(
            [FIRST, THEIRS1, OLD_ANSWER, THEIRS2],
            [push("answer", held_for=DAY, recorded=("first", "theirs1"))],
            [],
            intents=(*made_here(FIRST), *made_here(OLD_ANSWER, reason=Reason.FOREIGN_CREDENTIAL)),
            policy=ROOMY,
        ),
        None,
    ),
    "competing_state_store has nothing to say about a renewal": (
        competing_state_store,
        Case([DUE], [push("cur")], []),
        None,
    ),
    "no_room blocks a rotation at the cap with nothing retirable": (
        no_room,
        Case([HAND, HAND2, HAND3, DUE], [keyvault("cur")], []),
        Reason.CAP_REACHED,
    ),
    "no_room keeps a push-only target's slot for a repair": (
        no_room,
        Case([HAND, HAND2, DUE], [push("cur")], []),
        Reason.NO_ROOM_FOR_RETRY,
    ),
    "no_room lets a rotation through below the cap": (no_room, Case([HAND, HAND2, DUE], [keyvault("cur")], []), None),
    "no_room lets a rotation through when a retirement makes room": (
        no_room,
        Case([EXPIRED_OLD, HAND, HAND2, DUE], [keyvault("cur", recorded=("old",))], []),
        None,
    ),
}


@pytest.mark.parametrize(("rule", "case", "expected"), BLOCKING_RULES.values(), ids=BLOCKING_RULES.keys())
def test_blocking_rule(rule: BlockRule, case: Case, expected: Reason | None) -> None:
    assert blocked(rule, case) is expected


def test_the_blocking_rules_are_competing_stores_then_room() -> None:
    assert [rule.__name__ for rule in BLOCKING] == ["competing_state_store", "no_room"]


@pytest.mark.parametrize(
    ("chain", "table"),
    [
        pytest.param(ROTATION, ROTATION_RULES, id="every rotation rule has a row that answers and one that does not"),
        pytest.param(
            (*RETIREMENT, revoked),
            RETIREMENT_RULES,
            id="every retirement rule has a row that answers and one that does not",
        ),
        pytest.param(BLOCKING, BLOCKING_RULES, id="every blocking rule has a row that answers and one that does not"),
    ],
)
def test_every_rule_has_its_rows(chain: tuple[object, ...], table: dict[str, tuple[object, ...]]) -> None:
    for rule in chain:
        outcomes = {row[-1] is None for row in table.values() if row[0] is rule}
        assert outcomes == {True, False}, f"{getattr(rule, '__name__', rule)}: {outcomes}"


MESSAGES = {
    "an expired credential says it expired": (
        Case([cred("cur", age=91 * DAY)], [keyvault("cur")], []),
        "expired at",
    ),
    "a credential due for renewal says when it was due": (
        Case([DUE], [keyvault("cur")], []),
        "was due for renewal at 2025-05-31 12:00Z",
    ),
    "an expired superseded credential says it expired": (
        Case([EXPIRED_OLD, CUR], [keyvault("cur", recorded=("old",))], []),
        "(expired) is superseded",
    ),
    "an orphan says how long ago it was created": (
        Case([CUR, cred("orphan", age=20 * MINUTE)], [keyvault("cur")], []),
        "was created 20m ago",
    ),
    "a blocked rotation says how to unblock it": (
        Case([HAND, HAND2, HAND3, DUE], [keyvault("cur")], []),
        "remove an unused secret or raise max_credentials",
    ),
    "a blocked rotation says which max_credentials would let it through": (
        Case([HAND, HAND2, HAND3, DUE], [keyvault("cur")], []),
        "raise max_credentials to 5",
    ),
    "a rotation because of lost receipts says the sink may hold any of the secrets": (
        Case([CUR], [push(None)], []),
        "no receipt: push may hold any of the app's 1 valid secret(s)",
    ),
    "a re-sync of a sink without a receipt says so": (
        Case([CUR], [keyvault("cur"), push(None)], []),
        "push has no receipt (it may hold any of the app's secrets); re-send cur",
    ),
    "a rotation refused for want of a repair slot says how to make room": (
        Case([HAND, HAND2, DUE], [push("cur")], []),
        "raise max_credentials to 5, or remove a secret of the app that no consumer uses",
    ),
    "a blocked repair of an unconfirmed push points to the runbook": (
        Case([HAND, HAND2, OLD, cred("sent", age=HOUR)], [push("sent", pending=True, recorded=("old",))], []),
        "see the runbook, 'push never confirmed, no room'",
    ),
    "an answer to another store's credential says who may hold what": (
        Case([CUR, THEIRS], [push("cur")], [], intents=made_here(CUR)),
        "theirs created by another host or state store: push may hold it",
    ),
    "a re-sync because of another store's credential says so": (
        Case([CUR, THEIRS], [keyvault("cur"), push("cur")], [], intents=made_here(CUR)),
        "push may hold theirs, created by another host or state store, although its receipt says",
    ),
    "an answer blocked by another store's answer says to share one state store": (
        Case([FIRST, THEIRS1, ANSWER, THEIRS2], [push("answer", held_for=6 * HOUR)], [], intents=ANSWERED),
        "two rotators with separate state stores keep rotating this target. Give them one shared state store",
    ),
    "an answer blocked by another store's answer says when this store answers again": (
        Case([FIRST, THEIRS1, ANSWER, THEIRS2], [push("answer", held_for=6 * HOUR)], [], intents=ANSWERED),
        "foreign_credential, 6h ago",
    ),
    "a re-sync names the sink it copies from": (
        Case([CUR], [keyvault("cur"), push(None)], []),
        "re-send cur from keyvault",
    ),
}


@pytest.mark.parametrize(("case", "fragment"), MESSAGES.values(), ids=MESSAGES.keys())
def test_messages(case: Case, fragment: str) -> None:
    messages = [a.message for a in case.plan()]
    assert any(fragment in m for m in messages), messages


START = datetime(2025, 1, 1, tzinfo=UTC)


def life(days: float, *, start: datetime | None = START) -> Credential:
    begin = start or START
    return Credential("k", "secret-rotator", None, start, begin + timedelta(days=days))


RENEWAL_TIMES = {
    "renew_before is counted back from the end": (life(90), Policy(renew_before=30 * DAY), START + 60 * DAY),
    "the default is a third of the credential's own lifetime": (life(90), Policy(), START + 60 * DAY),
    "renew_before_ratio is a share of the credential's own lifetime": (
        life(30),
        Policy(renew_before_ratio=0.25),
        START + timedelta(days=22.5),
    ),
    "renew_before wins over renew_before_ratio": (
        life(90),
        Policy(renew_before=10 * DAY, renew_before_ratio=0.5),
        START + 80 * DAY,
    ),
    "renew_before longer than half the lifetime is floored at half the lifetime": (
        life(7),
        Policy(renew_before=30 * DAY),
        START + timedelta(days=3.5),
    ),
    "a credential without a start counts back by the policy lifetime's ratio": (
        life(90, start=None),
        Policy(lifetime=30 * DAY, renew_before_ratio=0.5),
        START + 75 * DAY,
    ),
    "a credential that never expires is never due": (
        Credential("k", "secret-rotator", None, START, None),
        Policy(renew_before=30 * DAY),
        None,
    ),
}


@pytest.mark.parametrize(("credential", "policy", "expected"), RENEWAL_TIMES.values(), ids=RENEWAL_TIMES.keys())
def test_renewal_time(credential: Credential, policy: Policy, expected: datetime | None) -> None:
    assert renewal_time(credential, policy) == expected


NOTES = {
    "a push sink without a receipt may hold any valid secret": (
        Case([CUR, EXPIRED_OLD], [push(None)], []),
        [
            "no receipt: push may hold any of these: cur; none of them is retired until it has held a "
            "new secret for the grace period"
        ],
    ),
    "a push sink may hold another store's credential": (
        Case([CUR, THEIRS], [keyvault("cur"), push("cur")], [], intents=made_here(CUR)),
        [
            "created by another host or state store: push may hold theirs; kept until push has held a "
            "newer secret for the grace period"
        ],
    ),
    "another store's credential still in flight is waited for": (
        Case([CUR, YOUNG_THEIRS], [push("cur")], [], intents=made_here(CUR)),
        [
            "created by another host or state store: push may hold young; kept until push has held a "
            "newer secret for the grace period; young is younger than in_flight_timeout (15m): the pass "
            "that made it may still be delivering it, so it is answered once it is older"
        ],
    ),
    "a Key-Vault-only target has nothing to say about a credential no sink recorded": (
        Case([CUR, THEIRS], [keyvault("cur")], [], intents=()),
        [],
    ),
    "this store's own lost answer is no note": (Case([CUR, LOST], [push("cur")], []), []),
}


@pytest.mark.parametrize(("case", "expected"), NOTES.values(), ids=NOTES.keys())
def test_notes(case: Case, expected: list[str]) -> None:
    intents = made_here(*case.credentials) if case.intents is None else case.intents
    assert notes(NOW, case.credentials, case.holdings, case.policy, intents) == expected


CLAIMS = {
    "a lost answer claims the one credential of its name": (
        [CUR, LOST],
        (*made_here(CUR), *lost_answers(LOST)),
        {"lost"},
    ),
    "one of two credentials named alike is claimed by key id, the other by the lost answer": (
        [cred("cur", age=HOUR), cred("twin", age=HOUR)],
        (*made_here(cred("cur", age=HOUR)), *lost_answers(cred("twin", age=HOUR))),
        {"twin"},
    ),
    "two credentials of one name and one lost answer: neither is claimed": (
        [cred("a", age=HOUR), cred("b", age=HOUR)],
        lost_answers(cred("a", age=HOUR)),
        set(),
    ),
    "two lost answers of one name claim both credentials of that name": (
        [cred("a", age=HOUR), cred("b", age=HOUR)],
        lost_answers(cred("a", age=HOUR), cred("b", age=HOUR)),
        {"a", "b"},
    ),
    "an intent with its key id claims nothing more": ([CUR, LOST], made_here(CUR), set()),
    "a refused intent claims nothing": ([LOST], (replace(lost_answers(LOST)[0], refused=True),), set()),
    "a lost answer whose credential never came to be claims nothing": ([CUR], lost_answers(LOST), set()),
}


@pytest.mark.parametrize(("credentials", "intents", "claimed"), CLAIMS.values(), ids=CLAIMS.keys())
def test_claims(credentials: list[Credential], intents: tuple[Intent, ...], claimed: set[str]) -> None:
    found = claims(credentials, intents)
    assert {i.key_id for i in found} == claimed
    assert all((i.name, i.at) in {(j.name, j.at) for j in intents if not j.key_id} for i in found)
