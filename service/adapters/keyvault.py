"""Azure Key Vault secrets through azure-keyvault-secrets (async): versions, values, new versions.

One :class:`KeyVault` per vault in a pass, shared by every target that writes to it, so the vault's
401 challenge and the token are paid once. Redirects are never followed (transport.py): a vault that
answers 3xx to a write has not written. Error text is the vault's structured code and message, clipped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar
from urllib.parse import urlsplit

import aiohttp
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.keyvault.secrets import SecretProperties
from azure.keyvault.secrets.aio import SecretClient

from service.adapters.sign_in import SIGN_IN_CLIP
from service.adapters.transport import AnswerRefused, azure_client_kwargs, host_of
from service.adapters.utc import as_utc
from service.config.fields import is_loopback
from service.errors import ConfigError, FailureReason, RemoteError
from service.metrics import DEFAULT as DEFAULT_METRICS
from service.metrics import Metrics
from service.ports import VaultVersion
from service.redact import clip
from service.retry import TRANSIENT_STATUSES, RetryPolicy, parse_retry_after, retrying
from service.secret import Secret

T = TypeVar("T")
SERVICE = "keyvault"


def secret_client(
    vault_url: str, credential: AsyncTokenCredential, session: aiohttp.ClientSession, *, verify_challenge_resource: bool
) -> SecretClient:
    """The SDK's client for one vault; an unverified challenge only for an emulator on loopback."""
    if not verify_challenge_resource and not is_loopback(urlsplit(vault_url).hostname):
        # The config refuses it too; this keeps any other caller from sending tokens where a challenge says.
        raise ConfigError(
            f"verify_challenge_resource: false is refused for {vault_url}: only an emulator on loopback may skip it"
        )
    return SecretClient(
        vault_url,
        credential,
        verify_challenge_resource=verify_challenge_resource,
        **azure_client_kwargs(session),
    )



def _version(properties: SecretProperties) -> VaultVersion:
    return VaultVersion(
        version=properties.version or "",
        created=as_utc(properties.created_on),
        expires_on=as_utc(properties.expires_on),
        enabled=properties.enabled is not False,
        tags=dict(properties.tags or {}),
    )


def translate(exc: BaseException, *, target: str, operation: str) -> RemoteError:
    """A Key Vault SDK failure as a :class:`RemoteError` with its reason, whether it is transient and a hint;
    anything that is no SDK failure is raised again as it is.
    """
    if isinstance(exc, AnswerRefused):
        return RemoteError(
            f"{operation}: {exc}", service=SERVICE, target=target, reason=FailureReason.SINK_FAILED, transient=False,
            status=exc.status,
            hint="something other than the vault answered: check vault_url and any proxy (HTTPS_PROXY/NO_PROXY)",
        )
    if isinstance(exc, ClientAuthenticationError) and getattr(exc, "status_code", None) is None:
        # Raised by the credential, not by the vault: the rotator could not sign in.
        return RemoteError(
            f"the rotator could not get a token for Key Vault: {clip(exc.message, SIGN_IN_CLIP)}",
            service="entra", target=target, reason=FailureReason.PERMISSION_DENIED, transient=False,
            hint=getattr(exc, "hint", None)
            or "check the rotator's own credential (credential: in the config, workload identity federation)",
        )
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        code = clip(exc.error.code, 100) if exc.error and exc.error.code else None
        headers = getattr(exc.response, "headers", None) or {}
        reason, hint = FailureReason.SINK_FAILED, None
        if status is not None and 300 <= status < 400:
            # Never followed (permit_redirects=False): nothing was written, wherever it pointed.
            where = host_of(headers.get("Location")) or "nowhere"
            return RemoteError(
                f"{operation}: the vault answered {status}, a redirect to {where}; redirects are never followed",
                service=SERVICE, target=target, reason=FailureReason.SINK_FAILED, transient=False, status=status,
                hint="a vault never redirects: check vault_url and any proxy (HTTPS_PROXY/NO_PROXY)",
            )
        if status in (401, 403):
            reason = FailureReason.PERMISSION_DENIED
            hint = ("assign the rotator Key Vault Secrets Officer at this secret's scope (not the vault's, which "
                    "reaches every secret in it), or a get/list/set access policy")
        elif status == 404:
            reason = FailureReason.NOT_FOUND
            hint = "check vault_url and secret_name"
        elif status == 429:
            reason = FailureReason.THROTTLED
        # The structured message only: str(exc) appends the whole body when it is not Key Vault's error JSON.
        if exc.error and exc.error.message:
            message = clip(exc.error.message)
        elif status is not None and status < 300:
            message = "the vault's answer could not be read"  # a DecodeError: its text holds the body, not shown
        else:
            message = f"the vault answered {status}"
        return RemoteError(
            f"{operation}: {message}",
            service=SERVICE, target=target, reason=reason, transient=status in TRANSIENT_STATUSES,
            status=status, code=code, retry_after=parse_retry_after(headers.get("Retry-After")), hint=hint,
        )
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return RemoteError(
            f"{operation}: {type(exc).__name__}: {clip(exc.message)}",
            service=SERVICE, target=target, reason=FailureReason.SINK_FAILED, transient=True,
            hint="network trouble reaching the vault (DNS, firewall, private endpoint?); the next pass tries again",
        )
    raise exc


class KeyVault:
    """:class:`service.ports.Vault` for one vault."""

    def __init__(
        self, client: SecretClient, vault_url: str, retry: RetryPolicy, metrics: Metrics = DEFAULT_METRICS
    ) -> None:
        self._client = client
        self._vault_url = vault_url
        self._retry = retry
        self._metrics = metrics

    async def _call(self, call: Callable[[], Awaitable[T]], name: str, operation: str) -> T:
        target = f"{self._vault_url}/secrets/{name}"

        async def once() -> T:
            try:
                return await call()
            except (HttpResponseError, ServiceRequestError, ServiceResponseError, AnswerRefused) as exc:
                raise translate(exc, target=target, operation=operation) from None
            except ValueError as exc:
                if "challenge resource" not in str(exc):
                    raise
                # The vault's 401 challenge named a resource outside the vault's domain.
                raise RemoteError(
                    f"{operation}: the vault's authentication challenge does not match its URL",
                    service=SERVICE, target=target, reason=FailureReason.CONFIG_ERROR, transient=False,
                    hint="check vault_url; set verify_challenge_resource: false only for an emulator",
                ) from None

        return await retrying(once, self._retry, observe=self._metrics.observer(SERVICE, operation))

    async def list_versions(self, name: str) -> list[VaultVersion]:
        """:meth:`service.ports.Vault.list_versions`; [] for a secret that does not exist."""
        async def listing() -> list[VaultVersion]:
            return [_version(p) async for p in self._client.list_properties_of_secret_versions(name)]

        try:
            return await self._call(listing, name, "list versions")
        except RemoteError as error:
            if error.status == 404:
                return []
            raise

    async def read_latest(self, name: str) -> VaultVersion:
        # The SDK has no "properties of the latest version" call; the value comes along and is dropped.
        """:meth:`service.ports.Vault.read_latest`."""
        bundle = await self._call(lambda: self._client.get_secret(name), name, "read the latest version")
        return _version(bundle.properties)

    async def read_value(self, name: str, version: str | None = None) -> Secret:
        """:meth:`service.ports.Vault.read_value`, masked."""
        bundle = await self._call(lambda: self._client.get_secret(name, version), name, "read the secret")
        if not bundle.value:
            raise RemoteError(
                "the secret version has no value", service=SERVICE, target=f"{self._vault_url}/secrets/{name}",
                reason=FailureReason.SINK_FAILED, transient=False,
            )
        return Secret(bundle.value)

    async def write(self, name: str, value: Secret, expires_on: datetime | None, tags: dict[str, str]) -> VaultVersion:
        """:meth:`service.ports.Vault.write`: a new version, content type ``client-secret``."""
        written = await self._call(
            lambda: self._client.set_secret(
                name, value.reveal(), expires_on=expires_on, tags=tags, content_type="client-secret"
            ),
            name,
            "write a new version",
        )
        return _version(written.properties)
