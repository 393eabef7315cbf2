"""The Entra ID (login.microsoftonline.com) side: discovery, keys, and the v2.0 token endpoint.

Supported grants: client credentials with a client secret (form field or HTTP Basic) or with a
federated client assertion (workload identity), the device code flow for a delegated admin sign-in,
and the refresh token that sign-in brings, redeemed for any resource (MSAL's silent requests). Errors
carry Entra's body (error, error_description with the AADSTS code and trace lines, error_codes,
timestamp, trace_id, correlation_id, error_uri) and status codes.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from service.emulator.directory import (
    GRAPH_APP_ID,
    GRAPH_RESOURCE,
    KEY_VAULT_APP_ID,
    KEY_VAULT_RESOURCE,
    AppRecord,
    Directory,
    SecretCheck,
    Tenant,
    UserRecord,
    register_issued,
    register_issued_token,
)
from service.emulator.tokens import TokenError, TokenSigner, decode_unverified
from service.emulator.wire import TENANT_ID, json_response, new_request_id

TOKEN_LIFETIME_SECONDS = 3599
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
REFRESH_TOKEN_GRANT = "refresh_token"
# Entra's refresh tokens expire after 90 days without use; each redemption brings a new one, and the
# one redeemed stays valid too (learn.microsoft.com/entra/identity-platform/refresh-tokens).
REFRESH_TOKEN_MAX_INACTIVE = timedelta(days=90)
# OpenID Connect's permissions are Microsoft Graph's: a Graph token's answer lists them, others' do not.
GRAPH_OIDC_SCOPES = ("profile", "openid", "email")
# Each scope's resource: the URI and the appId forms both name the same resource.
RESOURCES: dict[str, str] = {
    GRAPH_RESOURCE: GRAPH_RESOURCE,
    GRAPH_APP_ID: GRAPH_RESOURCE,
    "https://graph.microsoft.com/": GRAPH_RESOURCE,
    KEY_VAULT_RESOURCE: KEY_VAULT_RESOURCE,
    KEY_VAULT_APP_ID: KEY_VAULT_RESOURCE,
}
# First-party public clients Entra knows in every tenant (Azure CLI, Azure PowerShell, Graph CLI tools).
FIRST_PARTY_PUBLIC_CLIENTS: dict[str, str] = {
    "04b07795-8ddb-461a-bbee-02f9e1bf7b46": "Microsoft Azure CLI",
    "1950a258-227b-4e31-a9cf-717495945fc2": "Microsoft Azure PowerShell",
    "14d82eec-204b-4c2f-b7e8-296a70dab67e": "Microsoft Graph Command Line Tools",
}
# What an admin's delegated token for Graph's `.default` carries: the permissions consented for the
# public client the emulator pretends the admin signed in with.
DEFAULT_DELEGATED_SCOPES = (
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "DelegatedPermissionGrant.ReadWrite.All",
    "Directory.Read.All",
    "Policy.Read.All",
    "User.Read",
)
# Every member user's `wids` holds the "default user" role template.
DEFAULT_USER_ROLE = "b79fbf4d-3ef9-4689-8143-76b194e85509"
OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})


class EntraError(Exception):
    """An Entra error answer."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(f"AADSTS{code}: {description}")
        self.status = status
        self.error = error
        self.code = code
        self.description = description


def error_body(base_url: str, now: datetime, error: str, code: int, description: str) -> dict[str, Any]:
    trace_id, correlation_id = new_request_id(), new_request_id()
    stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
    return {
        "error": error,
        "error_description": (
            f"AADSTS{code}: {description} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {stamp}"
        ),
        "error_codes": [code],
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"{base_url}/error?code={code}",
    }


def tenant_not_found(tenant_id: str) -> EntraError:
    return EntraError(
        400,
        "invalid_request",
        90002,
        f"Tenant '{tenant_id}' not found. Check to make sure you have the correct tenant ID and are signing "
        "into the correct cloud. Check with your subscription administrator, this may happen if there are "
        "no active subscriptions for the tenant.",
    )


def app_not_found(client_id: str, tenant_id: str) -> EntraError:
    return EntraError(
        400,
        "unauthorized_client",
        700016,
        f"Application with identifier '{client_id}' was not found in the directory '{tenant_id}'. This can "
        "happen if the application has not been installed by the administrator of the tenant or consented "
        "to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
    )


def invalid_secret(client_id: str) -> EntraError:
    return EntraError(
        401,
        "invalid_client",
        7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
        f"value, not the client secret ID, for a secret added to app '{client_id}'.",
    )


def expired_secret(client_id: str) -> EntraError:
    return EntraError(
        401,
        "invalid_client",
        7000222,
        f"The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to "
        "create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate "
        "credentials for added security: https://aka.ms/certCreds.",
    )


def invalid_refresh_token() -> EntraError:
    return EntraError(
        400,
        "invalid_grant",
        70000,
        "The provided value for the input parameter 'refresh_token' or 'assertion' is not valid.",
    )


def expired_refresh_token(issued_at: datetime) -> EntraError:
    days = REFRESH_TOKEN_MAX_INACTIVE.days
    return EntraError(
        400,
        "invalid_grant",
        700082,
        "The refresh token has expired due to inactivity. The token was issued on "
        f"{issued_at:%Y-%m-%dT%H:%M:%S}.{issued_at.microsecond:06d}0Z and was inactive for {days}.00:00:00.",
    )


def granted_scope(resource: str, permissions: list[str], *, default: bool) -> str:
    """A token answer's `scope`, as Entra writes it.

    Each permission carries its resource; a `.default` request is answered with the permissions it stood
    for and `.default` itself (Key Vault: `https://vault.azure.net/user_impersonation
    https://vault.azure.net/.default`). MSAL files the access token under these scopes, so its next silent
    request for `.default` finds it. `offline_access` is never listed, though a refresh token comes along.
    """
    listed = [f"{resource}/{name}" for name in permissions]
    if default:
        listed.append(f"{resource}/.default")
    if resource == GRAPH_RESOURCE:
        listed = [*GRAPH_OIDC_SCOPES, *listed]
    return " ".join(listed)


@dataclass
class DeviceFlow:
    tenant_id: str
    client_id: str
    scopes: list[str]
    expires_at: float
    polls: int = 0


@dataclass(frozen=True)
class RefreshGrant:
    """What an (opaque) refresh token stands for: a user's sign-in to one public client."""

    tenant_id: str
    user_object_id: str
    client_id: str
    issued_at: datetime


class EntraService:
    """Serves `/{tenant}/...` and the keys; mints tokens from the shared directory."""

    def __init__(self, directory: Directory, signer: TokenSigner, base_url: Callable[[], str]) -> None:
        self.directory = directory
        self.signer = signer
        self.base_url = base_url
        self.device_flows: dict[str, DeviceFlow] = {}
        self.refresh_tokens: dict[str, RefreshGrant] = {}

    # -- issuers -----------------------------------------------------------------------------------

    def issuer_v2(self, tenant_id: str) -> str:
        return f"{self.base_url()}/{tenant_id}/v2.0"

    def issuer_v1(self, tenant_id: str) -> str:
        # The shape of Entra's v1 issuer (https://sts.windows.net/{tid}/) on the emulator's host.
        return f"{self.base_url()}/{tenant_id}/"

    def access_token_issuers(self) -> Callable[[str], set[str]]:
        return lambda tid: {self.issuer_v1(tid), self.issuer_v2(tid)}

    # -- routing -----------------------------------------------------------------------------------

    async def handle(self, request: web.Request, segments: list[str]) -> web.StreamResponse:
        now = self.directory.clock.now()
        try:
            return await self._route(request, segments)
        except EntraError as exc:
            return json_response(
                error_body(self.base_url(), now, exc.error, exc.code, exc.description), status=exc.status
            )

    async def _route(self, request: web.Request, segments: list[str]) -> web.StreamResponse:
        method = request.method
        if not segments:
            raise web.HTTPNotFound()
        tenant_ref, rest = segments[0], segments[1:]
        if rest in (["discovery", "keys"], ["discovery", "v2.0", "keys"]) and method == "GET":
            return json_response(self.signer.jwks())
        if tenant_ref == "common" and rest == ["discovery", "instance"] and method == "GET":
            return self._instance_discovery(request)
        request[TENANT_ID] = tenant_ref
        if method == "GET" and rest in (
            ["v2.0", ".well-known", "openid-configuration"],
            [".well-known", "openid-configuration"],
        ):
            return json_response(self._openid_configuration(tenant_ref, v2=rest[0] == "v2.0"))
        if method == "POST" and rest == ["oauth2", "v2.0", "token"]:
            return await self._token(request, tenant_ref)
        if method == "POST" and rest == ["oauth2", "v2.0", "devicecode"]:
            return await self._device_code(request, tenant_ref)
        raise web.HTTPNotFound()

    def _tenant(self, tenant_ref: str) -> Tenant:
        ref = tenant_ref.lower()
        tenant = self.directory.tenant(ref)
        if tenant is None:
            tenant = next((t for t in self.directory.tenants.values() if t.domain == ref), None)
        if tenant is None:
            raise tenant_not_found(tenant_ref)
        return tenant

    # -- discovery ---------------------------------------------------------------------------------

    def _instance_discovery(self, request: web.Request) -> web.Response:
        base = self.base_url()
        host = urllib.parse.urlsplit(base).netloc
        return json_response(
            {
                "tenant_discovery_endpoint": f"{base}/common/v2.0/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
            }
        )

    def _openid_configuration(self, tenant_ref: str, *, v2: bool) -> dict[str, Any]:
        tenant = self._tenant(tenant_ref)
        base, tid = self.base_url(), tenant.tenant_id
        return {
            "token_endpoint": f"{base}/{tid}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{base}/{tid}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": self.issuer_v2(tid) if v2 else self.issuer_v1(tid),
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{base}/oidc/userinfo",
            "authorization_endpoint": f"{base}/{tid}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/{tid}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/{tid}/oauth2/v2.0/logout",
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "acr",
                "nonce",
                "preferred_username",
                "name",
                "tid",
                "ver",
                "at_hash",
                "c_hash",
                "email",
            ],
            "kerberos_endpoint": f"{base}/{tid}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": urllib.parse.urlsplit(base).netloc,
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }

    # -- token endpoint ----------------------------------------------------------------------------

    async def _form(self, request: web.Request) -> dict[str, str]:
        form = await request.post()
        return {key: str(value) for key, value in form.items()}

    async def _token(self, request: web.Request, tenant_ref: str) -> web.Response:
        form = await self._form(request)
        basic_id, basic_secret = _basic_auth(request)
        grant = form.get("grant_type")
        if not grant:
            raise EntraError(
                400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'."
            )
        tenant = self._tenant(tenant_ref)
        request[TENANT_ID] = tenant.tenant_id
        client_id = (form.get("client_id") or basic_id or "").lower()
        if grant == "client_credentials":
            return self._client_credentials(tenant, client_id, form, basic_secret)
        if grant == DEVICE_CODE_GRANT:
            return self._device_code_token(tenant, client_id, form)
        if grant == REFRESH_TOKEN_GRANT:
            return self._refresh_token_grant(tenant, client_id, form)
        raise EntraError(
            400,
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant}'.",
        )

    def _resource_for(self, scope: str, *, client_credentials: bool) -> tuple[str, str, list[str]]:
        """(resource, audience as requested, delegated permission names) for a scope string."""
        names: list[str] = []
        resource: str | None = None
        audience = ""
        for item in scope.split():
            if item in OIDC_SCOPES:
                continue
            base, _, permission = item.rstrip("/").rpartition("/")
            if not base:
                base, permission = item, ""
            base = base.rstrip("/")
            if base not in RESOURCES:
                raise EntraError(
                    400,
                    "invalid_resource",
                    500011,
                    f"The resource principal named {base} was not found in the tenant. This can happen if "
                    "the application has not been installed by the administrator of the tenant or "
                    "consented to by any user in the tenant. You might have sent your authentication "
                    "request to the wrong tenant.",
                )
            if client_credentials and permission != ".default":
                raise EntraError(
                    400,
                    "invalid_scope",
                    1002012,
                    f"The provided value for scope {item} is not valid. Client credential flows must have a "
                    "scope value with /.default suffixed to the resource identifier (application ID URI).",
                )
            resource = RESOURCES[base]
            audience = base if base in (GRAPH_APP_ID, KEY_VAULT_APP_ID) else resource
            if permission and permission != ".default":
                names.append(permission)
        if resource is None:
            raise EntraError(
                400,
                "invalid_request",
                90014,
                "The required field 'scope' is missing from the credential. Ensure that you have all the "
                "necessary parameters for the login request.",
            )
        return resource, audience, names

    def _client_credentials(
        self, tenant: Tenant, client_id: str, form: dict[str, str], basic_secret: str | None
    ) -> web.Response:
        if not client_id:
            raise EntraError(
                400, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'."
            )
        resource, audience, _ = self._resource_for(form.get("scope", ""), client_credentials=True)
        with self.directory.lock:
            app = self.directory.app_by_app_id(tenant, client_id)
            if app is None:
                raise app_not_found(client_id, tenant.tenant_id)
            secret = form.get("client_secret") or basic_secret
            assertion = form.get("client_assertion")
            if secret:
                check = self.directory.sign_in(tenant, app, secret)
                if check is SecretCheck.EXPIRED:
                    raise expired_secret(client_id)
                if check is SecretCheck.INVALID:
                    raise invalid_secret(client_id)
            elif assertion:
                if form.get("client_assertion_type") != JWT_BEARER:
                    raise EntraError(
                        400,
                        "invalid_request",
                        7000216,
                        "'client_assertion', 'client_secret' or 'request' is required for the "
                        "'client_credentials' grant type.",
                    )
                self._check_assertion(tenant, app, assertion)
            else:
                raise EntraError(
                    401,
                    "invalid_client",
                    7000218,
                    "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                )
            sp = self.directory.sp_by_app_id(tenant, app.app_id)
            if sp is None:
                raise EntraError(
                    400,
                    "invalid_client",
                    7000229,
                    f"The client application {app.app_id} is missing service principal in the tenant "
                    f"{tenant.tenant_id}.",
                )
            roles: list[str] = []
            if resource == GRAPH_RESOURCE:
                roles = self.directory.roles_of(tenant, sp.object_id, self.directory.graph_sp(tenant).object_id)
            claims = self._app_claims(tenant, app, sp.object_id, audience, roles)
        return self._token_response(claims)

    def _check_assertion(self, tenant: Tenant, app: AppRecord, assertion: str) -> None:
        try:
            _, claims = decode_unverified(assertion)
        except TokenError as exc:
            raise EntraError(400, "invalid_client", 50027, f"JWT token is invalid or malformed ({exc}).") from exc
        now = self.directory.clock.now().timestamp()
        exp = claims.get("exp")
        if isinstance(exp, int | float) and exp < now:
            raise EntraError(
                400,
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range.",
            )
        issuer, subject = str(claims.get("iss", "")), str(claims.get("sub", ""))
        audiences = claims.get("aud")
        aud_list = [str(a) for a in audiences] if isinstance(audiences, list) else [str(audiences)]
        for cred in app.federated:
            if cred.issuer == issuer and cred.subject == subject and set(aud_list) & set(cred.audiences):
                return
        raise EntraError(
            400,
            "invalid_client",
            70021,
            "No matching federated identity record found for presented assertion. Assertion Issuer: "
            f"'{issuer}'. Assertion Subject: '{subject}'. Assertion Audience: '{','.join(aud_list)}'.",
        )

    def _base_claims(self, tenant: Tenant, audience: str, lifetime: int) -> dict[str, Any]:
        now = int(self.directory.clock.now().timestamp())
        return {
            "aud": audience,
            "iss": self.issuer_v1(tenant.tenant_id),
            "iat": now,
            "nbf": now,
            "exp": now + lifetime + 1,
            "tid": tenant.tenant_id,
            "uti": secrets.token_urlsafe(16),
            "ver": "1.0",
        }

    def _app_claims(
        self, tenant: Tenant, app: AppRecord, sp_object_id: str, audience: str, roles: list[str]
    ) -> dict[str, Any]:
        claims = self._base_claims(tenant, audience, TOKEN_LIFETIME_SECONDS)
        claims.update(
            {
                "app_displayname": app.display_name,
                "appid": app.app_id,
                "appidacr": "1",
                "azp": app.app_id,
                "azpacr": "1",
                "idp": self.issuer_v1(tenant.tenant_id),
                "idtyp": "app",
                "oid": sp_object_id,
                "sub": sp_object_id,
            }
        )
        if roles:
            claims["roles"] = roles
        return claims

    def _token_response(self, claims: dict[str, Any], **extra: Any) -> web.Response:
        access_token = self.signer.sign(claims)
        register_issued_token(access_token)
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_SECONDS,
            "ext_expires_in": TOKEN_LIFETIME_SECONDS,
            "access_token": access_token,
        }
        body.update(extra)
        return json_response(body, headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})

    # -- device code flow --------------------------------------------------------------------------

    def _public_client_name(self, tenant: Tenant, client_id: str) -> str:
        if client_id in FIRST_PARTY_PUBLIC_CLIENTS:
            return FIRST_PARTY_PUBLIC_CLIENTS[client_id]
        app = self.directory.app_by_app_id(tenant, client_id)
        if app is None:
            raise app_not_found(client_id, tenant.tenant_id)
        return app.display_name

    async def _device_code(self, request: web.Request, tenant_ref: str) -> web.Response:
        form = await self._form(request)
        tenant = self._tenant(tenant_ref)
        request[TENANT_ID] = tenant.tenant_id
        client_id = form.get("client_id", "").lower()
        self._public_client_name(tenant, client_id)
        scopes = form.get("scope", "").split()
        self._resource_for(" ".join(scopes), client_credentials=False)
        device_code = secrets.token_urlsafe(48)
        user_code = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(9))
        self.device_flows[device_code] = DeviceFlow(
            tenant_id=tenant.tenant_id,
            client_id=client_id,
            scopes=scopes,
            expires_at=self.directory.clock.now().timestamp() + 900,
        )
        return json_response(
            {
                "user_code": user_code,
                "device_code": device_code,
                "verification_uri": "https://microsoft.com/devicelogin",
                "expires_in": 900,
                # Entra says 5; one second keeps a test's single pending poll short.
                "interval": 1,
                "message": (
                    "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and "
                    f"enter the code {user_code} to authenticate."
                ),
            }
        )

    def _device_code_token(self, tenant: Tenant, client_id: str, form: dict[str, str]) -> web.Response:
        flow = self.device_flows.get(form.get("device_code", ""))
        if flow is None or flow.tenant_id != tenant.tenant_id or flow.client_id != client_id:
            raise EntraError(
                400,
                "invalid_grant",
                70000,
                "Provided grant is invalid or malformed.",
            )
        if self.directory.clock.now().timestamp() > flow.expires_at:
            raise EntraError(
                400,
                "expired_token",
                70020,
                "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
            )
        flow.polls += 1
        if flow.polls == 1:
            raise EntraError(
                400,
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            )
        # The user who "approved" the code: the tenant's chosen device sign-in user, else its first.
        user = self.directory.device_sign_in_user(tenant)
        if user is None:
            raise EntraError(400, "invalid_grant", 50034, "The user account does not exist in the directory.")
        del self.device_flows[form["device_code"]]
        return self._delegated_token(tenant, user, client_id, " ".join(flow.scopes))

    # -- refresh tokens ----------------------------------------------------------------------------

    def _refresh_token_grant(self, tenant: Tenant, client_id: str, form: dict[str, str]) -> web.Response:
        presented = form.get("refresh_token", "")
        if not presented:
            raise EntraError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'refresh_token'.",
            )
        grant = self.refresh_tokens.get(presented)
        # Entra binds a refresh token to user and client only; the emulator's users have no guest
        # accounts in other tenants, so one tenant's token is no good at another's endpoint.
        if grant is None or grant.client_id != client_id or grant.tenant_id != tenant.tenant_id:
            raise invalid_refresh_token()
        if self.directory.clock.now() >= grant.issued_at + REFRESH_TOKEN_MAX_INACTIVE:
            raise expired_refresh_token(grant.issued_at)
        with self.directory.lock:
            user = tenant.users.get(grant.user_object_id)
        if user is None:
            raise invalid_refresh_token()
        return self._delegated_token(tenant, user, client_id, form.get("scope", ""))

    def _new_refresh_token(self, tenant: Tenant, user: UserRecord, client_id: str) -> str:
        token = "1.A" + secrets.token_urlsafe(96)
        self.refresh_tokens[token] = RefreshGrant(
            tenant_id=tenant.tenant_id,
            user_object_id=user.object_id,
            client_id=client_id,
            issued_at=self.directory.clock.now(),
        )
        # A refresh token is a credential for 90 days: the canary set catches it in any output.
        register_issued(token)
        return token

    # -- delegated tokens --------------------------------------------------------------------------

    def _delegated_token(self, tenant: Tenant, user: UserRecord, client_id: str, scope: str) -> web.Response:
        """A user's access token for the scope's resource, with a new refresh token, ID token and client_info."""
        resource, audience, names = self._resource_for(scope, client_credentials=False)
        with self.directory.lock:
            client_name = self._public_client_name(tenant, client_id)
        scp = names or (list(DEFAULT_DELEGATED_SCOPES) if resource == GRAPH_RESOURCE else ["user_impersonation"])
        claims = self._user_claims(tenant, user, client_id, client_name, audience, scp)
        return self._token_response(
            claims,
            scope=granted_scope(resource, scp, default=not names),
            refresh_token=self._new_refresh_token(tenant, user, client_id),
            id_token=self._id_token(tenant, user, client_id),
            client_info=base64.urlsafe_b64encode(json.dumps({"uid": user.object_id, "utid": tenant.tenant_id}).encode())
            .decode()
            .rstrip("="),
        )

    def _user_claims(
        self, tenant: Tenant, user: UserRecord, client_id: str, client_name: str, audience: str, scp: list[str]
    ) -> dict[str, Any]:
        claims = self._base_claims(tenant, audience, TOKEN_LIFETIME_SECONDS)
        claims.update(
            {
                "acr": "1",
                "amr": ["pwd", "mfa"],
                "app_displayname": client_name,
                "appid": client_id,
                "appidacr": "0",
                "idtyp": "user",
                "name": user.display_name,
                "oid": user.object_id,
                "scp": " ".join(scp),
                "sub": user.object_id,
                "unique_name": user.upn,
                "upn": user.upn,
                "wids": [*user.role_ids, DEFAULT_USER_ROLE],
            }
        )
        return claims

    def _id_token(self, tenant: Tenant, user: UserRecord, client_id: str) -> str:
        now = int(self.directory.clock.now().timestamp())
        return self.signer.sign(
            {
                "aud": client_id,
                "iss": self.issuer_v2(tenant.tenant_id),
                "iat": now,
                "nbf": now,
                "exp": now + TOKEN_LIFETIME_SECONDS,
                "name": user.display_name,
                "oid": user.object_id,
                "preferred_username": user.upn,
                "sub": user.object_id,
                "tid": tenant.tenant_id,
                "ver": "2.0",
            }
        )


def _basic_auth(request: web.Request) -> tuple[str | None, str | None]:
    """client_secret_basic: both halves are form-urlencoded before base64 (RFC 6749 2.3.1)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None, None
    try:
        decoded = base64.b64decode(value.strip()).decode()
    except ValueError:
        return None, None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None, None
    return urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(password)
