"""Microsoft Graph as an admin sees it: what `secret-rotator bootstrap` creates, over msgraph-sdk.

:class:`GraphAdmin` is :class:`service.bootstrap.AppAdmin`: app registrations, service principals, app
role assignments (admin consent) and owners. Reads retry transient failures through service.retry;
writes are sent once (``POST /applications`` is not idempotent: a blind retry makes a second app), and a
write whose answer was lost raises OutcomeUnknown, which a re-run of bootstrap repairs by finding what
was made. The admin's device-code sign-in lives here too: azure-identity has it only as a sync credential.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx
from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.identity import DeviceCodeCredential
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.applications.applications_request_builder import ApplicationsRequestBuilder
from msgraph.generated.applications.item.application_item_request_builder import ApplicationItemRequestBuilder
from msgraph.generated.applications_with_app_id.applications_with_app_id_request_builder import (
    ApplicationsWithAppIdRequestBuilder,
)
from msgraph.generated.models.app_role_assignment import AppRoleAssignment
from msgraph.generated.models.application import Application
from msgraph.generated.models.reference_create import ReferenceCreate
from msgraph.generated.models.required_resource_access import RequiredResourceAccess
from msgraph.generated.models.resource_access import ResourceAccess
from msgraph.generated.models.service_principal import ServicePrincipal
from msgraph.generated.models.web_application import WebApplication
from msgraph.graph_service_client import GraphServiceClient

from service.adapters.entra import register_token
from service.adapters.graph_sdk import credential_from_sdk, graph_read, translate
from service.adapters.transport import AnswerRefused
from service.config.clouds import Endpoints
from service.errors import FailureReason, OutcomeUnknown, RemoteError
from service.metrics import DEFAULT as DEFAULT_METRICS
from service.metrics import Metrics
from service.model import Permission, Principal, Registration
from service.retry import RetryPolicy

T = TypeVar("T")
SERVICE = "graph"
_APP_SELECT = ["id", "appId", "displayName", "signInAudience", "web", "requiredResourceAccess", "passwordCredentials"]
# Never sent: a write failing this way may be sent again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _registration(app: Application) -> Registration:
    permissions = tuple(
        Permission(str(entry.resource_app_id), str(access.id), str(access.type))
        for entry in app.required_resource_access or ()
        for access in entry.resource_access or ()
    )
    return Registration(
        object_id=str(app.id),
        app_id=str(app.app_id),
        display_name=app.display_name or "",
        sign_in_audience=app.sign_in_audience or "",
        redirect_uris=tuple((app.web.redirect_uris if app.web else None) or ()),
        permissions=permissions,
        credentials=tuple(credential_from_sdk(p) for p in app.password_credentials or ()),
    )


def _translate(exc: BaseException, *, target: str, operation: str) -> RemoteError:
    """Graph's translation, worded for the admin's sign-in rather than the rotator's."""
    error = translate(exc, target=target, operation=operation)
    if error.service != "entra":
        return error
    return RemoteError(
        error.message.replace("the rotator could not get a token", "the admin's sign-in got no token"),
        service=error.service,
        target=target,
        reason=error.reason,
        transient=error.transient,
        status=error.status,
        code=error.code,
        hint="check the sign-in: the credential: block of --config, `az login --tenant TENANT`, or --device-code",
    )


def _required_resource_access(permissions: tuple[Permission, ...]) -> list[RequiredResourceAccess]:
    """Graph's shape (one entry per resource), in the order the resources first appear."""
    by_resource: dict[str, list[ResourceAccess]] = {}
    for p in permissions:
        by_resource.setdefault(p.resource_app_id, []).append(ResourceAccess(id=uuid.UUID(p.id), type=p.type))
    return [RequiredResourceAccess(resource_app_id=r, resource_access=a) for r, a in by_resource.items()]


class GraphAdmin:
    """:class:`service.ports.AppAdmin` over msgraph-sdk, for one tenant."""

    def __init__(
        self,
        client: GraphServiceClient,
        tenant_id: str,
        graph_url: str,
        retry: RetryPolicy,
        metrics: Metrics = DEFAULT_METRICS,
    ) -> None:
        self._client = client
        self._tenant_id = tenant_id
        self._graph_url = graph_url.rstrip("/")
        self._retry = retry
        self._metrics = metrics

    async def _read(self, call: Callable[[], Awaitable[T]], target: str, operation: str) -> T:
        return await graph_read(call, target, operation, self._retry, self._metrics, _translate)

    async def _write(self, call: Callable[[], Awaitable[T]], target: str, operation: str, made: str) -> T:
        """One try: whether a lost answer means the object exists is left to the next run's gather."""
        observe = self._metrics.observer(SERVICE, operation)
        try:
            result = await call()
        except _NOT_SENT as exc:
            observe("error")
            raise _translate(exc, target=target, operation=operation) from None
        except httpx.TransportError as exc:
            observe("error")
            raise OutcomeUnknown(
                f"{operation} was sent but no answer came back ({type(exc).__name__})",
                service=SERVICE,
                target=target,
                reason=FailureReason.UNEXPECTED,
                transient=False,
                hint=f"{made} may exist now: run the same bootstrap command again, it finds it and completes it",
            ) from None
        except (APIError, AnswerRefused, HttpResponseError, ServiceRequestError, ServiceResponseError) as exc:
            observe("error")
            error = _translate(exc, target=target, operation=operation)
            # A success answer too large to read, or a 5xx: the write may have happened.
            unreadable = isinstance(exc, AnswerRefused) and exc.status < 300
            if unreadable or (error.status is not None and error.status >= 500):
                raise OutcomeUnknown.after(
                    error, f"{made} may exist now: run the same bootstrap command again, it finds it and completes it"
                ) from None
            raise error from None
        observe("ok")
        return result

    # -- applications ------------------------------------------------------------------------------

    async def app_by_client_id(self, client_id: str) -> Registration | None:
        """:meth:`service.ports.AppAdmin.app_by_client_id`."""
        query = ApplicationsWithAppIdRequestBuilder.ApplicationsWithAppIdRequestBuilderGetQueryParameters(
            select=_APP_SELECT
        )
        target = f"app {client_id} in tenant {self._tenant_id}"
        config = RequestConfiguration(query_parameters=query)
        try:
            app = await self._read(
                lambda: self._client.applications_with_app_id(client_id).get(config), target, "read the app"
            )
        except RemoteError as error:
            if error.status == 404:
                return None
            raise
        return _registration(app) if app is not None and app.id else None

    async def apps_named(self, name: str) -> list[Registration]:
        """:meth:`service.ports.AppAdmin.apps_named`: a ``displayName eq`` filter, every page."""
        query = ApplicationsRequestBuilder.ApplicationsRequestBuilderGetQueryParameters(
            filter="displayName eq '{}'".format(name.replace("'", "''")), select=_APP_SELECT
        )
        target = f"apps named {name!r} in tenant {self._tenant_id}"
        page = await self._read(
            lambda: self._client.applications.get(RequestConfiguration(query_parameters=query)), target, "list apps"
        )
        found: list[Registration] = []
        while page is not None:
            found.extend(_registration(a) for a in page.value or () if a.id)
            link = page.odata_next_link
            if not link:
                break
            page = await self._read(self._client.applications.with_url(link).get, target, "list apps")
        return found

    async def create_app(
        self, name: str, sign_in_audience: str, redirect_uris: tuple[str, ...], permissions: tuple[Permission, ...]
    ) -> Registration:
        """:meth:`service.ports.AppAdmin.create_app`; sent once."""
        body = Application(
            display_name=name,
            sign_in_audience=sign_in_audience,
            web=WebApplication(redirect_uris=list(redirect_uris)),
            required_resource_access=_required_resource_access(permissions),
        )
        target = f"app {name!r} in tenant {self._tenant_id}"
        created = await self._write(
            lambda: self._client.applications.post(body), target, "create the app", "the app registration"
        )
        if created is None or not created.id:
            raise OutcomeUnknown(
                "Graph answered the app's creation without its id",
                service=SERVICE,
                target=target,
                reason=FailureReason.UNEXPECTED,
                transient=False,
            )
        return _registration(created)

    async def update_app(
        self, object_id: str, redirect_uris: tuple[str, ...] | None, permissions: tuple[Permission, ...] | None
    ) -> None:
        """:meth:`service.ports.AppAdmin.update_app`; sent once."""
        target = f"app object {object_id} in tenant {self._tenant_id}"
        body = Application()
        if redirect_uris is not None:
            # `web` is replaced as a whole by a PATCH: send back what it holds, with the new list.
            query = ApplicationItemRequestBuilder.ApplicationItemRequestBuilderGetQueryParameters(select=["id", "web"])
            current = await self._read(
                lambda: self._client.applications.by_application_id(object_id).get(
                    RequestConfiguration(query_parameters=query)
                ),
                target,
                "read the app",
            )
            web = (current.web if current else None) or WebApplication()
            web.redirect_uris = list(redirect_uris)
            web.redirect_uri_settings = None  # derived from redirectUris; a stale copy would contradict them
            body.web = web
        if permissions is not None:
            body.required_resource_access = _required_resource_access(permissions)
        await self._write(
            lambda: self._client.applications.by_application_id(object_id).patch(body),
            target,
            "update the app",
            "the change",
        )

    # -- service principals, consent, owners -------------------------------------------------------

    async def service_principal(self, app_id: str) -> Principal | None:
        """:meth:`service.ports.AppAdmin.service_principal`."""
        target = f"service principal of app {app_id} in tenant {self._tenant_id}"
        try:
            sp = await self._read(
                lambda: self._client.service_principals_with_app_id(app_id).get(), target, "read the service principal"
            )
        except RemoteError as error:
            if error.status == 404:
                return None
            raise
        return Principal(str(sp.id), str(sp.app_id)) if sp is not None and sp.id else None

    async def create_service_principal(self, app_id: str) -> Principal:
        """:meth:`service.ports.AppAdmin.create_service_principal`; sent once."""
        target = f"service principal of app {app_id} in tenant {self._tenant_id}"
        created = await self._write(
            lambda: self._client.service_principals.post(ServicePrincipal(app_id=app_id)),
            target,
            "create the service principal",
            "the service principal",
        )
        if created is None or not created.id:
            raise OutcomeUnknown(
                "Graph answered the service principal's creation without its id",
                service=SERVICE,
                target=target,
                reason=FailureReason.UNEXPECTED,
                transient=False,
            )
        return Principal(str(created.id), str(created.app_id or app_id))

    async def granted_roles(self, principal_id: str, resource_id: str) -> frozenset[str]:
        """:meth:`service.ports.AppAdmin.granted_roles`: every page of the principal's app role assignments."""
        target = f"app role assignments of service principal {principal_id} in tenant {self._tenant_id}"
        builder = self._client.service_principals.by_service_principal_id(principal_id).app_role_assignments
        page = await self._read(builder.get, target, "list app role assignments")
        roles: set[str] = set()
        while page is not None:
            roles.update(
                str(a.app_role_id).lower()
                for a in page.value or ()
                if str(a.resource_id).lower() == resource_id.lower() and a.app_role_id is not None
            )
            link = page.odata_next_link
            if not link:
                break
            page = await self._read(builder.with_url(link).get, target, "list app role assignments")
        return frozenset(roles)

    async def grant_role(self, principal_id: str, resource_id: str, role_id: str) -> None:
        """:meth:`service.ports.AppAdmin.grant_role`; sent once, an existing assignment counts as granted."""
        body = AppRoleAssignment(
            principal_id=uuid.UUID(principal_id), resource_id=uuid.UUID(resource_id), app_role_id=uuid.UUID(role_id)
        )
        target = f"app role {role_id} for service principal {principal_id} in tenant {self._tenant_id}"
        request = self._client.service_principals.by_service_principal_id(resource_id).app_role_assigned_to
        try:
            await self._write(lambda: request.post(body), target, "grant the app role", "the assignment")
        except RemoteError as error:
            if error.status == 400 and "already exists" in error.message:
                return  # granted meanwhile (another run, the portal): the goal is met
            raise

    async def owners(self, object_id: str) -> frozenset[str]:
        """:meth:`service.ports.AppAdmin.owners`: every page of the app's owners."""
        target = f"owners of app object {object_id} in tenant {self._tenant_id}"
        builder = self._client.applications.by_application_id(object_id).owners
        page = await self._read(builder.get, target, "list owners")
        found: set[str] = set()
        while page is not None:
            found.update(str(o.id).lower() for o in page.value or () if o.id)
            link = page.odata_next_link
            if not link:
                break
            page = await self._read(builder.with_url(link).get, target, "list owners")
        return frozenset(found)

    async def add_owner(self, object_id: str, principal_id: str) -> None:
        """:meth:`service.ports.AppAdmin.add_owner`; sent once, an existing owner counts as added."""
        body = ReferenceCreate(odata_id=f"{self._graph_url}/directoryObjects/{principal_id}")
        target = f"owner {principal_id} of app object {object_id} in tenant {self._tenant_id}"
        request = self._client.applications.by_application_id(object_id).owners.ref
        try:
            await self._write(lambda: request.post(body), target, "add the owner", "the owner")
        except RemoteError as error:
            if error.status == 400 and "already exist" in error.message:
                return  # added meanwhile: the goal is met
            if error.status == 404:
                error.hint = (
                    f"no service principal or user with object id {principal_id} in the tenant: give --owner the "
                    "rotator's service principal object id (Enterprise applications > the rotator > Object ID), "
                    "not its client id"
                )
            raise


# -- the admin's interactive sign-in ---------------------------------------------------------------


class ThreadedCredential:
    """An async face for a sync azure-identity credential: each token request runs in its own thread.

    The device code flow polls until the admin has signed in; on the event loop it would stall every
    other request (and, in tests, the in-process emulator that must answer the poll). A daemon thread,
    not the loop's executor: after Ctrl-C nobody waits for a poll that may last the code's 15 minutes.
    Tokens are cached by MSAL, and a token for another resource comes from the refresh token: one prompt.
    Each token is registered with the redactor before it is handed out.
    """

    def __init__(self, credential: DeviceCodeCredential) -> None:
        self._credential = credential

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """A token from the sync credential, asked for in a thread of its own (a device code prompt may wait)."""
        token = await self._in_thread(*scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, **kwargs)
        register_token(token.token, token.expires_on)
        return token

    async def _in_thread(self, *scopes: str, **kwargs: Any) -> AccessToken:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[AccessToken] = loop.create_future()

        def settle(token: AccessToken | None, error: BaseException | None) -> None:
            if done.cancelled():
                return
            if error is not None:
                done.set_exception(error)
            else:
                assert token is not None
                done.set_result(token)

        def work() -> None:
            token, error = None, None
            try:
                token = self._credential.get_token(*scopes, **kwargs)
            except Exception as exc:  # noqa: BLE001 - handed to the coroutine that awaits it
                error = exc
            with contextlib.suppress(RuntimeError):  # the loop is gone (Ctrl-C): nobody waits any more
                loop.call_soon_threadsafe(settle, token, error)

        threading.Thread(target=work, name="device-code-sign-in", daemon=True).start()
        return await done

    async def close(self) -> None:
        """Close the sync credential."""
        self._credential.close()

    async def __aenter__(self) -> ThreadedCredential:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.close()


def _prompt_on_stderr(verification_uri: str, user_code: str, expires_on: datetime) -> None:
    # stderr: stdout is kept for the command's result, which scripts parse.
    sys.stderr.write(
        f"To sign in, open {verification_uri} and enter the code {user_code} (valid until {expires_on:%H:%M} UTC).\n"
    )
    sys.stderr.flush()


def device_code_credential(
    tenant_id: str,
    cloud: Endpoints,
    prompt: Callable[[str, str, datetime], None] = _prompt_on_stderr,
) -> AsyncTokenCredential:
    """The admin's delegated sign-in by device code (azure-identity's Azure CLI public client)."""
    kwargs: dict[str, Any] = {"authority": cloud.authority_host}
    if not cloud.known_authority:
        # MSAL would otherwise ask the public cloud to validate an authority it does not know.
        kwargs["disable_instance_discovery"] = True
    if cloud.ca_bundle is not None:
        kwargs["connection_verify"] = str(cloud.ca_bundle)
    return ThreadedCredential(DeviceCodeCredential(tenant_id=tenant_id, prompt_callback=prompt, **kwargs))
