"""`secret-rotator bootstrap`: create or complete the Dime.Scheduler app registration and hand it to rotation.

The seed's setup script as one idempotent command: the single-tenant app (web redirect URI, Microsoft
Graph application permissions requested), its service principal, admin consent for each permission,
the rotator as an owner, and a first client secret named with the marker, so the rotator manages it
from day one. :func:`gather` reads what the tenant already has, :func:`plan` decides each step (pure)
and :func:`apply` is the only code that writes: a re-run finds the app and does only what is missing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from service.bootstrap_defaults import DEFAULT_NAME, DEFAULT_REDIRECT_URI
from service.durations import format_duration
from service.errors import ConfigError, FailureReason, RemoteError, ServiceError
from service.model import DEFAULT_MARKER, App, Credential, Permission, Principal, Registration, credential_name
from service.policy import lifetime_under, newest
from service.ports import AppAdmin, Directory, Vault
from service.secret import Secret
from service.sinks.keyvault import VaultSink

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
# The Exchange connector's Microsoft Graph application permissions (app role ids, DESIGN.md "Bootstrap").
GRAPH_ROLES: dict[str, str] = {
    "Calendars.ReadWrite": "ef54d2bf-783f-4e0f-bca1-3210c0444d99",
    "MailboxSettings.ReadWrite": "6931bccd-447a-43d1-b442-00a195474933",
    "User.Read.All": "df021288-bdef-4463-88db-98f22de89214",
}
DEFAULT_LIFETIME = timedelta(days=90)
SIGN_IN_AUDIENCE = "AzureADMyOrg"
APPLICATION_PERMISSION = "Role"

# What each kind of step needs; named in the error when the admin's sign-in lacks it.
NEEDS_READ = (
    "Microsoft Graph application permission Application.Read.All or Application.ReadWrite.All, or, signed in "
    "as a user, a role that reads app registrations (Cloud Application Administrator, Application Administrator)"
)
NEEDS_WRITE = (
    "Microsoft Graph application permission Application.ReadWrite.All, or, signed in as a user, the Cloud "
    "Application Administrator or Application Administrator role"
)
NEEDS_CONSENT = (
    "Microsoft Graph application permission AppRoleAssignment.ReadWrite.All (with Application.ReadWrite.All), or, "
    "signed in as a user, the Global Administrator or Privileged Role Administrator role (an application "
    "administrator may not consent to Microsoft Graph application permissions)"
)
NEEDS_VAULT = (
    "the Key Vault Secrets Officer role for whoever runs bootstrap, at the scope of the secret --store names once "
    "it exists (a role cannot be assigned on a secret that does not exist yet: to create it, at the vault's "
    "scope), or an access policy with secret get, list and set"
)
NEEDS_SIGN_IN = (
    "an administrator's sign-in: `az login --tenant TENANT` (DefaultAzureCredential), --device-code, or a "
    "credential: block in --config"
)


# -- what is asked, what is there -------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    """``--store keyvault://VAULT/NAME``: where the first secret goes instead of the terminal."""

    vault_url: str
    secret_name: str
    verify_challenge_resource: bool = True

    def __str__(self) -> str:
        return f"keyvault://{self.vault_url.removeprefix('https://')}/{self.secret_name}"


@dataclass(frozen=True)
class Request:
    """What the admin asked for on the command line."""

    tenant_id: str
    name: str = DEFAULT_NAME
    redirect_uri: str = DEFAULT_REDIRECT_URI
    client_id: str | None = None
    owner: str | None = None
    lifetime: timedelta = DEFAULT_LIFETIME
    marker: str = DEFAULT_MARKER
    new_secret: bool = False
    store: Store | None = None


WANTED = tuple(Permission(GRAPH_APP_ID, role_id, APPLICATION_PERMISSION) for role_id in GRAPH_ROLES.values())


@dataclass(frozen=True)
class Facts:
    """What the tenant (and the vault, with --store) holds before bootstrap writes anything."""

    app: Registration | None
    principal: Principal | None
    graph: Principal
    granted: frozenset[str] = frozenset()
    owners: frozenset[str] = frozenset()
    vault_key_id: str | None = None  # the credential the --store secret holds now
    vault_foreign: bool = False  # the --store secret exists and holds something that is not this app's


def _as_app(registration: Registration | None) -> App:
    if registration is None:
        return App(object_id="", app_id="", display_name="", credentials=())
    return App(registration.object_id, registration.app_id, registration.display_name, registration.credentials)


async def _find_app(request: Request, admin: AppAdmin) -> Registration | None:
    if request.client_id:
        app = await admin.app_by_client_id(request.client_id)
        if app is None:
            raise ConfigError(
                f"--client-id {request.client_id}: no app registration with this client id in tenant "
                f"{request.tenant_id}",
                hint="check the Application (client) ID on the app's Overview page, or leave --client-id out to "
                "find or create the app by --name",
            )
        return app
    named = await admin.apps_named(request.name)
    if len(named) > 1:
        ids = ", ".join(a.app_id for a in named)
        raise ConfigError(
            f"{len(named)} app registrations are named {request.name!r} in tenant {request.tenant_id} "
            f"(client ids {ids})",
            hint="pass --client-id with the one to complete",
        )
    return named[0] if named else None


async def gather(request: Request, admin: AppAdmin, vault: Vault | None) -> Facts:
    """Reads only. Raises ConfigError (an ambiguous or unknown app), RemoteError (Graph, Key Vault)."""
    app = await _find_app(request, admin)
    graph = await admin.service_principal(GRAPH_APP_ID)
    if graph is None:
        raise RemoteError(
            "the tenant has no Microsoft Graph service principal",
            service="graph",
            target=f"tenant {request.tenant_id}",
            reason=FailureReason.NOT_FOUND,
            transient=False,
            hint="check --tenant-id: every Entra tenant has Microsoft Graph's service principal",
        )
    principal = await admin.service_principal(app.app_id) if app else None
    granted = await admin.granted_roles(principal.object_id, graph.object_id) if principal else frozenset()
    owners = await admin.owners(app.object_id) if app else frozenset()
    vault_key_id, foreign = None, False
    if request.store is not None and vault is not None:
        # Read before anything is created, so a vault the admin cannot write to stops bootstrap early.
        sink = VaultSink(
            vault, request.store.vault_url, request.store.secret_name, app.app_id if app else "", request.marker
        )
        holding = await sink.read(_as_app(app))
        vault_key_id = holding.key_id
        foreign = holding.key_id is None and holding.since is not None
    return Facts(app, principal, graph, granted, owners, vault_key_id, foreign)


# -- deciding --------------------------------------------------------------------------------------


class StepKind(StrEnum):
    """What a bootstrap step makes; its value is how the step is named in output."""

    APPLICATION = "application"
    APP_SETTINGS = "app settings"
    SERVICE_PRINCIPAL = "service principal"
    CONSENT = "admin consent"
    OWNER = "owner"
    CLIENT_CREDENTIAL = "client secret"


class Change(StrEnum):
    """What a step would change."""

    CREATE = "create"
    UPDATE = "update"
    NONE = "none"  # already as asked
    SKIP = "skip"  # not asked for


@dataclass(frozen=True)
class Step:
    """One planned step: what it makes, whether it changes anything, in words."""

    kind: StepKind
    change: Change
    message: str
    role: str | None = None  # CONSENT: the permission's name

    @property
    def title(self) -> str:
        """The step's name in output (``admin consent: User.Read.All``)."""
        return f"{self.kind.value}: {self.role}" if self.role else self.kind.value


def _missing_settings(
    request: Request, app: Registration
) -> tuple[tuple[str, ...] | None, tuple[Permission, ...] | None]:
    """The whole lists to PATCH (existing entries kept, missing ones appended), or None where nothing lacks."""
    uris = None if request.redirect_uri in app.redirect_uris else (*app.redirect_uris, request.redirect_uri)
    have = {(p.resource_app_id.lower(), p.id.lower(), p.type) for p in app.permissions}
    lacking = tuple(p for p in WANTED if (p.resource_app_id, p.id, p.type) not in have)
    return uris, ((*app.permissions, *lacking) if lacking else None)


def _role_names(permissions: Sequence[Permission]) -> str:
    names = {role_id: name for name, role_id in GRAPH_ROLES.items()}
    return ", ".join(names.get(p.id, p.id) for p in permissions)


def existing_secret(app: Registration | None, marker: str, vault_key_id: str | None) -> Credential | None:
    """The marker-named secret already on the app: the one the --store secret holds, else the newest."""
    managed = [c for c in (app.credentials if app else ()) if c.managed(marker)]
    return newest([c for c in managed if c.key_id == vault_key_id] or managed)


def _secret_step(request: Request, facts: Facts) -> Step:
    if request.new_secret:
        return Step(StepKind.CLIENT_CREDENTIAL, Change.CREATE, "--new-secret: add a secret named with the marker")
    existing = existing_secret(facts.app, request.marker, facts.vault_key_id)
    if existing is None:
        where = f"store it in {request.store}" if request.store else "show it once"
        return Step(
            StepKind.CLIENT_CREDENTIAL, Change.CREATE, f"add a secret named with the marker {request.marker!r}; {where}"
        )
    text = f"{existing.display_name!r}, key id {existing.key_id}; not shown again"
    if request.store is not None:
        if existing.key_id == facts.vault_key_id:
            text += f"; held by {request.store}"
        else:
            text += (
                f"; {request.store} does not hold it: `secret-rotator run` stores a fresh one "
                "(or re-run with --new-secret)"
            )
    return Step(StepKind.CLIENT_CREDENTIAL, Change.NONE, text)


def plan(request: Request, facts: Facts) -> list[Step]:
    """The steps in the order they must be taken, each saying what it would change. Pure.

    Raises ConfigError when --store names a Key Vault secret that holds something not of this app:
    writing a new version would take it from whoever uses it.
    """
    if request.store is not None and facts.vault_foreign:
        raise ConfigError(
            f"--store {request.store}: the vault secret exists and holds a secret that is not one of this app's",
            hint="choose another secret name, or delete that secret if nothing uses it",
        )
    app = facts.app
    steps: list[Step] = []
    if app is None:
        steps.append(
            Step(
                StepKind.APPLICATION,
                Change.CREATE,
                f"create {request.name!r}: single tenant ({SIGN_IN_AUDIENCE}), "
                f"web redirect URI {request.redirect_uri}, "
                f"Microsoft Graph application permissions {', '.join(GRAPH_ROLES)}",
            )
        )
    else:
        note = ""
        if app.sign_in_audience != SIGN_IN_AUDIENCE:
            note = f"; its sign-in audience is {app.sign_in_audience}, not {SIGN_IN_AUDIENCE} (left as it is)"
        steps.append(Step(StepKind.APPLICATION, Change.NONE, f"{app.display_name!r}, client id {app.app_id}{note}"))
        uris, permissions = _missing_settings(request, app)
        if uris is None and permissions is None:
            steps.append(
                Step(
                    StepKind.APP_SETTINGS,
                    Change.NONE,
                    "redirect URI and Microsoft Graph application permissions are requested",
                )
            )
        else:
            parts = []
            if uris is not None:
                parts.append(f"add web redirect URI {request.redirect_uri}")
            if permissions is not None:
                added = [p for p in permissions if p not in app.permissions]
                parts.append(f"request {_role_names(added)}")
            steps.append(Step(StepKind.APP_SETTINGS, Change.UPDATE, "; ".join(parts) + " (nothing removed)"))
    if facts.principal is None:
        steps.append(Step(StepKind.SERVICE_PRINCIPAL, Change.CREATE, "create the app's service principal"))
    else:
        steps.append(Step(StepKind.SERVICE_PRINCIPAL, Change.NONE, f"object id {facts.principal.object_id}"))
    for name, role_id in GRAPH_ROLES.items():
        if role_id in facts.granted:
            steps.append(Step(StepKind.CONSENT, Change.NONE, "granted", role=name))
        else:
            steps.append(Step(StepKind.CONSENT, Change.CREATE, "grant (application permission)", role=name))
    if request.owner is None:
        steps.append(
            Step(
                StepKind.OWNER,
                Change.SKIP,
                "no --owner: the rotator then needs Application.ReadWrite.All instead of .OwnedBy",
            )
        )
    elif request.owner.lower() in facts.owners:
        steps.append(Step(StepKind.OWNER, Change.NONE, f"{request.owner} owns the app"))
    else:
        steps.append(Step(StepKind.OWNER, Change.CREATE, f"add {request.owner} as an owner"))
    steps.append(_secret_step(request, facts))
    return steps


# -- acting ----------------------------------------------------------------------------------------


class Status(StrEnum):
    """How a step ended (or, with --dry-run, would end)."""

    CREATED = "created"
    UPDATED = "updated"
    PRESENT = "present"
    SKIPPED = "skipped"
    WOULD_CREATE = "would create"
    WOULD_UPDATE = "would update"
    FAILED = "failed"
    NOT_ATTEMPTED = "not attempted"


@dataclass(frozen=True)
class StepResult:
    """One step as it ended, with what it made or why it failed."""

    step: Step
    status: Status
    detail: str


@dataclass(frozen=True)
class IssuedSecret:
    """The secret this run created: its value only while it is to be shown once (never when stored)."""

    credential: Credential
    value: Secret | None
    stored: Store | None


class StepFailed(ServiceError):
    """A step (or, with ``step`` None, the reads before any) failed: which, why, what it needs, what was made."""

    def __init__(self, step: Step | None, error: ServiceError, made: list[str] | None = None) -> None:
        self.step = step
        self.cause = error
        self.made = list(made or ())
        kind = step.kind if step else None
        self.needs = needs(error, kind) if error.reason is FailureReason.PERMISSION_DENIED else None
        hint = error.hint
        if self.needs and self.needs is not NEEDS_SIGN_IN:
            hint = (
                "sign in with that privilege (or ask an administrator who has it) and run the same command "
                "again: it completes what is missing"
            )
        what = step.title if step else "reading what the tenant has"
        super().__init__(f"{what} failed: {error}", reason=error.reason, hint=hint)


def needs(error: ServiceError, kind: StepKind | None) -> str:
    """The privilege a refused request needs; ``kind`` None for the reads before any step."""
    service = error.service if isinstance(error, RemoteError) else ""
    if service == "keyvault":
        return NEEDS_VAULT
    if service == "entra":
        return NEEDS_SIGN_IN
    if kind is None:
        return NEEDS_READ
    return NEEDS_CONSENT if kind is StepKind.CONSENT else NEEDS_WRITE


@dataclass
class Outcome:
    """What a bootstrap run did: each step's result, the app and principal as they are now, the secret it
    issued, the error that stopped it.
    """

    request: Request
    results: list[StepResult]
    app: Registration | None
    principal: Principal | None = None
    issued: IssuedSecret | None = None
    error: ServiceError | None = None
    dry_run: bool = False
    vault_key_id: str | None = None  # the credential the --store secret held before this run

    @property
    def existing_secret(self) -> Credential | None:
        """The marker-named secret already on the app (the one the vault holds, else the newest), when this
        run made none."""
        if self.issued is not None:
            return None
        return existing_secret(self.app, self.request.marker, self.vault_key_id)

    @property
    def stored_in(self) -> Store | None:
        """Where the secret this outcome reports is held: stored by this run, or found there."""
        if self.issued is not None:
            return self.issued.stored
        existing = self.existing_secret
        if existing is not None and existing.key_id == self.vault_key_id:
            return self.request.store
        return None


def preview(request: Request, facts: Facts, steps: list[Step]) -> Outcome:
    """What --dry-run shows: each step's result as it would be."""
    words = {
        Change.CREATE: Status.WOULD_CREATE,
        Change.UPDATE: Status.WOULD_UPDATE,
        Change.NONE: Status.PRESENT,
        Change.SKIP: Status.SKIPPED,
    }
    results = [StepResult(s, words[s.change], s.message) for s in steps]
    return Outcome(request, results, facts.app, facts.principal, dry_run=True, vault_key_id=facts.vault_key_id)


class _Applier:
    """Runs the steps in order; the first failure stops the run and is reported with what was made."""

    def __init__(
        self, request: Request, facts: Facts, admin: AppAdmin, directory: Directory, vault: Vault | None, now: datetime
    ) -> None:
        self.request = request
        self.facts = facts
        self.admin = admin
        self.directory = directory
        self.vault = vault
        self.now = now
        self.app = facts.app
        self.principal = facts.principal
        self.issued: IssuedSecret | None = None

    async def run(self, step: Step) -> tuple[Status, str]:
        if step.change is Change.NONE:
            return Status.PRESENT, step.message
        if step.change is Change.SKIP:
            return Status.SKIPPED, step.message
        handler = {
            StepKind.APPLICATION: self._application,
            StepKind.APP_SETTINGS: self._settings,
            StepKind.SERVICE_PRINCIPAL: self._principal,
            StepKind.CONSENT: self._consent,
            StepKind.OWNER: self._owner,
            StepKind.CLIENT_CREDENTIAL: self._secret,
        }[step.kind]
        detail = await handler(step)
        return (Status.UPDATED if step.change is Change.UPDATE else Status.CREATED), detail

    def _app(self) -> Registration:
        assert self.app is not None, "the application step runs first"
        return self.app

    async def _application(self, step: Step) -> str:
        self.app = await self.admin.create_app(
            self.request.name, SIGN_IN_AUDIENCE, (self.request.redirect_uri,), WANTED
        )
        return f"{self.app.display_name!r}, client id {self.app.app_id}, object id {self.app.object_id}"

    async def _settings(self, step: Step) -> str:
        uris, permissions = _missing_settings(self.request, self._app())
        await self.admin.update_app(self._app().object_id, uris, permissions)
        return step.message

    async def _principal(self, step: Step) -> str:
        self.principal = await self.admin.create_service_principal(self._app().app_id)
        return f"object id {self.principal.object_id}"

    async def _consent(self, step: Step) -> str:
        assert self.principal is not None, "the service principal step runs first"
        assert step.role is not None
        await self.admin.grant_role(self.principal.object_id, self.facts.graph.object_id, GRAPH_ROLES[step.role])
        return "granted (admin consent)"

    async def _owner(self, step: Step) -> str:
        assert self.request.owner is not None
        await self.admin.add_owner(self._app().object_id, self.request.owner)
        return f"{self.request.owner} owns the app"

    async def _secret(self, step: Step) -> str:
        app = self._app()
        lifetime, capped = self.request.lifetime, ""
        limit = await self.directory.password_lifetime_limit(app.object_id)
        if limit is not None and limit < lifetime:
            lifetime = lifetime_under(limit)
            capped = f" (capped by the tenant's app management policy to {format_duration(limit)})"
        name = credential_name(self.request.marker, self.now)
        credential, secret = await self.directory.add_password(app.object_id, name, self.now + lifetime)
        end = f"{credential.end:%Y-%m-%d}" if credential.end else "?"
        detail = f"{name!r}, key id {credential.key_id}, expires {end}{capped}"
        store = self.request.store
        if store is None or self.vault is None:
            self.issued = IssuedSecret(credential, secret, None)
            return detail + "; shown once below"
        sink = VaultSink(self.vault, store.vault_url, store.secret_name, app.app_id, self.request.marker)
        try:
            await sink.write(credential, secret)
        except RemoteError as error:
            raise await self._take_back(credential, error) from None
        self.issued = IssuedSecret(credential, None, store)
        return detail + f"; stored in {store}"

    async def _take_back(self, credential: Credential, error: RemoteError) -> RemoteError:
        """The vault refused the secret: nobody has it, so remove it rather than leave an orphan."""
        try:
            await self.directory.remove_password(self._app().object_id, credential.key_id)
            note = "the new secret was removed again (nobody has it); a re-run creates and stores another"
        except RemoteError:
            note = f"the new secret {credential.key_id} could not be removed again: the rotator removes it as an orphan"
        return RemoteError(
            f"{error.message}; {note}",
            service=error.service,
            target=error.target,
            reason=error.reason,
            transient=error.transient,
            status=error.status,
            code=error.code,
            hint=error.hint,
        )

    def made(self, results: list[StepResult]) -> list[str]:
        made = []
        for r in results:
            if r.status in (Status.CREATED, Status.UPDATED):
                made.append(f"{r.step.title} ({r.detail})")
        return made


async def apply(
    request: Request,
    facts: Facts,
    steps: list[Step],
    *,
    admin: AppAdmin,
    directory: Directory,
    vault: Vault | None,
    now: datetime,
) -> Outcome:
    """Take the steps in order. The first failure stops the run: later steps depend on earlier ones."""
    applier = _Applier(request, facts, admin, directory, vault, now)
    results: list[StepResult] = []
    error: ServiceError | None = None
    for step in steps:
        if error is not None:
            results.append(StepResult(step, Status.NOT_ATTEMPTED, step.message))
            continue
        try:
            status, detail = await applier.run(step)
        except ServiceError as failure:
            error = StepFailed(step, failure, applier.made(results))
            results.append(StepResult(step, Status.FAILED, str(failure)))
            continue
        results.append(StepResult(step, status, detail))
    app = applier.app
    if app is not None and applier.issued is not None:
        app = Registration(
            app.object_id,
            app.app_id,
            app.display_name,
            app.sign_in_audience,
            app.redirect_uris,
            app.permissions,
            (*app.credentials, applier.issued.credential),
        )
    return Outcome(request, results, app, applier.principal, applier.issued, error, vault_key_id=facts.vault_key_id)


# -- handing over to rotation ----------------------------------------------------------------------


def target_name(app_name: str) -> str:
    """A config target name from the app's display name (``Dime.Scheduler`` -> ``dime.scheduler``)."""
    name = re.sub(r"[^a-z0-9._-]+", "-", app_name.lower()).strip("-._")[:63].strip("-._")
    return name or "app"


def config_snippet(outcome: Outcome) -> dict[str, Any] | None:
    """The ``targets:`` entry that hands the app to rotation (None while the app does not exist yet)."""
    if outcome.app is None:
        return None
    request = outcome.request
    target: dict[str, Any] = {
        "name": target_name(outcome.app.display_name or request.name),
        "tenant_id": request.tenant_id,
        "client_id": outcome.app.app_id,
        "sinks": [],
    }
    if request.store is not None:
        sink: dict[str, Any] = {
            "type": "keyvault",
            "vault_url": request.store.vault_url,
            "secret_name": request.store.secret_name,
        }
        if not request.store.verify_challenge_resource:
            sink["verify_challenge_resource"] = False
        target["sinks"].append(sink)
    return {"targets": [target]}
