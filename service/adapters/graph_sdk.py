"""Microsoft Graph through msgraph-sdk: the writes (addPassword, removePassword) and bootstrap's admin calls.

Imported only when a write happens (or by bootstrap): a healthy pass reads through graph_reads.py and
never loads msgraph-sdk, kiota or httpx. One :class:`GraphWrites` per tenant (tokens must be asked for the
target's tenant, which the SDK's auth provider does not do by itself). The httpx client carries kiota's
middleware minus its RetryHandler (``addPassword`` must never be retried blindly; the rest retry through
service.retry) and its RedirectHandler (no request follows a redirect; see transport.py).

Error text from Graph is kept to its structured code and message, clipped (redact.clip): never a body.
"""

from __future__ import annotations

import contextlib
import json
import re
import ssl
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar
from urllib.parse import urlsplit

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from kiota_abstractions.api_error import APIError
from kiota_abstractions.serialization import ParsableFactory
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from kiota_http.kiota_client_factory import KiotaClientFactory
from kiota_http.middleware import RedirectHandler, RetryHandler
from msgraph.generated.applications.item.add_password.add_password_post_request_body import (
    AddPasswordPostRequestBody,
)
from msgraph.generated.applications.item.remove_password.remove_password_post_request_body import (
    RemovePasswordPostRequestBody,
)
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_credential import PasswordCredential
from msgraph.generated.models.password_credential_configuration import PasswordCredentialConfiguration
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory  # type: ignore[import-untyped]  # ships no py.typed

from service import redact
from service.adapters.budget import Budget
from service.adapters.graph_errors import (
    NETWORK,
    SERVICE,
    TOKEN_FAILURES,
    answer_error,
    credential_from_json,
    not_graph,
    token_error,
)
from service.adapters.transport import AnswerRefused
from service.adapters.transport_httpx import httpx_client
from service.adapters.utc import as_utc
from service.errors import FailureReason, OutcomeUnknown, RemoteError
from service.metrics import DEFAULT as DEFAULT_METRICS
from service.metrics import Metrics
from service.model import Credential
from service.redact import clip
from service.retry import RetryPolicy, retrying
from service.secret import Secret

T = TypeVar("T")
ODATA_ERRORS: dict[str, type[ParsableFactory]] = {"XXX": ODataError}  # how the generated builders map errors
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# The secretText of an addPassword answer as it stands in the raw JSON, closing quote or not.
_SECRET_TEXT = re.compile(r'"secretText"\s*:\s*"((?:[^"\\]|\\.)*)')
_MAYBE_CREATED = "a credential may have been created; the next pass removes it as an orphan"


def graph_service_client(
    credential: AsyncTokenCredential, tenant_id: str, graph_url: str, graph_scope: str, context: ssl.SSLContext
) -> tuple[GraphServiceClient, httpx.AsyncClient]:
    """A Graph client whose tokens are requested for ``tenant_id``; close the httpx client after the pass."""
    middleware = [
        m for m in KiotaClientFactory.get_default_middleware(None) if not isinstance(m, RetryHandler | RedirectHandler)
    ]
    http = GraphClientFactory.create_with_custom_middleware(middleware, client=httpx_client(context, graph_url))
    host = urlsplit(graph_url).hostname or ""
    auth = AzureIdentityAuthenticationProvider(
        credential, options={"tenant_id": tenant_id}, scopes=[graph_scope], allowed_hosts=[host]
    )
    adapter = GraphRequestAdapter(auth, http)
    adapter.base_url = graph_url
    return GraphServiceClient(request_adapter=adapter), http


def credential_from_sdk(item: PasswordCredential) -> Credential:
    """An SDK ``PasswordCredential`` as a :class:`service.model.Credential` (times in UTC, no secret text)."""
    return Credential(
        key_id=str(item.key_id),
        display_name=item.display_name,
        hint=item.hint,
        start=as_utc(item.start_date_time),
        end=as_utc(item.end_date_time),
    )


def translate(exc: BaseException, *, target: str, operation: str) -> RemoteError:
    """A Graph or sign-in failure as the service's error, with reason, transience and a hint."""
    if isinstance(exc, RemoteError):
        return exc
    if isinstance(exc, AnswerRefused):
        return not_graph(f"{operation}: {exc}", target=target, status=exc.status)
    if isinstance(exc, APIError):
        error = exc.error if isinstance(exc, ODataError) else None
        fields = {"code": error.code, "message": error.message} if error is not None else None
        return answer_error(
            exc.response_status_code, fields, exc.response_headers or {}, target=target, operation=operation
        )
    if isinstance(exc, TOKEN_FAILURES):
        return token_error(exc, target=target)
    if isinstance(exc, httpx.TransportError):
        return RemoteError(
            clip(f"{operation} failed: {type(exc).__name__} {exc}".strip()),
            service=SERVICE,
            target=target,
            reason=FailureReason.UNEXPECTED,
            transient=True,
            hint=NETWORK,
        )
    raise exc


# Every failure of a Graph call that translate() sorts.
GRAPH_FAILURES = (
    APIError,
    httpx.TransportError,
    AnswerRefused,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)


async def graph_read(
    call: Callable[[], Awaitable[T]],
    target: str,
    operation: str,
    retry: RetryPolicy,
    metrics: Metrics,
    translation: Callable[..., RemoteError] = translate,
) -> T:
    """A Graph read (or an idempotent write), its SDK errors translated, transient ones retried."""

    async def once() -> T:
        try:
            return await call()
        except GRAPH_FAILURES as exc:
            raise translation(exc, target=target, operation=operation) from None

    return await retrying(once, retry, observe=metrics.observer(SERVICE, operation))


def _created_password(raw: object, target: str) -> tuple[Credential, Secret]:
    """addPassword's answer: the new credential and its secret, or OutcomeUnknown if it cannot be read."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else ""
    # Registered before anything parses the body: a parse error, or a field that holds the secret by
    # mistake, must find it already known to the redactor.
    for match in _SECRET_TEXT.finditer(text):
        redact.register(match.group(1))
        with contextlib.suppress(ValueError):
            redact.register(json.loads(f'"{match.group(1)}"'))

    def unreadable(what: str) -> OutcomeUnknown:
        # Never the body nor the parser's words: either may hold the secret.
        return OutcomeUnknown(
            f"addPassword answered {what}",
            service=SERVICE,
            target=target,
            reason=FailureReason.UNEXPECTED,
            transient=False,
            hint=_MAYBE_CREATED,
        )

    try:
        data = json.loads(text) if text else None
    except ValueError:
        raise unreadable("a body that is not JSON") from None
    if not isinstance(data, dict):
        raise unreadable("without a password credential")
    secret_text, key_id = data.get("secretText"), data.get("keyId")
    if not isinstance(secret_text, str) or not secret_text:
        raise unreadable("without a secret")
    secret = Secret(secret_text)
    if not isinstance(key_id, str) or not _GUID.match(key_id):
        raise unreadable("without a key id")
    try:
        return credential_from_json(data), secret
    except (ValueError, TypeError):
        raise unreadable("a credential whose dates cannot be read") from None


class GraphWrites:
    """The writes of :class:`service.ports.Directory` over msgraph-sdk, for one tenant."""

    def __init__(
        self,
        client: GraphServiceClient,
        tenant_id: str,
        retry: RetryPolicy,
        metrics: Metrics = DEFAULT_METRICS,
        budget: Budget | None = None,
    ) -> None:
        self._client = client
        self._tenant_id = tenant_id
        self._retry = retry
        self._metrics = metrics
        self._budget = budget

    async def _read(self, call: Callable[[], Awaitable[T]], target: str, operation: str) -> T:
        return await graph_read(self._budgeted(call), target, operation, self._retry, self._metrics, self._translate)

    def _translate(self, exc: BaseException, *, target: str, operation: str) -> RemoteError:
        return self._throttled(translate(exc, target=target, operation=operation))

    def _throttled(self, error: RemoteError) -> RemoteError:
        """A 429 holds every request to this tenant for its Retry-After (as the bulk reads' 429s do)."""
        if self._budget is not None and error.status == 429 and error.retry_after is not None:
            self._budget.pause(min(error.retry_after, self._retry.max_delay))
        return error

    def _budgeted(self, call: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
        """``call`` once the tenant's request budget has room (every try counts, as Graph counts it)."""
        budget = self._budget
        if budget is None:
            return call

        async def spend() -> T:
            await budget.take()
            return await call()

        return spend

    async def add_password(self, object_id: str, display_name: str, end: datetime) -> tuple[Credential, Secret]:
        """:meth:`service.ports.Directory.add_password`: tried again only when it never left or was throttled;
        its answer read raw and its secret registered with the redactor before it is parsed.
        """
        body = AddPasswordPostRequestBody(
            password_credential=PasswordCredential(display_name=display_name, end_date_time=end)
        )
        target = f"app object {object_id} in tenant {self._tenant_id}"
        builder = self._client.applications.by_application_id(object_id).add_password
        adapter = self._client.request_adapter

        async def once() -> object:
            if self._budget is not None:
                await self._budget.take()
            try:
                # The raw body, not the SDK's model: the secret is registered before anything parses it.
                request = builder.to_post_request_information(body)
                return await adapter.send_primitive_async(request, "bytes", ODATA_ERRORS)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # Never sent: safe to try again.
                raise translate(exc, target=target, operation="addPassword") from None
            except httpx.TransportError as exc:
                raise OutcomeUnknown(
                    f"addPassword sent but no answer came back ({type(exc).__name__})",
                    service=SERVICE,
                    target=target,
                    reason=FailureReason.UNEXPECTED,
                    transient=False,
                    hint=_MAYBE_CREATED,
                ) from None
            except AnswerRefused as exc:
                if 300 <= exc.status < 400:
                    raise translate(exc, target=target, operation="addPassword") from None
                raise OutcomeUnknown(
                    f"addPassword: {exc}",
                    service=SERVICE,
                    target=target,
                    reason=FailureReason.UNEXPECTED,
                    transient=False,
                    status=exc.status,
                    hint=_MAYBE_CREATED,
                ) from None
            except APIError as exc:
                error = self._throttled(translate(exc, target=target, operation="addPassword"))
                if error.status == 429:
                    raise error from None  # throttled before it was processed: safe to try again
                if error.status is not None and error.status >= 500:
                    raise OutcomeUnknown.after(error, _MAYBE_CREATED) from None
                error.transient = False
                raise error from None
            except (HttpResponseError, ServiceRequestError, ServiceResponseError) as exc:
                # The rotator's own token request failed: addPassword was never sent.
                raise translate(exc, target=target, operation="addPassword") from None

        raw = await retrying(once, self._retry, observe=self._metrics.observer(SERVICE, "addPassword"))
        return _created_password(raw, target)

    async def remove_password(self, object_id: str, key_id: str) -> None:
        """:meth:`service.ports.Directory.remove_password`; a credential already gone counts as removed."""
        body = RemovePasswordPostRequestBody(key_id=key_id)  # type: ignore[arg-type]  # the SDK types it UUID
        target = f"credential {key_id} of app object {object_id} in tenant {self._tenant_id}"
        request = self._client.applications.by_application_id(object_id).remove_password
        try:
            await self._read(lambda: request.post(body), target, "removePassword")
        except RemoteError as error:
            # Already gone (an earlier pass removed it before crashing): the goal is met.
            if error.status == 404 or (error.status == 400 and "keyId" in error.message):
                return
            raise

    async def password_lifetime_limit(self, object_id: str) -> timedelta | None:
        """The shortest password lifetime the tenant's app management policies allow, if readable.

        None when no policy restricts it or the rotator may not read the policies (Policy.Read.All).
        """
        limits: list[timedelta] = []
        target = f"app management policies of tenant {self._tenant_id}"

        def collect(configurations: list[PasswordCredentialConfiguration] | None) -> None:
            for item in configurations or ():
                kind = str(item.restriction_type.value if item.restriction_type else "")
                if kind == "passwordLifetime" and item.max_lifetime:
                    limits.append(item.max_lifetime)

        try:
            tenant_policy = await self._read(
                lambda: self._client.policies.default_app_management_policy.get(), target, "read the policy"
            )
            if tenant_policy and tenant_policy.is_enabled is not False and tenant_policy.application_restrictions:
                collect(tenant_policy.application_restrictions.password_credentials)
            app_policies = await self._read(
                lambda: self._client.applications.by_application_id(object_id).app_management_policies.get(),
                target,
                "read the app's policies",
            )
            for policy in (app_policies.value if app_policies else None) or ():
                if policy.is_enabled is not False and policy.restrictions:
                    collect(policy.restrictions.password_credentials)
        except RemoteError as error:
            if error.reason in (FailureReason.PERMISSION_DENIED, FailureReason.NOT_FOUND):
                return min(limits, default=None)
            raise
        return min(limits, default=None)
