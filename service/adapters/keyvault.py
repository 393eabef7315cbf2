"""Azure Key Vault secrets through azure-keyvault-secrets (async): versions, values, new versions.

One :class:`KeyVault` per vault in a pass, shared by every target that writes to it, so the vault's
401 challenge and the token are paid once. Redirects are never followed (transport.py): a vault that
answers 3xx to a write has not written. Error text is the vault's structured code and message, clipped.

The current version of many secrets comes from one listing of the vault per pass (``GET /secrets``, 25 a
page, every nextLink followed), started by the first :meth:`KeyVault.current` and shared by all: each
caller is answered as soon as the page naming its secret arrives. The listing is not used when fewer than
two targets of the pass read the vault, and given up (:class:`service.ports.NotListed`: read the secret
itself) when the vault refuses it (a role on single secrets cannot list the vault) or when the vault holds
so many other secrets that listing costs more than reading the pass's own one by one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
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
from azure.core.rest import HttpRequest
from azure.keyvault.secrets import SecretProperties
from azure.keyvault.secrets.aio import SecretClient

from service.adapters.budget import VAULT_LIMIT, Budget
from service.adapters.sign_in import SIGN_IN_CLIP
from service.adapters.transport import AnswerRefused, azure_client_kwargs, host_of
from service.adapters.utc import as_utc
from service.config.fields import is_loopback
from service.errors import ConfigError, FailureReason, RemoteError
from service.metrics import DEFAULT as DEFAULT_METRICS
from service.metrics import Metrics
from service.ports import NotListed, VaultVersion
from service.redact import clip
from service.retry import TRANSIENT_STATUSES, RetryPolicy, parse_retry_after, retrying
from service.secret import Secret

T = TypeVar("T")
SERVICE = "keyvault"
PAGE = 25  # secrets a listing page holds at most (Key Vault's limit)


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
        **azure_client_kwargs(session, vault_url),
    )


def _version(properties: SecretProperties) -> VaultVersion:
    return VaultVersion(
        version=properties.version or "",
        created=as_utc(properties.created_on),
        expires_on=as_utc(properties.expires_on),
        enabled=properties.enabled is not False,
        tags=dict(properties.tags or {}),
    )


def _listing_page(data: object, vault_url: str, target: str) -> tuple[list[tuple[VaultVersion, str]], str | None]:
    """A page of ``GET /secrets``: each secret's current version (no version id) and name, and the nextLink,
    which must stay on the vault (a token is sent along)."""

    def unreadable(what: str) -> RemoteError:
        return RemoteError(
            f"the vault's listing {what}",
            service=SERVICE,
            target=target,
            reason=FailureReason.SINK_FAILED,
            transient=False,
        )

    if not isinstance(data, dict) or not isinstance(data.get("value"), list):
        raise unreadable("is not a page of secrets")
    items = []
    for item in data["value"]:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or "/secrets/" not in item["id"]:
            raise unreadable("holds an item that is not a secret")
        attributes = item["attributes"] if isinstance(item.get("attributes"), dict) else {}
        tags = item["tags"] if isinstance(item.get("tags"), dict) else {}
        items.append(
            (
                VaultVersion(
                    version="",
                    created=_unix(attributes.get("created")),
                    expires_on=_unix(attributes.get("exp")),
                    enabled=attributes.get("enabled") is not False,
                    tags={str(k): str(v) for k, v in tags.items()},
                ),
                item["id"].split("/secrets/", 1)[1].split("/", 1)[0],
            )
        )
    next_link = data.get("nextLink")
    if next_link is not None and (not isinstance(next_link, str) or _origin(next_link) != _origin(vault_url)):
        raise unreadable("points its next page away from the vault")
    return items, next_link or None


def _unix(value: object) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int | float) else None


def _origin(url: str) -> tuple[str, str | None, int]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def translate(exc: BaseException, *, target: str, operation: str) -> RemoteError:
    """A Key Vault SDK failure as a :class:`RemoteError` with its reason, whether it is transient and a hint;
    anything that is no SDK failure is raised again as it is.
    """
    if isinstance(exc, AnswerRefused):
        return RemoteError(
            f"{operation}: {exc}",
            service=SERVICE,
            target=target,
            reason=FailureReason.SINK_FAILED,
            transient=False,
            status=exc.status,
            hint="something other than the vault answered: check vault_url and any proxy (HTTPS_PROXY/NO_PROXY)",
        )
    if isinstance(exc, ClientAuthenticationError) and getattr(exc, "status_code", None) is None:
        # Raised by the credential, not by the vault: the rotator could not sign in.
        return RemoteError(
            f"the rotator could not get a token for Key Vault: {clip(exc.message, SIGN_IN_CLIP)}",
            service="entra",
            target=target,
            reason=FailureReason.PERMISSION_DENIED,
            transient=False,
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
                service=SERVICE,
                target=target,
                reason=FailureReason.SINK_FAILED,
                transient=False,
                status=status,
                hint="a vault never redirects: check vault_url and any proxy (HTTPS_PROXY/NO_PROXY)",
            )
        if status in (401, 403):
            reason = FailureReason.PERMISSION_DENIED
            hint = (
                "assign the rotator Key Vault Secrets Officer at this secret's scope (not the vault's, which "
                "reaches every secret in it), or a get/list/set access policy"
            )
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
            service=SERVICE,
            target=target,
            reason=reason,
            transient=status in TRANSIENT_STATUSES,
            status=status,
            code=code,
            retry_after=parse_retry_after(headers.get("Retry-After")),
            hint=hint,
        )
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return RemoteError(
            f"{operation}: {type(exc).__name__}: {clip(exc.message)}",
            service=SERVICE,
            target=target,
            reason=FailureReason.SINK_FAILED,
            transient=True,
            hint="network trouble reaching the vault (DNS, firewall, private endpoint?); the next pass tries again",
        )
    raise exc


class KeyVault:
    """:class:`service.ports.Vault` for one vault."""

    def __init__(
        self,
        client: SecretClient,
        vault_url: str,
        retry: RetryPolicy,
        metrics: Metrics = DEFAULT_METRICS,
        budget: Budget | None = None,
    ) -> None:
        self._client = client
        self._vault_url = vault_url
        self._retry = retry
        self._metrics = metrics
        self.budget = budget or Budget(VAULT_LIMIT)
        # How many targets of the pass read a secret of this vault (wiring counts them as it builds sinks).
        self.wanted = 0
        self._listing: asyncio.Task[None] | None = None
        self._listed: dict[str, VaultVersion] = {}
        self._waiting: dict[str, asyncio.Future[VaultVersion | None]] = {}
        self._finished = False
        self._given_up = False
        self.pages = 0  # listing pages read this pass

    async def _call(self, call: Callable[[], Awaitable[T]], name: str, operation: str, *, target: str = "") -> T:
        target = target or f"{self._vault_url}/secrets/{name}"

        async def once() -> T:
            await self.budget.take()
            try:
                return await call()
            except (HttpResponseError, ServiceRequestError, ServiceResponseError, AnswerRefused) as exc:
                error = translate(exc, target=target, operation=operation)
                if error.status == 429 and error.retry_after is not None:
                    self.budget.pause(min(error.retry_after, self._retry.max_delay))
                raise error from None
            except ValueError as exc:
                if "challenge resource" not in str(exc):
                    raise
                # The vault's 401 challenge named a resource outside the vault's domain.
                raise RemoteError(
                    f"{operation}: the vault's authentication challenge does not match its URL",
                    service=SERVICE,
                    target=target,
                    reason=FailureReason.CONFIG_ERROR,
                    transient=False,
                    hint="check vault_url; set verify_challenge_resource: false only for an emulator",
                ) from None

        return await retrying(once, self._retry, observe=self._metrics.observer(SERVICE, operation))

    # --- the pass's one listing ------------------------------------------------------------------

    async def current(self, name: str) -> VaultVersion | None:
        """The current version of ``name`` as this pass's listing of the vault shows it; None: no such
        secret. NotListed when the pass reads this vault secret by secret."""
        if self.wanted < 2:
            raise NotListed(f"only {self.wanted} target(s) read {self._vault_url}")
        key = name.lower()
        if key in self._listed:
            return self._listed[key]
        if self._listing is None:
            self._listing = asyncio.create_task(self._list_all())
        if self._finished:
            return None
        if self._given_up:
            raise NotListed(f"{self._vault_url} was not listed")
        waiter = self._waiting.get(key)
        if waiter is None:
            waiter = self._waiting[key] = asyncio.get_running_loop().create_future()
        return await waiter

    async def _list_all(self) -> None:
        """Page through the vault, answering each waiter when its secret shows up; at the end, answer the
        rest: None (listed, not there), or NotListed (the listing failed or ran past its pages)."""
        # Listing costs a page per 25 secrets of the vault, reading one by one at least a request per target:
        # never more pages than the pass's own secrets read alone would take requests (a vault may serve pages
        # shorter than asked for, and hold other secrets: other apps', other shards' or workers'), so that a
        # listing given up costs at most as much again as reading alone.
        continuation: str | None = None
        try:
            while True:
                if self.pages >= self.wanted:
                    raise NotListed(f"{self._vault_url} holds far more secrets than this pass reads")
                items, continuation = await self._page(continuation)
                self.pages += 1
                for version, item_name in items:
                    key = item_name.lower()
                    self._listed[key] = version
                    waiter = self._waiting.pop(key, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(version)
                if not continuation:
                    break
        except Exception as exc:  # noqa: BLE001  # whatever stops the listing, each secret is read alone
            self._given_up = True
            for waiter in self._waiting.values():
                if not waiter.done():
                    waiter.set_exception(NotListed(str(exc)))
        else:
            self._finished = True
            for waiter in self._waiting.values():
                if not waiter.done():
                    waiter.set_result(None)
        self._waiting.clear()

    async def _page(self, next_link: str | None) -> tuple[list[tuple[VaultVersion, str]], str | None]:
        """One page of the listing, sent through the SDK's pipeline (its challenge and token) but read here:
        the SDK's models cost more CPU than the rest of a healthy target's pass."""
        target = f"{self._vault_url}/secrets"

        async def once() -> tuple[list[tuple[VaultVersion, str]], str | None]:
            request = HttpRequest("GET", next_link or f"/secrets?maxresults={PAGE}")
            response = await self._client.send_request(request)
            if response.status_code >= 300:
                raise HttpResponseError(response=response)
            try:
                data = json.loads(response.content)
            except ValueError:
                data = None  # not JSON: _listing_page says so, without quoting it
            return _listing_page(data, self._vault_url, target)

        return await self._call(once, "", "list the vault's secrets", target=target)

    async def close(self) -> None:
        """Stop a listing still running (a pass that ended before it needed the rest)."""
        if self._listing is not None and not self._listing.done():
            self._listing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listing

    # --- one secret ------------------------------------------------------------------------------

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
                "the secret version has no value",
                service=SERVICE,
                target=f"{self._vault_url}/secrets/{name}",
                reason=FailureReason.SINK_FAILED,
                transient=False,
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
