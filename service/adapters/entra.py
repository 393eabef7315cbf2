"""Microsoft Entra ID through azure-identity (async): the rotator's own identity, and the verifier.

The verifier proves a new secret works the way its consumer will use it: a client-credentials token
request, with a fresh credential object each try so that no token cache can answer for it.

Every access token the rotator obtains is registered with the redactor before anyone else sees it: an
endpoint that echoes request headers (a Key Vault error, a proxy page) must not put it in a log.
"""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

import aiohttp
from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions
from azure.core.credentials_async import AsyncSupportsTokenInfo, AsyncTokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.identity.aio import (
    ClientSecretCredential,
    DefaultAzureCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)

from service import redact
from service.adapters.sign_in import sign_in_failed
from service.adapters.transport import AnswerRefused, azure_client_kwargs, proxy_kwargs
from service.config.clouds import Endpoints, IdentityConfig
from service.errors import ConfigError, FailureReason, RemoteError
from service.redact import clip
from service.retry import TRANSIENT_STATUSES
from service.secret import Secret

SERVICE = "entra"
# Sign-in errors that a secret created seconds ago may still get while it replicates through Entra.
_NOT_YET = {"7000215", "7000222", "700016"}
# A token is forgotten by the redactor this long after it expired: it opens nothing any more.
_TOKEN_REMEMBERED = 3600


def register_token(token: str, expires_on: int) -> None:
    """Make the redactor scrub ``token`` (an access token) until a while after it expires."""
    redact.register(token, expires_at=expires_on + _TOKEN_REMEMBERED)


class RedactingCredential:
    """An async azure-identity credential whose every token is registered with the redactor first, and whose
    failure says in one line which sign-in was tried and why it failed (:class:`SignInFailed`, with the fix
    for ``kind``, the config's ``credential.type``)."""

    def __init__(self, inner: AsyncTokenCredential, kind: str = "default") -> None:
        self._inner = inner
        self._kind = kind

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """A token from the wrapped credential, registered with the redactor before it is returned."""
        try:
            token = await self._inner.get_token(
                *scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, **kwargs
            )
        except (ClientAuthenticationError, OSError) as error:
            raise sign_in_failed(self._kind, error) from None  # its dozen lines of SDK text, in one
        register_token(token.token, token.expires_on)
        return token

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        """:meth:`get_token`'s newer form (azure-core's ``AsyncSupportsTokenInfo``), registered the same way."""
        try:
            if isinstance(self._inner, AsyncSupportsTokenInfo):
                info = await self._inner.get_token_info(*scopes, options=options)
            else:
                token = await self._inner.get_token(*scopes, **dict(options or {}))  # type: ignore[arg-type]
                info = AccessTokenInfo(token.token, token.expires_on)
        except (ClientAuthenticationError, OSError) as error:
            raise sign_in_failed(self._kind, error) from None
        register_token(info.token, info.expires_on)
        return info

    async def close(self) -> None:
        """Close the wrapped credential."""
        await self._inner.close()

    async def __aenter__(self) -> RedactingCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _cloud_kwargs(cloud: Endpoints) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"authority": cloud.authority_host}
    if not cloud.known_authority:
        # MSAL would otherwise ask the public cloud to validate an authority it does not know.
        kwargs["disable_instance_discovery"] = True
    return kwargs


def rotator_credential(
    identity: IdentityConfig, cloud: Endpoints, session: aiohttp.ClientSession, default_tenant: str
) -> AsyncTokenCredential:
    """The credential the rotator calls Graph and Key Vault with, its tokens registered with the redactor.

    Tokens are asked per target tenant (``get_token(..., tenant_id=T)``), so every kind allows any tenant
    the identity is consented in.
    """
    return RedactingCredential(_azure_credential(identity, cloud, session, default_tenant), identity.type)


def _azure_credential(
    identity: IdentityConfig, cloud: Endpoints, session: aiohttp.ClientSession, default_tenant: str
) -> AsyncTokenCredential:
    common = {
        **_cloud_kwargs(cloud),
        **azure_client_kwargs(session, cloud.authority_host),
        "additionally_allowed_tenants": ["*"],
    }
    tenant = identity.tenant_id or default_tenant
    if identity.type == "client_secret":
        # Both present: the config's validator checked it.
        assert identity.client_id is not None
        assert identity.client_secret is not None
        return ClientSecretCredential(tenant, identity.client_id, identity.client_secret.resolve().reveal(), **common)
    if identity.type == "workload_identity":
        token_file = identity.token_file or os.environ.get("AZURE_FEDERATED_TOKEN_FILE")
        client_id = identity.client_id or os.environ.get("AZURE_CLIENT_ID")
        if not token_file or not client_id:
            raise ConfigError(
                "credential type workload_identity needs a client id and a token file: set credential.client_id "
                "and credential.token_file, or run in a pod labelled azure.workload.identity/use=true"
            )
        return WorkloadIdentityCredential(
            tenant_id=identity.tenant_id or os.environ.get("AZURE_TENANT_ID") or default_tenant,
            client_id=client_id,
            token_file_path=str(token_file),
            **common,
        )
    if identity.type == "managed_identity":
        return ManagedIdentityCredential(client_id=identity.client_id, **azure_client_kwargs(session))
    return DefaultAzureCredential(
        managed_identity_client_id=identity.client_id,
        exclude_interactive_browser_credential=True,
        **common,
    )


class SingleFlightCredential:
    """Wraps the rotator's credential so that concurrent targets share one token request.

    azure-identity caches tokens, but requests that start before the first answer all go to Entra: a pass
    over 40 targets at once would ask 40 times for the same token. Holding a lock per (scopes, tenant,
    claims) makes the others wait for the first and then hit the credential's cache.
    """

    def __init__(self, inner: AsyncTokenCredential) -> None:
        self._inner = inner
        self._locks: dict[tuple[object, ...], asyncio.Lock] = {}

    def _lock(self, *key: object) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """A token, asked for once however many targets ask at the same time."""
        async with self._lock(scopes, tenant_id, claims, enable_cae):
            return await self._inner.get_token(
                *scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, **kwargs
            )

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        """:meth:`get_token`'s newer form, single-flighted the same way."""
        opts = dict(options or {})
        async with self._lock(scopes, opts.get("tenant_id"), opts.get("claims"), opts.get("enable_cae", False)):
            if isinstance(self._inner, AsyncSupportsTokenInfo):
                return await self._inner.get_token_info(*scopes, options=options)
            token = await self._inner.get_token(*scopes, **opts)  # type: ignore[arg-type]
            return AccessTokenInfo(token.token, token.expires_on)

    async def close(self) -> None:
        """Close the wrapped credential."""
        await self._inner.close()

    async def __aenter__(self) -> SingleFlightCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def aadsts_code(message: str) -> str | None:
    """The number of the first ``AADSTS<n>`` error code in ``message`` (Entra's sign-in errors), or None."""
    match = re.search(r"AADSTS(\d+)", message)
    return match.group(1) if match else None


class EntraVerifier:
    """:class:`service.ports.Verifier`: does this secret get a token?"""

    def __init__(self, cloud: Endpoints, session: aiohttp.ClientSession) -> None:
        self._cloud = cloud
        self._session = session
        self._proxy = proxy_kwargs(cloud.authority_host)  # looked up once, not per try

    async def try_token(self, tenant_id: str, client_id: str, secret: Secret) -> None:
        """:meth:`service.ports.Verifier.try_token`: one client-credentials request with a fresh credential object."""
        target = f"app {client_id} in tenant {tenant_id}"
        credential = ClientSecretCredential(
            tenant_id,
            client_id,
            secret.reveal(),
            **_cloud_kwargs(self._cloud),
            **azure_client_kwargs(self._session),
            **self._proxy,
        )
        try:
            token = await credential.get_token(self._cloud.graph_scope)
            register_token(token.token, token.expires_on)
        except ClientAuthenticationError as exc:
            code = aadsts_code(exc.message or "")
            raise RemoteError(
                clip(_first_sentence(exc.message or "the token request was refused")),
                service=SERVICE,
                target=target,
                reason=FailureReason.VERIFICATION_FAILED,
                transient=code in _NOT_YET,
                code=f"AADSTS{code}" if code else None,
                status=getattr(exc, "status_code", None),
            ) from None
        except HttpResponseError as exc:
            # An answer azure-identity could not read (DecodeError): its text holds the whole body, never shown.
            status = exc.status_code
            raise RemoteError(
                f"the token endpoint answered {status} with a body that is not a token answer",
                service=SERVICE,
                target=target,
                reason=FailureReason.VERIFICATION_FAILED,
                transient=status in TRANSIENT_STATUSES,
                status=status,
            ) from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise RemoteError(
                f"token request failed: {type(exc).__name__}",
                service=SERVICE,
                target=target,
                reason=FailureReason.VERIFICATION_FAILED,
                transient=True,
            ) from None
        except AnswerRefused as exc:
            raise RemoteError(
                f"token request: {exc}",
                service=SERVICE,
                target=target,
                reason=FailureReason.VERIFICATION_FAILED,
                transient=False,
                status=exc.status,
                hint="something other than Entra answered: check cloud.authority_host and any proxy (HTTPS_PROXY)",
            ) from None
        finally:
            await credential.close()


def _first_sentence(message: str) -> str:
    """The AADSTS line without trace ids and the long tail azure-identity appends."""
    for line in message.splitlines():
        if "AADSTS" in line:
            return line.split(" Trace ID:")[0].strip()
    return message.splitlines()[0] if message else message
