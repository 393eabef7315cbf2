"""The nouns of a rotation: credentials on an app, what each sink holds, and the planned actions.

Plain frozen dataclasses with no I/O, shared by the pure planner and the adapters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from service.catalogue import EvidenceGap
from service.catalogue import Reason as Reason  # defined with every other word operators see
from service.clock import STAMP, iso
from service.windows import Window

DEFAULT_MARKER = "secret-rotator"


def credential_name(marker: str, created: datetime) -> str:
    """The display name this service gives a credential it creates: the marker, one space, the UTC time."""
    return f"{marker} {iso(created)}"


def parse_credential_name(name: str | None, marker: str) -> datetime | None:
    """When a credential named ``name`` was created, if :func:`credential_name` wrote that name; else None.

    Ownership rests on this: only a name that is exactly the marker, one space and a UTC timestamp is ours.
    A name that merely begins with the marker (``secret-rotator-staging 2026-…`` of another installation,
    a person's ``secret-rotator: break-glass``) belongs to someone else.
    """
    prefix = f"{marker} "
    if not name or not name.startswith(prefix):
        return None
    stamp = name[len(prefix) :]
    try:
        created = datetime.strptime(stamp, STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None
    # strptime forgives missing zero padding ("2026-1-5T1:2:3Z"); the writer never leaves it out.
    return created if credential_name(marker, created) == name else None


@dataclass(frozen=True)
class Credential:
    """One of an app's ``passwordCredentials`` as Graph reports it (never with its secret text)."""

    key_id: str
    display_name: str | None
    hint: str | None
    start: datetime | None
    end: datetime | None

    def managed(self, marker: str = DEFAULT_MARKER) -> bool:
        """Created by this service: its display name is exactly what :func:`credential_name` writes."""
        return parse_credential_name(self.display_name, marker) is not None

    def expired(self, now: datetime) -> bool:
        """Its end date has passed (a credential without one never expires)."""
        return self.end is not None and self.end <= now


@dataclass(frozen=True)
class App:
    """An app registration as gathered: object id (for writes), appId and its password credentials."""

    object_id: str
    app_id: str
    display_name: str
    credentials: tuple[Credential, ...]

    def credential(self, key_id: str | None) -> Credential | None:
        """The credential with this key id, if the app has it."""
        return next((c for c in self.credentials if c.key_id == key_id), None)


@dataclass(frozen=True)
class Holding:
    """What one sink holds now, and every key id it ever recorded.

    ``key_id`` is None when the sink holds nothing this service can name (first run, lost receipts, a
    Key Vault secret that matches no credential). ``since`` is when it started holding it. A sink that
    can be read back (Key Vault) is ``readable``: the planner may re-sync other sinks from it.
    ``pending`` marks a push whose receipt was written but never confirmed: the consumer may or may not
    have the secret. ``recorded`` holds every key id the sink ever recorded (Key Vault versions' tags,
    receipts, pending ones included): a credential in it was handed out, one outside never was.
    ``known`` is False when nothing says what the sink holds (a push sink with no receipt at all: a fresh
    or lost state volume, a manual run from another host, receipts that cannot be read): it may hold any
    credential of the app, so ``recorded`` proves nothing and no credential may be taken for an orphan.
    A receipt can also be stale (another state store pushed since): the planner finds that out from the
    app's credentials and this store's :class:`Intent` s, not from the holding.
    ``history`` is False when only what the sink holds now was read (a Key Vault secret's current version
    from the pass's listing of the vault): ``recorded`` then names that alone, and says nothing about the
    app's other credentials (see :func:`service.policy.needs_history`).
    """

    sink: str
    key_id: str | None
    since: datetime | None
    readable: bool
    pending: bool = False
    recorded: frozenset[str] = frozenset()
    known: bool = True
    history: bool = True


@dataclass(frozen=True)
class Intent:
    """A credential this state store set out to create, recorded (durably) before ``addPassword``.

    ``name`` is the exact display name it was about to give the credential (:func:`credential_name`),
    ``at`` when, ``reason`` the :class:`Reason` of the rotation, ``key_id`` the credential's once
    ``addPassword`` answered, or once a later pass found it beyond doubt (None until then: the answer may
    be lost); ``refused`` when ``addPassword`` answered that it created nothing. A managed credential is
    this store's own when one of these has its key id, or, its answer lost, when the name of one without
    a key id fits it alone (names have whole seconds: another store may name one alike; see
    :func:`service.policy.claims`). Any other managed credential no sink recorded was made by another host
    or state store, which may have handed it to a push sink's consumer.
    """

    name: str
    at: datetime
    reason: str
    key_id: str | None = None
    refused: bool = False


class Kind(StrEnum):
    """What an action does."""

    CREATE = "create"
    RESYNC = "resync"
    RETIRE = "retire"
    BLOCKED = "blocked"
    WAIT = "wait"  # creations and retirements waiting for a maintenance window: nothing is done, nothing failed


@dataclass(frozen=True)
class Action:
    """One step the apply phase will take, with its reason and a sentence for humans.

    ``after_rotation`` marks a retirement that must wait until the rotation planned in the same pass
    has verified the new secret and written it to every sink; when that rotation fails it is skipped
    (a later pass plans it again). Every retirement in a rotating pass is one, except those that must make
    room for the new credential under ``max_credentials``.

    ``supersedes`` (creations and re-syncs) names the credentials a push sink's consumer may hold without
    this store's receipt saying so (receipts lost, or another state store pushed): the push's receipt
    records them as handed out, so that they go as superseded after the grace period, never as orphans.

    ``window_overridden`` (a creation outside every maintenance window) says why it cannot wait for the next
    one; ``waits_until`` (a WAIT action) is when that window opens (see service/policy/window.py).
    """

    kind: Kind
    reason: Reason
    message: str
    key_id: str | None = None
    sink: str | None = None
    source: str | None = None
    after_rotation: bool = False
    supersedes: frozenset[str] = frozenset()
    window_overridden: str | None = None
    waits_until: datetime | None = None


@dataclass(frozen=True)
class Policy:
    """The rotation policy of one target (config `defaults` merged with the target's overrides)."""

    lifetime: timedelta = timedelta(days=90)
    renew_before: timedelta | None = None
    renew_before_ratio: float = 1 / 3
    grace_period: timedelta = timedelta(days=1)
    verify_timeout: timedelta = timedelta(minutes=5)
    in_flight_timeout: timedelta = timedelta(minutes=15)
    max_credentials: int = 4
    retire_unmanaged: bool = False
    marker: str = DEFAULT_MARKER
    windows: tuple[Window, ...] = ()  # none: a change may be made at any time
    window_margin: timedelta = timedelta(days=3)
    retire_on: str = "grace_period"  # or "usage": also wait for the sign-in report to show the switch
    usage_lag: timedelta = timedelta(hours=6)

    @property
    def on_usage(self) -> bool:
        """Superseded credentials wait for evidence that the consumers switched (``retire_on: usage``)."""
        return self.retire_on == "usage"


@dataclass(frozen=True)
class Usage:
    """What Entra's sign-in activity report says of one app's credentials (``retire_on: usage``).

    ``last_sign_in`` maps a key id to the last time a token was issued for it, as far as the report shows
    (it lags); a key id missing has no sign-in on record. ``gap`` says why the report gave no evidence (then
    ``last_sign_in`` is empty and the grace period alone decides), with ``detail`` and ``hint`` for the event.
    """

    last_sign_in: Mapping[str, datetime] = field(default_factory=dict)
    gap: EvidenceGap | None = None
    detail: str | None = None
    hint: str | None = None

    @property
    def available(self) -> bool:
        """The report was read and has data for the app."""
        return self.gap is None


@dataclass(frozen=True)
class MissingEvidence:
    """Why a superseded credential is kept under ``retire_on: usage``: what the sign-in report has not shown.

    ``key_id`` is the superseded credential, ``in_use`` what the sinks hold now, ``handed_out`` when the last
    sink took its credential, ``last_sign_in`` the report's last sign-in of each of them (None: none on
    record), ``missing`` the evidence that is missing, in words. ``lagging``: the report speaks against the
    switch (no sign-in with the new secret, or the old one still signing in), rather than only being too
    young to tell (``usage_lag`` since the handout has not run yet).
    """

    key_id: str
    in_use: tuple[str, ...]
    handed_out: datetime
    last_sign_in: Mapping[str, datetime | None]
    missing: str
    lagging: bool


@dataclass(frozen=True)
class Flags:
    """What the operator asked for on the command line for this pass."""

    force: bool = False
    revoke_previous: bool = False


NO_FLAGS = Flags()


class State(StrEnum):
    """What is becoming of one credential of an app: `status` shows it next to each one."""

    IN_USE = "in_use"  # a sink holds it (or was sent it and never confirmed: ``pending``)
    SUPERSEDED = "superseded"  # a sink recorded it once; it goes once every sink has held its successor a grace period
    ORPHAN = "orphan"  # this service created it and no sink ever recorded it: it goes after in_flight_timeout
    FOREIGN = "foreign"  # another host or state store created it: a push sink may hold it, so it is kept
    MAY_BE_HELD = "may_be_held"  # a push sink's holding is unknown (no receipt): it may hold this one, kept
    UNMANAGED = "unmanaged"  # someone else's (another display name): left alone


@dataclass(frozen=True)
class Standing:
    """One credential's :class:`State` with the dates that come with it, as the planner sees them.

    ``renew_at``: when a credential in use is due for renewal. ``retire_after``: when a superseded or orphan
    credential may go (None while that waits for a sink to hold its successor); ``due`` once it may.
    ``pending``: a push sent it and never confirmed receipt.
    """

    key_id: str
    state: State
    renew_at: datetime | None = None
    retire_after: datetime | None = None
    due: bool = False
    pending: bool = False
    last_sign_in: datetime | None = None  # the sign-in report's, with retire_on: usage (None: none or not read)
    missing: str | None = None  # the evidence a superseded credential waits for, with retire_on: usage


@dataclass(frozen=True)
class Plan:
    """The actions for one target, and the facts they were derived from (for `plan` and `status`)."""

    target: str
    actions: tuple[Action, ...]
    in_use: frozenset[str] = frozenset()
    renew_at: datetime | None = None
    holdings: tuple[Holding, ...] = field(default=())
    notes: tuple[str, ...] = ()  # facts an operator should know that are no action (an unknown holding)
    claims: tuple[Intent, ...] = ()  # lost answers found on the app: `run` records their key ids first
    standings: tuple[Standing, ...] = ()  # what is becoming of each credential of the app (for `status`)
    usage: Usage | None = None  # the sign-in report as gathered (retire_on: usage only)
    lagging: tuple[MissingEvidence, ...] = ()  # superseded credentials kept: their consumer shows no switch

    @property
    def healthy(self) -> bool:
        """Nothing to do now (what waits for a maintenance window is not done now)."""
        return all(a.kind is Kind.WAIT for a in self.actions)

    @property
    def waiting(self) -> Action | None:
        """The action that stands for what waits for a maintenance window, if anything does."""
        return next((a for a in self.actions if a.kind is Kind.WAIT), None)

    @property
    def evidence_gap(self) -> Usage | None:
        """With ``retire_on: usage``, the sign-in report when it gave no evidence and that matters: any gap but
        "no data", which matters only when a superseded secret waits on it (a new target has no sign-ins)."""
        usage = self.usage
        if usage is None or usage.gap is None:
            return None
        if usage.gap is EvidenceGap.NO_DATA and not any(s.state is State.SUPERSEDED for s in self.standings):
            return None
        return usage


# -- bootstrap: an app registration as an admin sees it ------------------------------------------


@dataclass(frozen=True)
class Permission:
    """One entry of an app's requiredResourceAccess: ``type`` is Role (application) or Scope (delegated)."""

    resource_app_id: str
    id: str
    type: str


@dataclass(frozen=True)
class Registration:
    """An app registration as bootstrap reads it."""

    object_id: str
    app_id: str
    display_name: str
    sign_in_audience: str
    redirect_uris: tuple[str, ...]
    permissions: tuple[Permission, ...]
    credentials: tuple[Credential, ...] = ()


@dataclass(frozen=True)
class Principal:
    """A service principal: the app's identity in the tenant, which holds the consented roles."""

    object_id: str
    app_id: str
