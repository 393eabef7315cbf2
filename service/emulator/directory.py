"""The emulated directory: tenants, app registrations, service principals, role assignments, users.

This is the one in-memory model that the token endpoint, Graph and the push receiver all read, so a
secret added through Graph is the same secret the token endpoint checks. Every public method takes the
lock: seeding happens on the test's thread while requests are served on the emulator's event loop.
"""

from __future__ import annotations

import hmac
import secrets
import string
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, TypeVar

from service.emulator.clock import Clock
from service.emulator.sign_ins import SignInLog

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_RESOURCE = "https://graph.microsoft.com"
KEY_VAULT_APP_ID = "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"
KEY_VAULT_RESOURCE = "https://vault.azure.net"
# The Microsoft tenant that owns first-party apps such as Microsoft Graph.
MICROSOFT_TENANT_ID = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"

# Microsoft Graph application permissions (app roles) with Microsoft's real ids.
GRAPH_APP_ROLES: dict[str, str] = {
    "Application.ReadWrite.All": "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
    "Application.ReadWrite.OwnedBy": "18a4783c-866b-4cc7-a460-3d5e5662c884",
    "Application.Read.All": "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
    "AppRoleAssignment.ReadWrite.All": "06b708a9-e830-4db3-a914-8e69da51d44f",
    "Calendars.ReadWrite": "ef54d2bf-783f-4e0f-bca1-3210c0444d99",
    "MailboxSettings.ReadWrite": "6931bccd-447a-43d1-b442-00a195474933",
    "User.Read.All": "df021288-bdef-4463-88db-98f22de89214",
    "Policy.Read.All": "246dd0d5-5bd0-4def-940b-0421030a5b68",
    "Policy.Read.ApplicationConfiguration": "37730810-e9ba-4e46-b07e-8ca78d182097",
    "Directory.Read.All": "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
    "AuditLog.Read.All": "b0afded3-3588-46d8-8b3d-9842eff778da",
}

# Directory role template ids (the `wids` claim of a delegated token).
DIRECTORY_ROLES: dict[str, str] = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "Application Administrator": "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
    "Cloud Application Administrator": "158c047a-c907-4556-b7ef-446551a6b5f7",
    "Privileged Role Administrator": "e8611ab8-c189-46e8-94e1-60213ab1f814",
    "Global Reader": "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
}

# Entra's generated client secrets: 40 characters from letters, digits and `_-.~`, where the 4th to 6th
# characters carry a format marker such as "8Q~".
SECRET_ALPHABET = string.ascii_letters + string.digits + "_-.~"
SECRET_LENGTH = 40
DEFAULT_PASSWORD_LIFETIME = timedelta(days=730)

# Every secret text any emulator in this process generated or was seeded with: the canary tests look
# for in logs and outputs. Process-wide on purpose, so a secret from one emulator instance is caught in
# another test's output too.
_issued_lock = threading.Lock()
_issued: set[str] = set()


def register_issued(secret: str) -> None:
    with _issued_lock:
        _issued.add(secret)


def issued_secrets() -> set[str]:
    with _issued_lock:
        return set(_issued)


# Every access token any emulator in this process issued: credentials too, for as long as they live, so
# the canary looks for them as well.
_issued_tokens: set[str] = set()


def register_issued_token(token: str) -> None:
    with _issued_lock:
        _issued_tokens.add(token)


def issued_tokens() -> set[str]:
    with _issued_lock:
        return set(_issued_tokens)


def generate_secret() -> str:
    head = "".join(secrets.choice(SECRET_ALPHABET) for _ in range(3))
    tail = "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LENGTH - 6))
    secret = f"{head}8Q~{tail}"
    register_issued(secret)
    return secret


def new_id() -> str:
    return str(uuid.uuid4())


class DirectoryError(Exception):
    """A request the directory refuses; `code` and `message` are what Graph would answer."""

    status = 400

    def __init__(
        self, code: str, message: str, *, details: list[dict[str, Any]] | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.code = code
        self.message = message
        self.details = details


class NotFound(DirectoryError):
    status = 404

    def __init__(self, resource_id: str) -> None:
        super().__init__(
            "Request_ResourceNotFound",
            f"Resource '{resource_id}' does not exist or one of its queried reference-property objects "
            "are not present.",
        )


class Conflict(DirectoryError):
    status = 409


@dataclass
class PasswordRecord:
    """One passwordCredential; the secret text is private to the directory."""

    key_id: str
    display_name: str | None
    hint: str
    start: datetime
    end: datetime
    created_at: datetime
    # Entra replicates a new secret for a while before the token endpoint accepts it.
    usable_from: datetime
    usable: bool = True
    _secret: str = field(default="", repr=False)

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(self._secret.encode(), secret.encode())


@dataclass(frozen=True)
class FederatedCredential:
    id: str
    name: str
    issuer: str
    subject: str
    audiences: tuple[str, ...]


@dataclass
class AppRecord:
    object_id: str
    app_id: str
    display_name: str
    tenant_id: str
    created_at: datetime
    sign_in_audience: str = "AzureADMyOrg"
    description: str | None = None
    redirect_uris: list[str] = field(default_factory=list)
    required_resource_access: list[dict[str, Any]] = field(default_factory=list)
    identifier_uris: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    passwords: list[PasswordRecord] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)
    federated: list[FederatedCredential] = field(default_factory=list)


@dataclass
class SpRecord:
    object_id: str
    app_id: str
    display_name: str
    tenant_id: str
    app_owner_organization_id: str
    app_roles: list[dict[str, Any]] = field(default_factory=list)
    created_at: datetime | None = None


@dataclass(frozen=True)
class AppRoleAssignment:
    id: str
    principal_id: str
    principal_type: str
    principal_display_name: str
    resource_id: str
    resource_display_name: str
    app_role_id: str
    created_at: datetime


@dataclass
class UserRecord:
    object_id: str
    upn: str
    display_name: str
    role_ids: tuple[str, ...]


@dataclass(frozen=True)
class Identity:
    """A seeded rotator identity: what a client secret credential needs, plus its object ids."""

    tenant_id: str
    client_id: str
    secret: str = field(repr=False)
    object_id: str
    app_object_id: str


@dataclass
class Tenant:
    tenant_id: str
    domain: str
    apps: dict[str, AppRecord] = field(default_factory=dict)
    sps: dict[str, SpRecord] = field(default_factory=dict)
    assignments: list[AppRoleAssignment] = field(default_factory=list)
    users: dict[str, UserRecord] = field(default_factory=dict)
    # Who approves a device code in this tenant; None: the first user added.
    device_sign_in_user: str | None = None
    password_max_lifetime: timedelta | None = None
    app_password_max_lifetime: dict[str, timedelta] = field(default_factory=dict)
    policy_id: str = field(default_factory=new_id)
    policy_applies_after: str = "2019-01-01T00:00:00Z"
    # appId -> record, for lookups in a tenant of thousands of apps; checked on every use (see _by_app_id).
    app_index: dict[str, AppRecord] = field(default_factory=dict, repr=False, compare=False)
    sp_index: dict[str, SpRecord] = field(default_factory=dict, repr=False, compare=False)


_Record = TypeVar("_Record", AppRecord, SpRecord)


def _by_app_id(records: dict[str, _Record], index: dict[str, _Record], app_id: str) -> _Record | None:
    """The first record (in the order they were added) with this appId, as a scan of ``records`` finds it.

    Through ``index``, which any code adding or deleting records may leave stale: a hit counts only while
    the record is still in ``records`` under its object id, and a miss rebuilds the index once.
    """
    key = app_id.lower()
    found = index.get(key)
    if found is not None and records.get(found.object_id) is found and found.app_id.lower() == key:
        return found
    index.clear()
    for record in records.values():
        index.setdefault(record.app_id.lower(), record)
    return index.get(key)


class SecretCheck(Enum):
    """What the token endpoint concludes about a presented client secret."""

    OK = "ok"
    INVALID = "invalid"  # AADSTS7000215: unknown, removed, or not replicated yet
    EXPIRED = "expired"  # AADSTS7000222


def _graph_app_roles() -> list[dict[str, Any]]:
    return [
        {
            "allowedMemberTypes": ["Application"],
            "description": f"Allows the app to use {value} without a signed-in user.",
            "displayName": value,
            "id": role_id,
            "isEnabled": True,
            "origin": "Application",
            "value": value,
        }
        for value, role_id in GRAPH_APP_ROLES.items()
    ]


class Directory:
    """All tenants of one emulator."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.tenants: dict[str, Tenant] = {}
        self.replication_delay = timedelta(0)
        self.password_cap = 10
        self.sign_ins = SignInLog()

    # -- lookups (callers hold the lock or accept a racy read) --------------------------------------

    def tenant(self, tenant_id: str) -> Tenant | None:
        return self.tenants.get(tenant_id.lower())

    def require_tenant(self, tenant_id: str) -> Tenant:
        tenant = self.tenant(tenant_id)
        if tenant is None:
            raise KeyError(f"no tenant {tenant_id} in the emulator")
        return tenant

    @staticmethod
    def app_by_app_id(tenant: Tenant, app_id: str) -> AppRecord | None:
        return _by_app_id(tenant.apps, tenant.app_index, app_id)

    @staticmethod
    def sp_by_app_id(tenant: Tenant, app_id: str) -> SpRecord | None:
        return _by_app_id(tenant.sps, tenant.sp_index, app_id)

    @staticmethod
    def graph_sp(tenant: Tenant) -> SpRecord:
        sp = Directory.sp_by_app_id(tenant, GRAPH_APP_ID)
        assert sp is not None, "every tenant has the Microsoft Graph service principal"
        return sp

    def directory_object(self, tenant: Tenant, object_id: str) -> AppRecord | SpRecord | UserRecord | None:
        key = object_id.lower()
        return tenant.apps.get(key) or tenant.sps.get(key) or tenant.users.get(key)

    def roles_of(self, tenant: Tenant, principal_id: str, resource_id: str) -> list[str]:
        """The app role values a principal holds on a resource service principal."""
        resource = tenant.sps.get(resource_id)
        if resource is None:
            return []
        by_id = {role["id"]: role["value"] for role in resource.app_roles}
        return sorted(
            {
                by_id[a.app_role_id]
                for a in tenant.assignments
                if a.principal_id == principal_id and a.resource_id == resource_id and a.app_role_id in by_id
            }
        )

    # -- writes ------------------------------------------------------------------------------------

    def add_tenant(self, tenant_id: str | None = None) -> Tenant:
        with self.lock:
            tid = (tenant_id or new_id()).lower()
            if tid in self.tenants:
                return self.tenants[tid]
            tenant = Tenant(tenant_id=tid, domain=f"emu{tid[:8]}.onmicrosoft.com")
            graph = SpRecord(
                object_id=new_id(),
                app_id=GRAPH_APP_ID,
                display_name="Microsoft Graph",
                tenant_id=tid,
                app_owner_organization_id=MICROSOFT_TENANT_ID,
                app_roles=_graph_app_roles(),
                created_at=self.clock.now(),
            )
            tenant.sps[graph.object_id] = graph
            self.tenants[tid] = tenant
            return tenant

    def create_app(
        self,
        tenant: Tenant,
        display_name: str,
        *,
        app_id: str | None = None,
        owners: tuple[str, ...] | list[str] = (),
        sign_in_audience: str = "AzureADMyOrg",
        redirect_uris: list[str] | None = None,
        required_resource_access: list[dict[str, Any]] | None = None,
    ) -> AppRecord:
        with self.lock:
            app = AppRecord(
                object_id=new_id(),
                app_id=(app_id or new_id()).lower(),
                display_name=display_name,
                tenant_id=tenant.tenant_id,
                created_at=self.clock.now(),
                sign_in_audience=sign_in_audience,
                redirect_uris=list(redirect_uris or []),
                required_resource_access=list(required_resource_access or []),
            )
            if self.app_by_app_id(tenant, app.app_id) is not None:
                raise Conflict(
                    "Request_BadRequest", "Another object with the same value for property appId already exists."
                )
            tenant.apps[app.object_id] = app
            for owner in owners:
                self.add_owner(tenant, app, owner)
            return app

    def create_sp(self, tenant: Tenant, app_id: str) -> SpRecord:
        with self.lock:
            app = self.app_by_app_id(tenant, app_id)
            if app is None:
                raise DirectoryError(
                    "Request_BadRequest",
                    f"The appId '{app_id}' of the service principal does not reference a valid application object.",
                )
            if self.sp_by_app_id(tenant, app_id) is not None:
                raise Conflict(
                    "Request_MultipleObjectsWithSameKeyValue",
                    f"The service principal cannot be created, updated, or restored because the service "
                    f"principal name {app.app_id} is already in use.",
                )
            sp = SpRecord(
                object_id=new_id(),
                app_id=app.app_id,
                display_name=app.display_name,
                tenant_id=tenant.tenant_id,
                app_owner_organization_id=tenant.tenant_id,
                created_at=self.clock.now(),
            )
            tenant.sps[sp.object_id] = sp
            return sp

    def add_owner(self, tenant: Tenant, app: AppRecord, principal_id: str) -> None:
        with self.lock:
            principal = tenant.sps.get(principal_id.lower()) or tenant.users.get(principal_id.lower())
            if principal is None:
                raise NotFound(principal_id)
            if principal.object_id in app.owners:
                raise DirectoryError(
                    "Request_BadRequest",
                    "One or more added object references already exist for the following modified "
                    "properties: 'owners'.",
                )
            app.owners.append(principal.object_id)

    def assign_app_role(
        self, tenant: Tenant, principal_id: str, resource_id: str, app_role_id: str
    ) -> AppRoleAssignment:
        with self.lock:
            principal = tenant.sps.get(principal_id.lower()) or tenant.users.get(principal_id.lower())
            resource = tenant.sps.get(resource_id.lower())
            if principal is None:
                raise NotFound(principal_id)
            if resource is None:
                raise NotFound(resource_id)
            if app_role_id.lower() not in {r["id"] for r in resource.app_roles}:
                raise DirectoryError("Request_BadRequest", "Permission being assigned was not found on application")
            for existing in tenant.assignments:
                if (existing.principal_id, existing.resource_id, existing.app_role_id) == (
                    principal.object_id,
                    resource.object_id,
                    app_role_id.lower(),
                ):
                    raise DirectoryError("Request_BadRequest", "Permission being assigned already exists on the object")
            is_user = isinstance(principal, UserRecord)
            assignment = AppRoleAssignment(
                id=secrets.token_urlsafe(32)[:43],
                principal_id=principal.object_id,
                principal_type="User" if is_user else "ServicePrincipal",
                principal_display_name=principal.display_name,
                resource_id=resource.object_id,
                resource_display_name=resource.display_name,
                app_role_id=app_role_id.lower(),
                created_at=self.clock.now(),
            )
            tenant.assignments.append(assignment)
            return assignment

    def add_password(
        self,
        app: AppRecord,
        *,
        display_name: str | None,
        start: datetime | None = None,
        end: datetime | None = None,
        secret: str | None = None,
        replicated: bool = False,
        usable: bool = True,
    ) -> tuple[PasswordRecord, str]:
        """Add a password credential; `replicated` skips the replication delay (seeded secrets)."""
        with self.lock:
            now = self.clock.now()
            text = secret if secret is not None else generate_secret()
            register_issued(text)
            begin = start or now
            record = PasswordRecord(
                key_id=new_id(),
                display_name=display_name,
                hint=text[:3],
                start=begin,
                end=end or begin + DEFAULT_PASSWORD_LIFETIME,
                created_at=now,
                usable_from=now if replicated else now + self.replication_delay,
                usable=usable,
                _secret=text,
            )
            app.passwords.append(record)
            return record, text

    def remove_password(self, app: AppRecord, key_id: str) -> None:
        with self.lock:
            for record in app.passwords:
                if record.key_id.lower() == key_id.lower():
                    app.passwords.remove(record)
                    return
            raise DirectoryError(
                "Request_ResourceNotFound", f"No password credential found with keyId '{key_id}'.", status=404
            )

    def sign_in(self, tenant: Tenant, app: AppRecord, secret: str) -> SecretCheck:
        """Judge a client secret as :meth:`check_secret` does and, when it gets a token, record the sign-in
        with that credential (what the sign-in activity report shows)."""
        with self.lock:
            check = self.check_secret(app, secret)
            if check is SecretCheck.OK:
                record = next(p for p in app.passwords if p.matches(secret))
                self.sign_ins.record(self.clock.now(), tenant.tenant_id, app.app_id, app.object_id, record.key_id)
            return check

    def check_secret(self, app: AppRecord, secret: str) -> SecretCheck:
        """Judge a client secret as the token endpoint does, at the emulator's current time."""
        with self.lock:
            now = self.clock.now()
            matched = [p for p in app.passwords if p.matches(secret)]
            if not matched:
                return SecretCheck.INVALID
            record = matched[0]
            if not record.usable or now < record.usable_from or now < record.start:
                return SecretCheck.INVALID
            if now >= record.end:
                return SecretCheck.EXPIRED
            return SecretCheck.OK

    def max_password_lifetime(self, tenant: Tenant, app: AppRecord) -> timedelta | None:
        """The app management policy's passwordLifetime restriction that applies to this app."""
        with self.lock:
            if app.object_id in tenant.app_password_max_lifetime:
                return tenant.app_password_max_lifetime[app.object_id]
            return tenant.password_max_lifetime

    def add_user(
        self, tenant: Tenant, upn: str, roles: tuple[str, ...] | list[str], *, device_sign_in: bool = False
    ) -> UserRecord:
        with self.lock:
            role_ids = []
            for role in roles:
                role_id = DIRECTORY_ROLES.get(role, role)
                role_ids.append(role_id)
            user = UserRecord(object_id=new_id(), upn=upn, display_name=upn.split("@")[0], role_ids=tuple(role_ids))
            tenant.users[user.object_id] = user
            if device_sign_in:
                tenant.device_sign_in_user = user.object_id
            return user

    def set_device_sign_in_user(self, tenant: Tenant, user_object_id: str) -> None:
        with self.lock:
            if user_object_id.lower() not in tenant.users:
                raise KeyError(f"no user {user_object_id} in tenant {tenant.tenant_id}")
            tenant.device_sign_in_user = user_object_id.lower()

    def device_sign_in_user(self, tenant: Tenant) -> UserRecord | None:
        """The user who approves a device code in this tenant: the chosen one, else the first added."""
        with self.lock:
            chosen = tenant.users.get(tenant.device_sign_in_user or "")
            return chosen or next(iter(tenant.users.values()), None)


def required_resource_access(value: Any) -> list[dict[str, Any]]:
    """A copy of `requiredResourceAccess` in Graph's shape, or ValueError naming what is wrong with it.

    `[{"resourceAppId": "<appId>", "resourceAccess": [{"id": "<permission id>", "type": "Role"|"Scope"}]}]`:
    "Role" an application permission (app role), "Scope" a delegated one.
    """
    if not isinstance(value, list):
        raise ValueError("requiredResourceAccess must be a list")
    copied: list[dict[str, Any]] = []
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("resourceAppId"), str):
            raise ValueError("each requiredResourceAccess entry needs a string 'resourceAppId'")
        access = entry.get("resourceAccess")
        if not isinstance(access, list):
            raise ValueError("each requiredResourceAccess entry needs a 'resourceAccess' list")
        for item in access:
            well_formed = isinstance(item, dict) and isinstance(item.get("id"), str)
            if not well_formed or item.get("type") not in ("Role", "Scope"):
                raise ValueError("each resourceAccess item needs a string 'id' and a 'type' of 'Role' or 'Scope'")
        copied.append(
            {
                "resourceAppId": entry["resourceAppId"],
                "resourceAccess": [{"id": item["id"], "type": item["type"]} for item in access],
            }
        )
    return copied
