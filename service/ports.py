"""The narrow interfaces between the use cases (the rotation engine, bootstrap) and the outside world.

Each Protocol states its contract and its errors. Implementations live in ``service/adapters/`` (the
only modules that import an SDK) and ``service/sinks/``; the engine, bootstrap and the planner know
only these, and the nouns of service/model.py.

Errors: every method raises :class:`service.errors.RemoteError` (with ``reason`` and ``transient``) for
a remote failure, after the adapter's own bounded retries of transient ones;
:class:`service.errors.OutcomeUnknown`, a RemoteError, when a write may or may not have happened.
Reads never write. No error text carries a secret value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from service.errors import RemoteError
from service.model import App, Credential, Holding, Intent, Permission, Principal, Registration
from service.secret import Secret


class Clock(Protocol):
    """Where the engine, the runner and the daemon take the time from (tests and the emulator move it)."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary start that never go backwards: for how long something took or may take."""
        ...


class Directory(Protocol):
    """Microsoft Graph, for one tenant: the app registration whose secret is rotated."""

    async def read_app(self, client_id: str) -> App:
        """The app with this appId and its password credentials: one GET.

        Raises RemoteError(not_found) when no app has this appId, (permission_denied) when the caller
        may not read it.
        """
        ...

    async def read_apps(self, client_ids: Iterable[str]) -> Mapping[str, App | RemoteError]:
        """Many apps at once (Graph batches), by appId: each app, or the RemoteError that ``read_app`` would
        raise for it (same reason, status, code and hint). Raises nothing itself."""
        ...

    async def add_password(self, object_id: str, display_name: str, end: datetime) -> tuple[Credential, Secret]:
        """``addPassword``: the new credential and its secret text (returned only by this call).

        Never sent twice once Graph may have processed it (a second call would create a second
        credential): only a request that never left, or that Graph throttled, is tried again. Raises
        OutcomeUnknown when the request may have reached Graph but no answer came back,
        RemoteError(policy_violation) when the tenant's app management policy refuses the lifetime.
        """
        ...

    async def remove_password(self, object_id: str, key_id: str) -> None:
        """``removePassword``; a credential that is already gone counts as removed.

        Raises RemoteError(permission_denied) when the caller may not change the app.
        """
        ...

    async def password_lifetime_limit(self, object_id: str) -> timedelta | None:
        """The longest password lifetime the tenant's app management policies allow for this app.

        None when no policy limits it or the policies cannot be read (that permission is optional).
        """
        ...


class SignInReport(Protocol):
    """Entra's sign-in activity report for one tenant: Graph's (beta) ``reports/appCredentialSignInActivities``.

    Read only for a target with ``retire_on: usage``. The report lags behind the sign-ins by hours, exists in
    the global cloud only, and needs the application permission AuditLog.Read.All (or Directory.Read.All).
    """

    async def last_sign_ins(self, client_id: str) -> dict[str, datetime]:
        """Each credential (key id, lowercase) of the app with this appId and its last sign-in the report shows;
        {} when it shows none.

        Raises RemoteError(permission_denied) when the caller may not read the report, RemoteError with status
        400 or 404 where the report does not exist (a national cloud), RemoteError(transient=True) for
        throttling, 5xx and network trouble after the adapter's retries.
        """
        ...


class Verifier(Protocol):
    """Entra ID's token endpoint, asked with a given secret."""

    async def try_token(self, tenant_id: str, client_id: str, secret: Secret) -> None:
        """One client-credentials token request with a fresh credential object (no token cache).

        Raises RemoteError(verification_failed, transient=True) while the secret is rejected (it may
        not have replicated yet), RemoteError(transient=True) for network trouble.
        """
        ...


@dataclass(frozen=True)
class VaultVersion:
    """One version of a Key Vault secret, without its value."""

    version: str
    created: datetime | None
    expires_on: datetime | None
    enabled: bool
    tags: dict[str, str]


class NotListed(Exception):
    """The vault is not listed in this pass (too few of its secrets are wanted, the listing was refused, or
    the vault holds far more secrets than the pass reads): read the secret itself."""


class Vault(Protocol):
    """Azure Key Vault secrets, for one vault. Errors name the vault and the secret (never its value):
    RemoteError(permission_denied) when the caller may not use the secret, (not_found) for a vault or
    secret that is not there where one is needed, (sink_failed) for anything else the vault refuses."""

    async def current(self, name: str) -> VaultVersion | None:
        """The current version's properties of ``name`` (its tags, ``created``, enabled; ``version`` may be
        empty), or None when the vault has no such secret, from one listing of the vault shared by the whole
        pass. Raises NotListed when this pass does not list the vault; never RemoteError (a listing that
        fails is NotListed: reading the secret itself says what is wrong)."""
        ...

    async def list_versions(self, name: str) -> list[VaultVersion]:
        """Every version of the secret ``name`` (all pages, in no particular order: take "newest" from
        ``created``); [] when the secret does not exist."""
        ...

    async def read_latest(self, name: str) -> VaultVersion:
        """The current (latest) version's properties, as a consumer reading ``name`` gets it.

        RemoteError(not_found) when the secret does not exist.
        """
        ...

    async def read_value(self, name: str, version: str | None = None) -> Secret:
        """The value of one version (the latest when ``version`` is None), masked.

        RemoteError(not_found) when the secret or the version does not exist, (sink_failed) when it has no value.
        """
        ...

    async def write(self, name: str, value: Secret, expires_on: datetime | None, tags: dict[str, str]) -> VaultVersion:
        """A new version of ``name`` (created if need be) with this value, expiry and tags; the version written.

        Transient failures are retried (a repeated write only adds a version); a RemoteError after that may
        hide a version that was written: reading the secret back tells.
        """
        ...


class Pusher(Protocol):
    """An HTTPS endpoint that takes a secret (Dime.Scheduler's configuration endpoint, a webhook)."""

    async def push(self, fields: Mapping[str, object], secret: Secret, idempotency_key: str) -> None:
        """POST the JSON body (``fields`` plus the secret under its field name) once it is accepted.

        Success is any 2xx. 408/429/5xx are retried honouring Retry-After within a bounded time (the
        ``idempotency_key`` header lets the endpoint drop a repeat); anything else raises
        RemoteError(sink_failed, or permission_denied for 401/403) at once: the endpoint refused it. Raises
        OutcomeUnknown when the request was sent and no answer came back: the endpoint may have it.
        """
        ...


# How many intents a store keeps per target: one is needed only until its credential is recorded by a push
# or retired as an orphan (a pass or two), so this many cover any crash loop an operator would let run.
MAX_INTENTS = 50


@dataclass(frozen=True)
class Receipt:
    """What the last push to a sink did: the key id, whether the consumer confirmed it, since when.

    ``history`` keeps every key id ever pushed to this sink (newest last), so that a credential handed
    out once is known as superseded, not as an orphan.
    """

    key_id: str
    status: Literal["pending", "held"]
    since: datetime
    history: tuple[str, ...] = ()


class StateStore(Protocol):
    """Where push receipts and intents live (a directory, or a Kubernetes ConfigMap): per target, one
    document of receipts and one of intents (the credentials the engine set out to create).

    A target's document that cannot be read (truncated, not JSON, edited by hand, too large) raises
    :class:`service.errors.StateCorrupt` from every method that reads it (writes included), for that
    target only; the store never overwrites it. What it said is then unknown: plan as for a target whose
    receipts (or intents) are lost, and call ``set_aside`` before the first write. A store that cannot be
    used at all (a read-only volume, the API refusing the service account) raises ServiceError or
    RemoteError (permission_denied where that is why). Writes of two processes never lose each other's
    documents (file: one target's documents are written under its lock; ConfigMap: optimistic
    concurrency on the resourceVersion).

    tests/integration/test_state_store_contract.py runs one suite against both stores.
    """

    async def get(self, target: str, sink: str) -> Receipt | None:
        """The sink's receipt, or None if none was ever recorded. StateCorrupt: see the class."""
        ...

    async def put(self, target: str, sink: str, receipt: Receipt) -> None:
        """Record ``receipt`` as the sink's, leaving the target's other sinks' receipts as they are.

        Durable before it returns (file: write, fsync, rename; ConfigMap: the API server accepted it).
        StateCorrupt (nothing written): see the class.
        """
        ...

    async def intents(self, target: str) -> tuple[Intent, ...]:
        """The credentials the engine set out to create for ``target``, oldest first (at most the last
        ``MAX_INTENTS``); () if none was ever recorded (a fresh store, or one from before intents were
        kept). StateCorrupt: see the class."""
        ...

    async def add_intent(self, target: str, intent: Intent) -> None:
        """Record ``intent`` after the others (even one with the same name: each stands for one credential),
        or in place of the one with the same name and time (to add its key id), dropping the oldest beyond
        ``MAX_INTENTS``; durable before it returns, like ``put``. StateCorrupt (nothing written): see the class."""
        ...

    async def set_aside(self, target: str, now: datetime) -> str | None:
        """Move each of the target's documents that cannot be read out of the way, kept for a person
        (``<name>.corrupt-<UTC time>``); where they went, or None if none had to go. Afterwards the target
        has no receipts (or no intents) where those were, and readable documents are untouched."""
        ...

    def lock(self, target: str) -> AbstractAsyncContextManager[None]:
        """Held for the whole of a target's pass (``async with store.lock(target):``): while one pass holds
        it, another pass over the same target that asks for it waits (locks of different targets never
        wait for each other). Entering it may be cancelled while it waits.

        How far it reaches is the store's own, and stated by it: the file store's is an flock on the state
        directory, which every process using that directory on the host respects; the ConfigMap store's
        reaches only the passes of its own store object, one process. Beyond a lock's reach nothing
        excludes two passes over one target but the deployment (the CronJob's ``concurrencyPolicy:
        Forbid``, the daemon's single replica, shards that never share a target), and the rotation
        protocol is built to survive that too (DESIGN.md, invariant I6: two passes at once converge).
        """
        ...

    async def close(self) -> None:
        """Release what the store holds open (an HTTP session); the store is not used afterwards."""
        ...


class Sink(Protocol):
    """A consumer of the secret, as the engine sees it: read what it holds, give it a new secret."""

    @property
    def id(self) -> str:
        """Stable and unique within a target (e.g. ``keyvault:https://v.vault.azure.net/name``)."""
        ...

    @property
    def readable(self) -> bool:
        """Its secret can be read back, so other sinks can be re-synced from it."""
        ...

    async def read(self, app: App, *, history: bool = True) -> Holding:
        """What the sink holds now, given the app as gathered (to name the credential a secret belongs to).

        A sink that cannot be read back answers from its receipt: ``known`` False when it has none. Raises
        RemoteError when the sink (or the state store) cannot be asked, StateCorrupt when its receipts cannot
        be read: the engine takes that for an unknown holding. ``history=False``: only what it holds now is
        needed (the holding's ``recorded`` may then name just that, with ``history`` False), so the sink may
        answer from the pass's bulk reads (a vault listed once).
        """
        ...

    async def write(self, credential: Credential, secret: Secret, supersedes: frozenset[str] = frozenset()) -> None:
        """Give the sink ``credential``'s secret. ``supersedes``: key ids its consumer may hold without any
        record saying so (see :class:`service.model.Action`), which a sink with receipts records as handed
        out; a sink read back (Key Vault) has no use for it.

        What the engine relies on: a return means the consumer has the secret; OutcomeUnknown means it may
        have it (the engine then never takes the new credential back, and a sink with receipts leaves its
        receipt pending, so that a later pass re-sends or rotates); any other ServiceError means it does not
        have it (a sink with receipts keeps what it held before), and when no sink took the secret the engine
        removes the new credential at once.
        """
        ...

    async def read_secret(self, key_id: str) -> Secret:
        """The secret of ``key_id`` as this sink holds it, to re-send it to a lagging sink.

        Readable sinks only (others raise NotImplementedError); RemoteError when it cannot be read.
        """
        ...


class AppAdmin(Protocol):
    """Microsoft Graph for one tenant, as an admin who may create apps and grant consent (bootstrap).

    Every method raises :class:`service.errors.RemoteError` (``permission_denied`` when the sign-in lacks the
    privilege); writes are sent once and raise :class:`service.errors.OutcomeUnknown` when the answer was lost
    (a re-run finds what was made). Reads return None or an empty set for what does not exist.
    """

    async def app_by_client_id(self, client_id: str) -> Registration | None:
        """The app registration with this appId; None when the tenant has none."""
        ...

    async def apps_named(self, name: str) -> list[Registration]:
        """Every app registration whose display name is exactly ``name`` ([] when none is)."""
        ...

    async def create_app(
        self, name: str, sign_in_audience: str, redirect_uris: tuple[str, ...], permissions: tuple[Permission, ...]
    ) -> Registration:
        """A new app registration with this name, audience, web redirect URIs and requested permissions."""
        ...

    async def update_app(
        self, object_id: str, redirect_uris: tuple[str, ...] | None, permissions: tuple[Permission, ...] | None
    ) -> None:
        """PATCH the given properties (whole lists); None leaves a property alone."""
        ...

    async def service_principal(self, app_id: str) -> Principal | None:
        """The service principal of the app with this appId in the tenant; None when it has none."""
        ...

    async def create_service_principal(self, app_id: str) -> Principal:
        """A service principal for the app with this appId."""
        ...

    async def granted_roles(self, principal_id: str, resource_id: str) -> frozenset[str]:
        """The app role ids (lowercase) ``principal_id`` holds on the resource service principal."""
        ...

    async def grant_role(self, principal_id: str, resource_id: str, role_id: str) -> None:
        """Admin consent for one application permission; one that already exists counts as granted."""
        ...

    async def owners(self, object_id: str) -> frozenset[str]:
        """Object ids (lowercase) of the app's owners."""
        ...

    async def add_owner(self, object_id: str, principal_id: str) -> None:
        """Make ``principal_id`` an owner of the app; one that already is counts as added."""
        ...
