"""The narrow interfaces between the rotation engine and the outside world.

Each Protocol states its contract and its errors. Implementations live in ``service/adapters/`` (the
only modules that import an SDK); the engine and the planner know only these.

Errors: every method raises :class:`service.errors.RemoteError` (with ``reason`` and ``transient``) for
a remote failure, after the adapter's own bounded retries of transient ones. Reads never write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from service.errors import RemoteError
from service.model import App, Credential, Holding, Intent
from service.secret import Secret


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
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

        Never retried: a second call would create a second credential. Raises OutcomeUnknown when the
        request may have reached Graph but no answer came back, RemoteError(policy_violation) when the
        tenant's app management policy refuses the lifetime.
        """
        ...

    async def remove_password(self, object_id: str, key_id: str) -> None:
        """``removePassword``; a credential that is already gone counts as removed."""
        ...

    async def password_lifetime_limit(self, object_id: str) -> timedelta | None:
        """The longest password lifetime the tenant's app management policies allow for this app.

        None when no policy limits it or the policies cannot be read (that permission is optional).
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
    """Azure Key Vault secrets, for one vault."""

    async def current(self, name: str) -> VaultVersion | None:
        """The current version's properties of ``name`` (its tags, ``created``, enabled; ``version`` may be
        empty), or None when the vault has no such secret, from one listing of the vault shared by the whole
        pass. Raises NotListed when this pass does not list the vault; never RemoteError (a listing that
        fails is NotListed: reading the secret itself says what is wrong)."""
        ...

    async def list_versions(self, name: str) -> list[VaultVersion]:
        """Every version of the secret ``name`` (all pages); [] when the secret does not exist."""
        ...

    async def read_latest(self, name: str) -> VaultVersion:
        """The current (latest) version's properties, as a consumer reading ``name`` gets it."""
        ...

    async def read_value(self, name: str, version: str | None = None) -> Secret:
        """The value of one version (the latest when ``version`` is None)."""
        ...

    async def write(self, name: str, value: Secret, expires_on: datetime | None, tags: dict[str, str]) -> VaultVersion:
        """A new version of ``name`` with this value, expiry and tags."""
        ...


class Pusher(Protocol):
    """An HTTPS endpoint that takes a secret (Dime.Scheduler's configuration endpoint, a webhook)."""

    async def push(self, fields: Mapping[str, object], secret: Secret, idempotency_key: str) -> None:
        """POST the JSON body (``fields`` plus the secret under its field name) once it is accepted.

        Success is any 2xx. 408/429/5xx are retried honouring Retry-After within a bounded time;
        anything else raises RemoteError(sink_failed) at once.
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
    receipts (or intents) are lost, and call ``set_aside`` before the first write.
    """

    async def get(self, target: str, sink: str) -> Receipt | None:
        """The sink's receipt, or None if none was ever recorded. StateCorrupt: see the class."""
        ...

    async def put(self, target: str, sink: str, receipt: Receipt) -> None:
        """Durable before it returns (file: write, fsync, rename). StateCorrupt: see the class."""
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
        """Held for the whole of a target's pass, so that two passes never interleave on one target."""
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
        """What the sink holds now and since when. ``history=False``: only what it holds now is needed (the
        holding's ``recorded`` may then name just that, with ``history`` False), so the sink may answer from
        the pass's bulk reads (a vault listed once). Raises RemoteError, or StateCorrupt (receipts)."""
        ...

    async def write(self, credential: Credential, secret: Secret, supersedes: frozenset[str] = frozenset()) -> None:
        """Give the sink ``credential``'s secret. ``supersedes``: key ids its consumer may hold without any
        record saying so (see :class:`service.model.Action`), which a sink with receipts records as handed
        out; a sink read back (Key Vault) has no use for it."""
        ...

    async def read_secret(self, key_id: str) -> Secret:
        """The secret of ``key_id`` as this sink holds it (readable sinks only)."""
        ...
