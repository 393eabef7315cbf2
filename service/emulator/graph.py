"""Microsoft Graph v1.0: applications, passwords, service principals, app role assignments, owners; and of
beta, the one report the rotator reads (appCredentialSignInActivities, see sign_ins.py).

Requests are authenticated with the emulator's access tokens (signature, expiry, audience, issuer) and
authorized the way Entra does it: an app-only caller by its Graph app roles (Application.ReadWrite.OwnedBy
reaches only the apps it owns), a delegated caller by its `scp` and its directory roles (`wids`).
Answers and errors carry Graph's OData shapes and codes.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aiohttp import web

from service.emulator import graph_shapes as shapes
from service.emulator import sign_ins
from service.emulator.callers import Caller, bearer_token
from service.emulator.directory import (
    DIRECTORY_ROLES,
    GRAPH_APP_ID,
    GRAPH_RESOURCE,
    MICROSOFT_TENANT_ID,
    AppRecord,
    Directory,
    DirectoryError,
    NotFound,
    SpRecord,
    Tenant,
)
from service.emulator.throttle import Throttle
from service.emulator.tokens import TokenError, TokenSigner
from service.emulator.wire import TENANT_ID, json_response, new_request_id, parse_iso, read_json

READ_ROLES = frozenset({"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All"})
READ_SCOPES = frozenset(
    {"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
)
APP_ADMIN_ROLES = frozenset(
    DIRECTORY_ROLES[name]
    for name in ("Global Administrator", "Application Administrator", "Cloud Application Administrator")
)
# Granting Microsoft Graph's app roles is privileged; other resources' roles an app admin may grant.
GRAPH_GRANT_ROLES = frozenset(
    DIRECTORY_ROLES[name] for name in ("Global Administrator", "Privileged Role Administrator")
)
POLICY_READ_ROLES = frozenset({"Policy.Read.All", "Policy.Read.ApplicationConfiguration"})
WRITABLE_APP_PROPERTIES = frozenset(
    {"displayName", "description", "signInAudience", "web", "requiredResourceAccess", "identifierUris", "tags", "notes"}
)
PAGE_SIZE = 100
_BY_APP_ID = re.compile(r"^(applications|servicePrincipals)\(appId='([^']*)'\)$")


class GraphError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


def denied() -> GraphError:
    return GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


def bad_request(message: str, code: str = "Request_BadRequest") -> GraphError:
    return GraphError(400, code, message)


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    request_id: str,
    client_request_id: str,
    now_text: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    error["innerError"] = {"date": now_text, "request-id": request_id, "client-request-id": client_request_id}
    all_headers = {"request-id": request_id, "client-request-id": client_request_id, **(headers or {})}
    return json_response({"error": error}, status=status, headers=all_headers)


class GraphService:
    """Serves `/v1.0/...` from the shared directory."""

    def __init__(
        self,
        directory: Directory,
        signer: TokenSigner,
        base_url: Callable[[], str],
        issuers: Callable[[str], set[str]],
    ) -> None:
        self.directory = directory
        self.signer = signer
        self.base_url = base_url
        self.issuers = issuers
        # Graph's per-app-per-tenant budget; each request in a $batch counts on its own.
        self.throttle = Throttle()

    @property
    def root(self) -> str:
        return f"{self.base_url()}/v1.0"

    def context(self, fragment: str) -> str:
        return f"{self.root}/$metadata#{fragment}"

    # -- entry -------------------------------------------------------------------------------------

    async def handle(self, request: web.Request, segments: list[str], version: str = "v1.0") -> web.StreamResponse:
        request_id = new_request_id()
        client_request_id = request.headers.get("client-request-id", request_id)
        now_text = self.directory.clock.now().strftime("%Y-%m-%dT%H:%M:%S")
        try:
            caller = self.authenticate(request)
            request[TENANT_ID] = caller.tenant_id
            tenant = self.directory.tenant(caller.tenant_id)
            if tenant is None:
                raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure.")
            wait = self.throttle.take(f"{caller.tenant_id}/{caller.app_id}")
            if wait is not None:
                raise GraphError(
                    429, "TooManyRequests", "Too many requests, please retry later.", headers={"Retry-After": str(wait)}
                )
            response: web.StreamResponse
            if version == "beta":
                response = self._beta_route(request, segments, caller, tenant)
            else:
                response = await self._route(request, segments, caller, tenant)
        except GraphError as exc:
            return error_response(
                exc.status,
                exc.code,
                exc.message,
                request_id=request_id,
                client_request_id=client_request_id,
                now_text=now_text,
                details=exc.details,
                headers=exc.headers,
            )
        except DirectoryError as exc:
            return error_response(
                exc.status,
                exc.code,
                exc.message,
                request_id=request_id,
                client_request_id=client_request_id,
                now_text=now_text,
                details=exc.details,
            )
        response.headers["request-id"] = request_id
        response.headers["client-request-id"] = client_request_id
        return response

    def authenticate(self, request: web.Request) -> Caller:
        token = bearer_token(request)
        if token is None:
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        try:
            claims = self.signer.verify(
                token, now=self.directory.clock.now(), audiences=frozenset({GRAPH_RESOURCE, GRAPH_APP_ID})
            )
        except TokenError as exc:
            text = str(exc)
            if "expired" in text:
                message = "Lifetime validation failed, the token is expired."
            elif "audience" in text:
                message = "Access token validation failure. Invalid audience."
            else:
                message = "Access token validation failure."
            raise GraphError(401, "InvalidAuthenticationToken", message) from exc
        if claims.get("iss") not in self.issuers(str(claims.get("tid", ""))):
            raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid issuer.")
        return Caller.from_claims(claims)

    async def _route(
        self, request: web.Request, segments: list[str], caller: Caller, tenant: Tenant
    ) -> web.StreamResponse:
        method = request.method
        if not segments:
            raise bad_request("Invalid request.", "BadRequest")
        head = segments[0]
        by_app_id = _BY_APP_ID.match(head)
        with self.directory.lock:
            if head == "applications" and len(segments) == 1:
                if method == "GET":
                    return self._list_apps(request, caller, tenant)
                if method == "POST":
                    return await self._create_app(request, caller, tenant)
            elif head == "applications" or (by_app_id and by_app_id.group(1) == "applications"):
                if by_app_id:
                    app = self.directory.app_by_app_id(tenant, by_app_id.group(2))
                    ref, rest = by_app_id.group(2), segments[1:]
                else:
                    app = tenant.apps.get(segments[1].lower())
                    ref, rest = segments[1], segments[2:]
                if app is None:
                    raise NotFound(ref)
                return await self._app_route(request, method, rest, caller, tenant, app)
            elif head == "servicePrincipals" and len(segments) == 1:
                if method == "GET":
                    return self._list_sps(request, caller, tenant)
                if method == "POST":
                    return await self._create_sp(request, caller, tenant)
            elif head == "servicePrincipals" or (by_app_id and by_app_id.group(1) == "servicePrincipals"):
                if by_app_id:
                    sp = self.directory.sp_by_app_id(tenant, by_app_id.group(2))
                    ref, rest = by_app_id.group(2), segments[1:]
                else:
                    sp = tenant.sps.get(segments[1].lower())
                    ref, rest = segments[1], segments[2:]
                if sp is None:
                    raise NotFound(ref)
                return await self._sp_route(request, method, rest, caller, tenant, sp)
            elif head == "directoryObjects" and len(segments) == 2 and method == "GET":
                self._require_read(caller, tenant, None)
                obj = self.directory.directory_object(tenant, segments[1])
                if obj is None:
                    raise NotFound(segments[1])
                body = {
                    "@odata.context": self.context("directoryObjects/$entity"),
                    **shapes.directory_object_json(obj, tenant),
                }
                return json_response(body)
            elif segments == ["policies", "defaultAppManagementPolicy"] and method == "GET":
                if not (
                    caller.roles & POLICY_READ_ROLES
                    or caller.scopes & {"Policy.Read.All", "Policy.Read.ApplicationConfiguration"}
                ):
                    raise denied()
                body = {
                    "@odata.context": self.context("policies/defaultAppManagementPolicy/$entity"),
                    **shapes.tenant_policy_json(tenant),
                }
                return json_response(body)
        raise (
            bad_request(f"Resource not found for the segment '{segments[-1]}'.", "BadRequest")
            if method == "GET"
            else bad_request("Request not applicable to target tenant.", "BadRequest")
        )

    def _beta_route(self, request: web.Request, segments: list[str], caller: Caller, tenant: Tenant) -> web.Response:
        log = self.directory.sign_ins
        if segments != ["reports", "appCredentialSignInActivities"] or request.method != "GET" or not log.available:
            # What a national cloud answers: it has no such report.
            raise bad_request(f"Resource not found for the segment '{segments[-1] if segments else ''}'.", "BadRequest")
        if not (caller.roles & sign_ins.REPORT_ROLES or caller.scopes & sign_ins.REPORT_ROLES):
            raise GraphError(
                403,
                "Authorization_RequestDenied",
                "Calling principal does not have required MSGraph permissions AuditLog.Read.All",
            )
        try:
            wanted = sign_ins.parse_filter(request.query.get("$filter"))
        except sign_ins.UnsupportedFilter as exc:
            raise bad_request(str(exc), "Request_UnsupportedQuery") from exc
        rows: list[dict[str, Any]] = []
        with self.directory.lock:
            for entry in [] if log.empty else log.last_sign_ins(tenant.tenant_id, self.directory.clock.now()).values():
                if wanted is not None and getattr(entry, "app_id" if wanted[0] == "appId" else "key_id") != wanted[1]:
                    continue
                app = self.directory.app_by_app_id(tenant, entry.app_id)
                record = next((p for p in app.passwords if p.key_id.lower() == entry.key_id), None) if app else None
                facts = sign_ins.CredentialFacts(record.created_at, record.end) if record else None
                sp = self.directory.sp_by_app_id(tenant, entry.app_id)
                rows.append(sign_ins.activity_json(entry, facts, sp.object_id if sp else None))
        return json_response(
            {
                "@odata.context": f"{self.base_url()}/beta/$metadata#reports/appCredentialSignInActivities",
                "value": rows,
            }
        )

    # -- authorization -----------------------------------------------------------------------------

    def _owns(self, caller: Caller, app: AppRecord) -> bool:
        return caller.object_id in app.owners

    def _require_read(self, caller: Caller, tenant: Tenant, app: AppRecord | None) -> None:
        if caller.delegated:
            if caller.scopes & READ_SCOPES:
                return
            raise denied()
        if caller.roles & READ_ROLES:
            return
        if "Application.ReadWrite.OwnedBy" in caller.roles and (app is None or self._owns(caller, app)):
            return
        raise denied()

    def _require_write(self, caller: Caller, app: AppRecord) -> None:
        if caller.delegated:
            if "Application.ReadWrite.All" in caller.scopes and (
                caller.role_ids & APP_ADMIN_ROLES or self._owns(caller, app)
            ):
                return
            raise denied()
        if "Application.ReadWrite.All" in caller.roles:
            return
        if "Application.ReadWrite.OwnedBy" in caller.roles and self._owns(caller, app):
            return
        raise denied()

    def _require_create(self, caller: Caller) -> None:
        if caller.delegated:
            if "Application.ReadWrite.All" in caller.scopes:
                return
            raise denied()
        if caller.roles & {"Application.ReadWrite.All", "Application.ReadWrite.OwnedBy"}:
            return
        raise denied()

    def _visible_app(self, caller: Caller, app: AppRecord) -> bool:
        if caller.delegated:
            return bool(caller.scopes & READ_SCOPES)
        return bool(caller.roles & READ_ROLES) or (
            "Application.ReadWrite.OwnedBy" in caller.roles and self._owns(caller, app)
        )

    # -- query helpers -----------------------------------------------------------------------------

    def _page(self, request: web.Request, items: list[dict[str, Any]], fragment: str, type_name: str) -> web.Response:
        query = request.query
        try:
            fields = (
                shapes.select_fields(query.get("$select"), set(items[0]) if items else set(), type_name)
                if items
                else None
            )
        except shapes.QueryError as exc:
            raise bad_request(str(exc), "BadRequest") from exc
        try:
            top = int(query.get("$top", PAGE_SIZE))
            offset = int(query.get("$skiptoken", "0"))
        except ValueError as exc:
            raise bad_request("Invalid page size or skip token.", "BadRequest") from exc
        if top < 1 or top > 999:
            raise bad_request(
                f"Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive.", "Request_BadRequest"
            )
        page = items[offset : offset + top]
        context = fragment if not fields else fragment + "(" + ",".join(fields) + ")"
        body: dict[str, Any] = {
            "@odata.context": self.context(context),
            "value": [shapes.select(i, fields) for i in page],
        }
        if offset + top < len(items):
            params = {k: v for k, v in query.items() if k != "$skiptoken"}
            params["$skiptoken"] = str(offset + top)
            body["@odata.nextLink"] = (
                f"{self.root}{request.path.removeprefix('/v1.0')}?{urllib.parse.urlencode(params)}"
            )
        return json_response(body)

    def _entity(self, request: web.Request, entity: dict[str, Any], fragment: str, type_name: str) -> web.Response:
        try:
            fields = shapes.select_fields(request.query.get("$select"), set(entity), type_name)
        except shapes.QueryError as exc:
            raise bad_request(str(exc), "BadRequest") from exc
        context = fragment if not fields else fragment + "(" + ",".join(fields) + ")"
        return json_response({"@odata.context": self.context(context + "/$entity"), **shapes.select(entity, fields)})

    async def _body(self, request: web.Request) -> Any:
        try:
            return await read_json(request)
        except ValueError as exc:
            raise bad_request(
                "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is "
                "of valid JSON format.",
                "BadRequest",
            ) from exc

    # -- applications ------------------------------------------------------------------------------

    def _list_apps(self, request: web.Request, caller: Caller, tenant: Tenant) -> web.Response:
        self._require_read(caller, tenant, None)
        try:
            test = shapes.matcher(
                request.query.get("$filter"), frozenset({"displayName", "appId", "id"}), "Application"
            )
        except shapes.QueryError as exc:
            raise bad_request(str(exc), "Request_UnsupportedQuery") from exc
        # Filtered on the three filterable properties before the whole shape is built: a tenant may hold
        # thousands of apps, and an `in` filter asks for 15 of them.
        chosen = [
            a
            for a in tenant.apps.values()
            if test({"id": a.object_id, "appId": a.app_id, "displayName": a.display_name})
            and self._visible_app(caller, a)
        ]
        items = [shapes.app_json(a, tenant) for a in sorted(chosen, key=lambda a: a.created_at)]
        return self._page(request, items, "applications", "application")

    async def _create_app(self, request: web.Request, caller: Caller, tenant: Tenant) -> web.Response:
        self._require_create(caller)
        body = await self._body(request)
        if not isinstance(body, dict):
            raise bad_request("Invalid value specified for property 'displayName' of resource 'Application'.")
        self._check_properties(
            body,
            WRITABLE_APP_PROPERTIES
            | {
                "passwordCredentials",
                "keyCredentials",
                "api",
                "appRoles",
                "publicClient",
                "spa",
                "info",
                "optionalClaims",
                "isFallbackPublicClient",
            },
        )
        name = body.get("displayName")
        if not isinstance(name, str) or not name.strip():
            raise bad_request("Invalid value specified for property 'displayName' of resource 'Application'.")
        app = self.directory.create_app(
            tenant,
            name,
            sign_in_audience=str(body.get("signInAudience") or "AzureADandPersonalMicrosoftAccount"),
        )
        self._apply_patch(app, body)
        # The creator of an app registration becomes its owner (what makes OwnedBy work afterwards).
        if caller.object_id in tenant.sps or caller.object_id in tenant.users:
            self.directory.add_owner(tenant, app, caller.object_id)
        entity = shapes.app_json(app, tenant)
        headers = {"Location": f"{self.root}/directoryObjects/{app.object_id}/Microsoft.DirectoryServices.Application"}
        return json_response(
            {"@odata.context": self.context("applications/$entity"), **entity}, status=201, headers=headers
        )

    def _check_properties(self, body: dict[str, Any], allowed: frozenset[str]) -> None:
        for key in body:
            if key.startswith("@odata."):
                continue
            if key not in allowed:
                raise bad_request(
                    f"Property '{key}' does not exist on type 'microsoft.graph.application'. Make sure to only "
                    "use property names that are defined by the type or mark the type as open type.",
                    "BadRequest",
                )

    def _apply_patch(self, app: AppRecord, body: dict[str, Any]) -> None:
        if "displayName" in body:
            if not isinstance(body["displayName"], str) or not body["displayName"].strip():
                raise bad_request("Invalid value specified for property 'displayName' of resource 'Application'.")
            app.display_name = body["displayName"]
        if "description" in body:
            app.description = body["description"]
        if body.get("signInAudience"):
            app.sign_in_audience = str(body["signInAudience"])
        web_part = body.get("web")
        if isinstance(web_part, dict) and "redirectUris" in web_part:
            app.redirect_uris = [str(u) for u in web_part.get("redirectUris") or []]
        if "requiredResourceAccess" in body:
            app.required_resource_access = [
                {k: v for k, v in dict(r).items() if not k.startswith("@odata.")}
                | {
                    "resourceAccess": [
                        {k: v for k, v in dict(a).items() if not k.startswith("@odata.")}
                        for a in r.get("resourceAccess", [])
                    ]
                }
                for r in body["requiredResourceAccess"] or []
            ]
        if "identifierUris" in body:
            app.identifier_uris = [str(u) for u in body["identifierUris"] or []]
        if "tags" in body:
            app.tags = [str(t) for t in body["tags"] or []]

    async def _app_route(
        self, request: web.Request, method: str, rest: list[str], caller: Caller, tenant: Tenant, app: AppRecord
    ) -> web.StreamResponse:
        if not rest:
            if method == "GET":
                self._require_read(caller, tenant, app)
                return self._entity(request, shapes.app_json(app, tenant), "applications", "application")
            if method == "PATCH":
                self._require_write(caller, app)
                body = await self._body(request)
                if not isinstance(body, dict):
                    raise bad_request("Empty Payload. JSON content expected.", "BadRequest")
                if "passwordCredentials" in body:
                    raise bad_request(
                        "Property 'passwordCredentials' is read-only and cannot be set; use addPassword and "
                        "removePassword."
                    )
                self._check_properties(body, WRITABLE_APP_PROPERTIES)
                self._apply_patch(app, body)
                return web.Response(status=204)
            if method == "DELETE":
                self._require_write(caller, app)
                del tenant.apps[app.object_id]
                return web.Response(status=204)
        elif rest == ["addPassword"] and method == "POST":
            self._require_write(caller, app)
            return await self._add_password(request, tenant, app)
        elif rest == ["removePassword"] and method == "POST":
            self._require_write(caller, app)
            body = await self._body(request)
            key_id = body.get("keyId") if isinstance(body, dict) else None
            if not isinstance(key_id, str) or not _is_guid(key_id):
                raise bad_request("Invalid value specified for property 'keyId' of resource 'PasswordCredential'.")
            self.directory.remove_password(app, key_id)
            return web.Response(status=204)
        elif rest == ["owners"] and method == "GET":
            self._require_read(caller, tenant, app)
            owners = [self.directory.directory_object(tenant, oid) for oid in app.owners]
            items = [shapes.directory_object_json(o, tenant) for o in owners if o is not None]
            return self._page(request, items, "directoryObjects", "directoryObject")
        elif rest == ["owners", "$ref"] and method == "POST":
            self._require_write(caller, app)
            body = await self._body(request)
            ref = body.get("@odata.id") if isinstance(body, dict) else None
            if not isinstance(ref, str) or not ref.strip():
                raise bad_request("Invalid object identifier ''.")
            principal_id = ref.rstrip("/").rsplit("/", 1)[-1]
            if not _is_guid(principal_id):
                raise bad_request(f"Invalid object identifier '{principal_id}'.")
            self.directory.add_owner(tenant, app, principal_id)
            return web.Response(status=204)
        elif rest == ["appManagementPolicies"] and method == "GET":
            self._require_read(caller, tenant, app)
            lifetime = tenant.app_password_max_lifetime.get(app.object_id)
            items = [] if lifetime is None else [shapes.app_policy_json(app, lifetime, tenant.policy_applies_after)]
            return self._page(request, items, "policies/appManagementPolicies", "appManagementPolicy")
        raise bad_request(f"Resource not found for the segment '{rest[-1] if rest else 'applications'}'.", "BadRequest")

    async def _add_password(self, request: web.Request, tenant: Tenant, app: AppRecord) -> web.Response:
        body = await self._body(request)
        spec: dict[str, Any] = {}
        if isinstance(body, dict) and isinstance(body.get("passwordCredential"), dict):
            spec = body["passwordCredential"]
        elif body is not None and not isinstance(body, dict):
            raise bad_request("Unable to read JSON request payload.", "BadRequest")
        now = self.directory.clock.now()
        try:
            start = parse_iso(spec["startDateTime"]) if spec.get("startDateTime") else now
            end = parse_iso(spec["endDateTime"]) if spec.get("endDateTime") else None
        except (ValueError, TypeError) as exc:
            raise bad_request(
                "Invalid value specified for property 'endDateTime' of resource 'PasswordCredential'.", "BadRequest"
            ) from exc
        end = end or start + timedelta(days=730)
        if end <= start:
            raise bad_request("Invalid value specified for property 'endDateTime' of resource 'PasswordCredential'.")
        if len(app.passwords) >= self.directory.password_cap:
            raise GraphError(
                400,
                "TooManyAppPasswords",
                f"Not allowed to add {len(app.passwords) + 1} passwords. You can only add a maximum of "
                f"{self.directory.password_cap} passwords.",
                details=[{"target": "passwordCredentials", "code": "TooManyAppPasswords"}],
            )
        lifetime = self.directory.max_password_lifetime(tenant, app)
        if lifetime is not None and end - start > lifetime:
            policy_id = (
                shapes.app_policy_id(app)
                if app.object_id in tenant.app_password_max_lifetime
                else shapes.DEFAULT_POLICY_ID
            )
            raise GraphError(
                400,
                "CredentialInvalidLifetimeAsPerAppPolicy",
                f"Credential lifetime exceeds the max value allowed as per assigned policy '{policy_id}'.",
                details=[{"target": "passwordCredentials", "code": "CredentialInvalidLifetimeAsPerAppPolicy"}],
            )
        display_name = spec.get("displayName")
        record, secret = self.directory.add_password(
            app, display_name=str(display_name) if display_name is not None else None, start=start, end=end
        )
        return json_response(
            {
                "@odata.context": self.context("microsoft.graph.passwordCredential"),
                **shapes.password_json(record, secret),
            }
        )

    # -- service principals ------------------------------------------------------------------------

    def _visible_sp(self, caller: Caller, tenant: Tenant, sp: SpRecord) -> bool:
        if caller.delegated:
            return bool(caller.scopes & READ_SCOPES)
        if caller.roles & READ_ROLES or sp.object_id == caller.object_id:
            return True
        app = self.directory.app_by_app_id(tenant, sp.app_id)
        return "Application.ReadWrite.OwnedBy" in caller.roles and app is not None and self._owns(caller, app)

    def _require_sp_read(self, caller: Caller, tenant: Tenant, sp: SpRecord | None) -> None:
        if sp is None:
            if caller.delegated and caller.scopes & READ_SCOPES:
                return
            if not caller.delegated and caller.roles & (READ_ROLES | {"Application.ReadWrite.OwnedBy"}):
                return
            raise denied()
        if not self._visible_sp(caller, tenant, sp):
            raise denied()

    def _list_sps(self, request: web.Request, caller: Caller, tenant: Tenant) -> web.Response:
        self._require_sp_read(caller, tenant, None)
        visible = [s for s in tenant.sps.values() if self._visible_sp(caller, tenant, s)]
        items = [shapes.sp_json(s) for s in visible]
        try:
            items = shapes.filter_items(
                items, request.query.get("$filter"), frozenset({"displayName", "appId", "id"}), "ServicePrincipal"
            )
        except shapes.QueryError as exc:
            raise bad_request(str(exc), "Request_UnsupportedQuery") from exc
        return self._page(request, items, "servicePrincipals", "servicePrincipal")

    async def _create_sp(self, request: web.Request, caller: Caller, tenant: Tenant) -> web.Response:
        body = await self._body(request)
        app_id = body.get("appId") if isinstance(body, dict) else None
        if not isinstance(app_id, str) or not app_id:
            raise bad_request("Invalid value specified for property 'appId' of resource 'ServicePrincipal'.")
        app = self.directory.app_by_app_id(tenant, app_id)
        if app is None:
            raise bad_request(
                f"The appId '{app_id}' of the service principal does not reference a valid application object."
            )
        self._require_write(caller, app)
        sp = self.directory.create_sp(tenant, app_id)
        return json_response(
            {"@odata.context": self.context("servicePrincipals/$entity"), **shapes.sp_json(sp)}, status=201
        )

    async def _sp_route(
        self, request: web.Request, method: str, rest: list[str], caller: Caller, tenant: Tenant, sp: SpRecord
    ) -> web.StreamResponse:
        if not rest and method == "GET":
            self._require_sp_read(caller, tenant, sp)
            return self._entity(request, shapes.sp_json(sp), "servicePrincipals", "servicePrincipal")
        if rest == ["appRoleAssignedTo"] and method == "GET":
            self._require_sp_read(caller, tenant, sp)
            items = [shapes.assignment_json(a) for a in tenant.assignments if a.resource_id == sp.object_id]
            return self._page(
                request, items, f"servicePrincipals('{sp.object_id}')/appRoleAssignedTo", "appRoleAssignment"
            )
        if rest == ["appRoleAssignments"] and method == "GET":
            self._require_sp_read(caller, tenant, sp)
            items = [shapes.assignment_json(a) for a in tenant.assignments if a.principal_id == sp.object_id]
            return self._page(
                request, items, f"servicePrincipals('{sp.object_id}')/appRoleAssignments", "appRoleAssignment"
            )
        if rest == ["appRoleAssignedTo"] and method == "POST":
            self._require_grant(caller, sp)
            body = await self._body(request)
            if not isinstance(body, dict):
                raise bad_request("Empty Payload. JSON content expected.", "BadRequest")
            principal_id, resource_id, role_id = (
                _guid_field(body, "principalId"),
                _guid_field(body, "resourceId"),
                _guid_field(body, "appRoleId"),
            )
            if resource_id.lower() != sp.object_id:
                raise bad_request("The resourceId in the request body does not match the service principal in the URL.")
            assignment = self.directory.assign_app_role(tenant, principal_id, resource_id, role_id)
            return json_response(
                {
                    "@odata.context": self.context(f"servicePrincipals('{sp.object_id}')/appRoleAssignedTo/$entity"),
                    **shapes.assignment_json(assignment),
                },
                status=201,
            )
        raise bad_request(
            f"Resource not found for the segment '{rest[-1] if rest else 'servicePrincipals'}'.", "BadRequest"
        )

    def _require_grant(self, caller: Caller, resource: SpRecord) -> None:
        if caller.delegated:
            if "AppRoleAssignment.ReadWrite.All" not in caller.scopes:
                raise denied()
            needed = (
                GRAPH_GRANT_ROLES
                if resource.app_owner_organization_id == MICROSOFT_TENANT_ID
                else GRAPH_GRANT_ROLES | APP_ADMIN_ROLES
            )
            if caller.role_ids & needed:
                return
            raise denied()
        if "AppRoleAssignment.ReadWrite.All" in caller.roles:
            return
        raise denied()


def _guid_field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not _is_guid(value):
        raise bad_request(f"Invalid value specified for property '{name}' of resource 'AppRoleAssignment'.")
    return value


def _is_guid(value: str) -> bool:
    return (
        re.fullmatch(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", value) is not None
    )
