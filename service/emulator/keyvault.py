"""Azure Key Vault secrets (data plane): the 401 challenge, versions, tags, attributes, paging.

As the real service does, a secret's versions are listed sorted by version id, not by creation (the last
one listed is not the newest), and pages may be shorter than `maxresults` yet carry a `nextLink`
(`page_limit`): a client must take "newest" from `created` and follow `nextLink` until it is null.

One vault per emulator, served at the emulator's root URL because the Key Vault SDK cannot take a path
prefix in `vault_url`. The vault belongs to one tenant: its challenge names that tenant's authority, and a
token from another tenant is refused, as Azure does. Authorization is Azure RBAC reduced to one switch:
principals listed with :meth:`KeyVaultService.deny` get 403 ForbiddenByRbac.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from service.emulator.callers import bearer_token
from service.emulator.clock import Clock
from service.emulator.directory import KEY_VAULT_APP_ID, KEY_VAULT_RESOURCE
from service.emulator.throttle import Throttle
from service.emulator.tokens import TokenError, TokenSigner, decode_unverified
from service.emulator.wire import TENANT_ID, json_response, read_json, unix

NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
MAX_PAGE = 25
RECOVERABLE_DAYS = 90


class VaultError(Exception):
    def __init__(
        self, status: int, code: str, message: str, *, inner: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.inner = inner
        self.retry_after = retry_after


def error_json(code: str, message: str, inner: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner}
    return {"error": error}


def not_found(name: str, version: str | None = None) -> VaultError:
    ref = f"{name}/{version}" if version else name
    return VaultError(
        404,
        "SecretNotFound",
        f"A secret with (name/id) {ref} was not found in this key vault. If you recently deleted this secret "
        "you may be able to recover it using the correct recovery command. For help resolving this issue, "
        "please see https://go.microsoft.com/fwlink/?linkid=2125182",
    )


@dataclass
class SecretVersion:
    """One version of a secret, as stored; `value` never leaves except in a SecretBundle."""

    name: str
    version: str
    value: str = field(repr=False)
    content_type: str | None
    tags: dict[str, str]
    enabled: bool
    not_before: datetime | None
    expires: datetime | None
    created: datetime
    updated: datetime

    @property
    def created_unix(self) -> int:
        return unix(self.created)


@dataclass
class DeletedSecret:
    latest: SecretVersion
    versions: list[SecretVersion]
    deleted: datetime


class KeyVaultService:
    """Serves `/secrets/...` and `/deletedsecrets/...` for the emulator's one vault."""

    def __init__(
        self,
        clock: Clock,
        signer: TokenSigner,
        base_url: Callable[[], str],
        issuers: Callable[[str], set[str]],
    ) -> None:
        self.clock = clock
        self.signer = signer
        self.base_url = base_url
        self.issuers = issuers
        self.tenant_id: str | None = None
        self.lock = threading.RLock()
        self.secrets: dict[str, list[SecretVersion]] = {}
        self.deleted: dict[str, DeletedSecret] = {}
        self.denied: set[str] = set()
        # Principals whose role is assigned on single secrets, not on the vault: they may not list the vault.
        self.secret_scoped: set[str] = set()
        # Key Vault's budget of operations per vault.
        self.throttle = Throttle()
        # At most this many items a page, whatever `maxresults` asks, still with a nextLink while more remain.
        self.page_limit: int | None = None

    # -- inspection for tests ----------------------------------------------------------------------

    def seed(
        self,
        name: str,
        value: str,
        *,
        tags: dict[str, str] | None = None,
        expires: datetime | None = None,
        version_id: str | None = None,
    ) -> SecretVersion:
        """A version written out of band (an admin in the portal): no request, no authorization.

        ``version_id`` (32 hex digits) chooses the version id, so that a test can make the listing order
        (by id) differ from the creation order on purpose.
        """
        now = self.clock.now()
        if version_id is not None and not re.fullmatch(r"[0-9a-f]{32}", version_id):
            raise ValueError("version_id must be 32 lowercase hex digits, like Key Vault's")
        with self.lock:
            versions = self.secrets.setdefault(name.lower(), [])
            version = SecretVersion(
                name=versions[0].name if versions else name,
                version=version_id or secrets.token_hex(16),
                value=value,
                content_type=None,
                tags=dict(tags or {}),
                enabled=True,
                not_before=None,
                expires=expires,
                created=now,
                updated=now,
            )
            versions.append(version)
        return version

    def versions(self, name: str) -> list[SecretVersion]:
        """Every version of ``name`` in the order they were written (the last is the current one)."""
        with self.lock:
            return list(self.secrets.get(name.lower(), []))

    def latest(self, name: str) -> SecretVersion | None:
        found = self.versions(name)
        return found[-1] if found else None

    def scope_to_secrets(self, object_id: str) -> None:
        """The principal's role reaches single secrets only: listing the vault's secrets is refused (403)."""
        with self.lock:
            self.secret_scoped.add(object_id.lower())

    def deny(self, object_id: str) -> None:
        with self.lock:
            self.denied.add(object_id.lower())

    def allow(self, object_id: str) -> None:
        with self.lock:
            self.denied.discard(object_id.lower())

    # -- entry -------------------------------------------------------------------------------------

    async def handle(self, request: web.Request, segments: list[str]) -> web.StreamResponse:
        try:
            if "api-version" not in request.query:
                raise VaultError(400, "BadParameter", "The 'api-version' query parameter is missing.")
            self._authorize(request, listing=segments in (["secrets"], ["secrets", ""]))
            wait = self.throttle.take("vault")
            if wait is not None:
                raise VaultError(
                    429,
                    "Throttled",
                    "Request was not processed because too many requests were received. Reason: "
                    "VaultRequestTypeLimitReached",
                    retry_after=wait,
                )
            with self.lock:
                return await self._route(request, segments)
        except VaultError as exc:
            headers = self._challenge_header() if exc.status == 401 else {}
            if exc.retry_after is not None:
                headers["Retry-After"] = str(exc.retry_after)
            return json_response(error_json(exc.code, exc.message, exc.inner), status=exc.status, headers=headers)

    def _challenge_header(self) -> dict[str, str]:
        tenant = self.tenant_id or "common"
        return {
            "WWW-Authenticate": f'Bearer authorization="{self.base_url()}/{tenant}", resource="{KEY_VAULT_RESOURCE}"'
        }

    def _authorize(self, request: web.Request, *, listing: bool = False) -> None:
        token = bearer_token(request)
        if token is None:
            raise VaultError(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
        try:
            claims = self.signer.verify(
                token, now=self.clock.now(), audiences=frozenset({KEY_VAULT_RESOURCE, KEY_VAULT_APP_ID})
            )
        except TokenError as exc:
            text = str(exc)
            if "audience" in text:
                try:
                    found = decode_unverified(token)[1].get("aud")
                except TokenError:
                    found = None
                message = f"AKV10022: Invalid audience. Expected {KEY_VAULT_RESOURCE}, found: {found}."
            elif "expired" in text:
                message = "Token validation failed: the token is expired."
            else:
                message = "Token validation failed: the token's signature could not be validated."
            raise VaultError(401, "Unauthorized", message) from exc
        tid = str(claims.get("tid", ""))
        request[TENANT_ID] = tid
        if self.tenant_id is None or tid != self.tenant_id or claims.get("iss") not in self.issuers(tid):
            expected = ", ".join(sorted(self.issuers(self.tenant_id or "common")))
            raise VaultError(
                401, "Unauthorized", f"AKV10032: Invalid issuer. Expected one of {expected}, found {claims.get('iss')}."
            )
        oid = str(claims.get("oid", "")).lower()
        with self.lock:
            if oid in self.denied or (listing and oid in self.secret_scoped):
                verb = "readMetadata" if listing else "getSecret" if request.method == "GET" else "setSecret"
                action = f"Microsoft.KeyVault/vaults/secrets/{verb}/action"
                raise VaultError(
                    403,
                    "Forbidden",
                    "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny "
                    "assignments or role definitions were changed recently, please observe propagation time.\r\n"
                    f"Caller: appid={claims.get('appid')};oid={oid};iss={claims.get('iss')}\r\n"
                    f"Action: '{action}'\r\nResource: 'emulator-vault'\r\nAssignment: (not found)\r\n"
                    "DenyAssignmentId: null\r\nDecisionReason: null \r\nVault: emulator-vault;location=local\r\n",
                    inner="ForbiddenByRbac",
                )

    # -- routes ------------------------------------------------------------------------------------

    async def _route(self, request: web.Request, segments: list[str]) -> web.StreamResponse:
        method = request.method
        head, rest = segments[0], segments[1:]
        if head == "deletedsecrets":
            return self._deleted_route(method, rest)
        if not rest:
            if method == "GET":
                return self._list(request, [v[-1] for v in self.secrets.values()], item_ids=False)
            raise VaultError(405, "BadParameter", f"The requested resource does not support http method '{method}'.")
        name = rest[0]
        if not NAME.match(name):
            raise VaultError(400, "BadParameter", f"The request URI contains an invalid name: {name}")
        tail = rest[1:]
        if tail in ([], [""]):
            if method == "PUT" and not tail:
                return await self._set(request, name)
            if method == "GET":
                return json_response(self._bundle(self._get(name, None), with_value=True))
            if method == "PATCH":
                return await self._update(request, name, None)
            if method == "DELETE" and not tail:
                return self._delete(name)
        elif tail == ["versions"] and method == "GET":
            versions = self.secrets.get(name.lower())
            if not versions:
                raise not_found(name)
            # Sorted by version id, as Key Vault lists them: not the order they were written in.
            return self._list(request, sorted(versions, key=lambda v: v.version), item_ids=True)
        elif len(tail) == 1:
            if method == "GET":
                return json_response(self._bundle(self._get(name, tail[0]), with_value=True))
            if method == "PATCH":
                return await self._update(request, name, tail[0])
        raise VaultError(400, "BadParameter", f"The requested resource does not support http method '{method}'.")

    def _get(self, name: str, version: str | None) -> SecretVersion:
        versions = self.secrets.get(name.lower())
        if not versions:
            raise not_found(name, version)
        if not version:
            found = versions[-1]
        else:
            match = [v for v in versions if v.version == version.lower()]
            if not match:
                raise not_found(name, version)
            found = match[0]
        if not found.enabled:
            raise VaultError(
                403, "Forbidden", "Operation get is not allowed on a disabled secret.", inner="SecretDisabled"
            )
        return found

    async def _payload(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await read_json(request)
        except ValueError as exc:
            raise VaultError(400, "BadParameter", "The request body is not valid JSON.") from exc
        if not isinstance(body, dict):
            raise VaultError(400, "BadParameter", "The request body is missing.")
        return body

    def _attributes(self, body: dict[str, Any]) -> tuple[bool | None, datetime | None, datetime | None, bool, bool]:
        attrs = body.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise VaultError(400, "BadParameter", "Property 'attributes' has an invalid value.")
        enabled = attrs.get("enabled")
        nbf, exp = attrs.get("nbf"), attrs.get("exp")
        try:
            not_before = datetime.fromtimestamp(int(nbf), tz=self.clock.now().tzinfo) if nbf is not None else None
            expires = datetime.fromtimestamp(int(exp), tz=self.clock.now().tzinfo) if exp is not None else None
        except (TypeError, ValueError, OverflowError) as exc:
            raise VaultError(400, "BadParameter", "Property 'attributes' has an invalid value.") from exc
        return (bool(enabled) if enabled is not None else None), not_before, expires, "nbf" in attrs, "exp" in attrs

    async def _set(self, request: web.Request, name: str) -> web.Response:
        body = await self._payload(request)
        value = body.get("value")
        if not isinstance(value, str):
            raise VaultError(400, "BadParameter", "Property 'value' is required and must be a string.")
        if name.lower() in self.deleted:
            raise VaultError(
                409,
                "Conflict",
                f"Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused; in "
                "this state, the secret can only be recovered or purged.",
                inner="ObjectIsDeletedButRecoverable",
            )
        tags = body.get("tags") or {}
        if not isinstance(tags, dict) or len(tags) > 15:
            raise VaultError(400, "BadParameter", "Tags must be an object with at most 15 entries.")
        enabled, not_before, expires, _, _ = self._attributes(body)
        now = self.clock.now()
        versions = self.secrets.setdefault(name.lower(), [])
        stored_name = versions[0].name if versions else name
        version = SecretVersion(
            name=stored_name,
            version=secrets.token_hex(16),
            value=value,
            content_type=body.get("contentType"),
            tags={str(k): str(v) for k, v in tags.items()},
            enabled=True if enabled is None else enabled,
            not_before=not_before,
            expires=expires,
            created=now,
            updated=now,
        )
        versions.append(version)
        return json_response(self._bundle(version, with_value=True))

    async def _update(self, request: web.Request, name: str, version: str | None) -> web.Response:
        body = await self._payload(request)
        versions = self.secrets.get(name.lower())
        if not versions:
            raise not_found(name, version)
        target = versions[-1] if not version else next((v for v in versions if v.version == version.lower()), None)
        if target is None:
            raise not_found(name, version)
        enabled, not_before, expires, has_nbf, has_exp = self._attributes(body)
        if enabled is not None:
            target.enabled = enabled
        if has_nbf:
            target.not_before = not_before
        if has_exp:
            target.expires = expires
        if "contentType" in body:
            target.content_type = body["contentType"]
        if "tags" in body and isinstance(body["tags"], dict):
            target.tags = {str(k): str(v) for k, v in body["tags"].items()}
        target.updated = self.clock.now()
        return json_response(self._bundle(target, with_value=False))

    def _delete(self, name: str) -> web.Response:
        versions = self.secrets.pop(name.lower(), None)
        if not versions:
            raise not_found(name)
        record = DeletedSecret(latest=versions[-1], versions=versions, deleted=self.clock.now())
        self.deleted[name.lower()] = record
        return json_response(self._deleted_bundle(record))

    def _deleted_route(self, method: str, rest: list[str]) -> web.Response:
        if len(rest) != 1:
            raise VaultError(400, "BadParameter", "Unsupported deleted secret operation.")
        record = self.deleted.get(rest[0].lower())
        if record is None:
            raise VaultError(404, "SecretNotFound", f"Deleted Secret not found: {rest[0]}")
        if method == "GET":
            return json_response(self._deleted_bundle(record))
        if method == "DELETE":
            del self.deleted[rest[0].lower()]
            return web.Response(status=204)
        raise VaultError(400, "BadParameter", f"The requested resource does not support http method '{method}'.")

    # -- shapes ------------------------------------------------------------------------------------

    def _secret_id(self, version: SecretVersion, with_version: bool) -> str:
        base = f"{self.base_url()}/secrets/{version.name}"
        return f"{base}/{version.version}" if with_version else base

    def _attributes_json(self, version: SecretVersion) -> dict[str, Any]:
        attrs: dict[str, Any] = {"enabled": version.enabled}
        if version.not_before is not None:
            attrs["nbf"] = unix(version.not_before)
        if version.expires is not None:
            attrs["exp"] = unix(version.expires)
        attrs.update(
            {
                "created": unix(version.created),
                "updated": unix(version.updated),
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": RECOVERABLE_DAYS,
            }
        )
        return attrs

    def _bundle(self, version: SecretVersion, *, with_value: bool) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if with_value:
            body["value"] = version.value
        if version.content_type is not None:
            body["contentType"] = version.content_type
        body["id"] = self._secret_id(version, True)
        body["attributes"] = self._attributes_json(version)
        if version.tags:
            body["tags"] = dict(version.tags)
        return body

    def _item(self, version: SecretVersion, *, with_version: bool) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": self._secret_id(version, with_version),
            "attributes": self._attributes_json(version),
        }
        if version.tags:
            item["tags"] = dict(version.tags)
        if version.content_type is not None:
            item["contentType"] = version.content_type
        return item

    def _deleted_bundle(self, record: DeletedSecret) -> dict[str, Any]:
        body = self._bundle(record.latest, with_value=False)
        body["recoveryId"] = f"{self.base_url()}/deletedsecrets/{record.latest.name}"
        body["deletedDate"] = unix(record.deleted)
        body["scheduledPurgeDate"] = unix(record.deleted) + RECOVERABLE_DAYS * 86400
        return body

    def _list(self, request: web.Request, versions: list[SecretVersion], *, item_ids: bool) -> web.Response:
        raw_max = request.query.get("maxresults")
        try:
            page_size = int(raw_max) if raw_max else MAX_PAGE
        except ValueError as exc:
            raise VaultError(400, "BadParameter", "The value of 'maxresults' is invalid.") from exc
        if not 1 <= page_size <= MAX_PAGE:
            raise VaultError(400, "BadParameter", f"The value of 'maxresults' must be between 1 and {MAX_PAGE}.")
        offset = _decode_skip(request.query.get("$skiptoken"))
        served = min(page_size, self.page_limit) if self.page_limit is not None else page_size
        page = versions[offset : offset + served]
        body: dict[str, Any] = {"value": [self._item(v, with_version=item_ids) for v in page], "nextLink": None}
        if offset + served < len(versions):
            token = _encode_skip(offset + served)
            body["nextLink"] = (
                f"{self.base_url()}{request.path}?api-version={request.query['api-version']}"
                f"&$skiptoken={token}&maxresults={page_size}"
            )
        return json_response(body)


def _encode_skip(offset: int) -> str:
    # Opaque to clients, like Key Vault's base64 JSON marker.
    return base64.urlsafe_b64encode(json.dumps({"NextMarker": offset}).encode()).decode().rstrip("=")


def _decode_skip(token: str | None) -> int:
    if not token:
        return 0
    try:
        marker = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return max(0, int(marker["NextMarker"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise VaultError(400, "BadParameter", "The skip token is invalid.") from exc
