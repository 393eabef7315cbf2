"""The Emulator: one HTTPS port serving Entra, Graph, Key Vault, the push receiver and a control API.

Routing is by the first path segment (`v1.0` Graph, `secrets`/`deletedsecrets` Key Vault,
`dimescheduler` the receiver, `hooks` the Teams and Slack webhooks, `_emulator` control, anything else
Entra's `/{tenant}/...`), so the SDKs can use `emu.url` as authority host and vault URL at once. A
middleware adds default latency and the injected faults to every route but the control API, and records
each request.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

from aiohttp import web

from service.emulator import ca, directory, fault_bodies
from service.emulator.clock import Clock
from service.emulator.directory import (
    GRAPH_APP_ROLES,
    AppRecord,
    Directory,
    FederatedCredential,
    Identity,
    SpRecord,
    new_id,
)
from service.emulator.entra import EntraService
from service.emulator.fault_responses import fault_response
from service.emulator.faults import Fault, FaultSet, RequestInfo
from service.emulator.graph import GraphService
from service.emulator.graph_batch import GraphBatch
from service.emulator.hooks import HOOKS_PATH, Hooks
from service.emulator.keyvault import KeyVaultService, SecretVersion
from service.emulator.receiver import Receiver
from service.emulator.sign_ins import SignInLog
from service.emulator.tokens import TokenSigner
from service.emulator.wire import TENANT_ID

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
RECEIVER_PATH = "/dimescheduler/exchange-settings"
# The status recorded for a request whose connection was dropped: no answer was sent.
DROPPED = 599


@dataclass(frozen=True)
class RequestRecord:
    service: str
    method: str
    path: str
    status: int
    tenant_id: str | None
    at: datetime
    inner: bool = False  # one of the requests inside a Graph `$batch` (the batch itself is another record)


@dataclass(frozen=True)
class PasswordInfo:
    """A password credential as tests inspect it (never its secret text)."""

    key_id: str
    display_name: str | None
    hint: str
    start: datetime
    end: datetime
    created_at: datetime


def classify(path: str) -> str:
    first = path.lstrip("/").split("/", 1)[0]
    if first in ("v1.0", "beta"):
        return "graph"
    if first in ("secrets", "deletedsecrets"):
        return "keyvault"
    if first == "dimescheduler":
        return "receiver"
    if first == "_emulator":
        return "control"
    if first == "hooks":
        return "hooks"
    return "entra"


class Emulator:
    """Azure (Entra ID, Graph, Key Vault) and Dime.Scheduler's endpoint, in process, over HTTPS."""

    _ports_used: ClassVar[set[int]] = set()

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        state_dir: Path | None = None,
        receiver_api_key: str | None = None,
        verify_pushed_secrets: bool = True,
    ) -> None:
        self.clock = clock or Clock()
        self._state_dir = state_dir
        self._own_state_dir = False
        self.directory = Directory(self.clock)
        self.signer = TokenSigner()
        self.entra = EntraService(self.directory, self.signer, lambda: self.url)
        issuers = self.entra.access_token_issuers()
        self.graph = GraphService(self.directory, self.signer, lambda: self.url, issuers)
        self.keyvault = KeyVaultService(self.clock, self.signer, lambda: self.url, issuers)
        self.receiver = Receiver(self.directory, receiver_api_key, verify_signin=verify_pushed_secrets)
        self.hooks = Hooks()  # a Teams and a Slack incoming webhook, for `notify:`
        self.faults = FaultSet()
        self.graph_batch = GraphBatch(
            self.graph, self.faults, lambda r, service, status: self._record(r, service, status, inner=True)
        )
        self.default_latency = timedelta(0)
        self.requests: list[RequestRecord] = []
        self._url: str | None = None
        self._ca_file: Path | None = None
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- addresses ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the emulator is not started")
        return self._url

    @property
    def graph_url(self) -> str:
        return f"{self.url}/v1.0"

    @property
    def vault_url(self) -> str:
        return self.url

    @property
    def receiver_url(self) -> str:
        return f"{self.url}{RECEIVER_PATH}"

    def hook_url(self, kind: str) -> str:
        """The URL of the emulated ``teams`` or ``slack`` incoming webhook (a secret, as the real ones are)."""
        return f"{self.url}{HOOKS_PATH}/{kind}/{self.hooks.token}"

    @property
    def ca_file(self) -> Path:
        if self._ca_file is None:
            raise RuntimeError("the emulator is not started")
        return self._ca_file

    @property
    def state_dir(self) -> Path:
        if self._state_dir is None:
            raise RuntimeError("the emulator is not started")
        return self._state_dir

    # -- knobs -------------------------------------------------------------------------------------

    @property
    def replication_delay(self) -> timedelta:
        return self.directory.replication_delay

    @replication_delay.setter
    def replication_delay(self, value: timedelta) -> None:
        self.directory.replication_delay = value

    @property
    def password_cap(self) -> int:
        return self.directory.password_cap

    @password_cap.setter
    def password_cap(self, value: int) -> None:
        self.directory.password_cap = value

    def throttle(self, *, graph: int | None = None, vault: int | None = None, window: float = 10.0) -> None:
        """Answer 429 beyond ``graph`` requests per ``window`` seconds per app and tenant (each request in a
        `$batch` counting) and beyond ``vault`` operations per window on the vault; None: no limit."""
        self.graph.throttle.limit, self.graph.throttle.window = graph, window
        self.keyvault.throttle.limit, self.keyvault.throttle.window = vault, window

    @property
    def throttled(self) -> dict[str, int]:
        """How many requests each service answered 429 because of :meth:`throttle`."""
        return {"graph": self.graph.throttle.refused, "keyvault": self.keyvault.throttle.refused}

    @property
    def sign_ins(self) -> SignInLog:
        """Every sign-in with a client secret, and the sign-in activity report's knobs (lag, empty, available)."""
        return self.directory.sign_ins

    @property
    def vault_tenant_id(self) -> str | None:
        return self.keyvault.tenant_id

    @vault_tenant_id.setter
    def vault_tenant_id(self, value: str | None) -> None:
        self.keyvault.tenant_id = value.lower() if value else None

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"the emulator serves on loopback only, not {host!r}")
        if self._state_dir is None:
            self._state_dir = Path(tempfile.mkdtemp(prefix="secret-rotator-emulator-"))
            self._own_state_dir = True
        files = ca.generate(self._state_dir)
        self._ca_file = files.ca_file
        app = web.Application(middlewares=[self._middleware], client_max_size=1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        context = ca.server_context(files)
        while True:
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            try:
                await web.TCPSite(runner, host, port, ssl_context=context).start()
            except OSError:
                await runner.cleanup()  # the port is taken: a caller may try another
                raise
            bound_port = runner.addresses[0][1]
            # An emulator in this process never reuses another's URL: the SDKs cache per URL (Key Vault's
            # challenge, with the old vault's tenant, is module-level), which would answer for the old one.
            if port or bound_port not in Emulator._ports_used:
                break
            await runner.cleanup()
        Emulator._ports_used.add(bound_port)
        self._runner = runner
        url_host = "[::1]" if host == "::1" else host
        self._url = f"https://{url_host}:{bound_port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._own_state_dir and self._state_dir is not None:
            shutil.rmtree(self._state_dir, ignore_errors=True)
            self._own_state_dir = False
            self._state_dir = None

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def start_in_thread(self, host: str = "127.0.0.1", port: int = 0, *, timeout: float = 30.0) -> None:
        """Serve from a daemon thread with its own event loop; returns once listening."""
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start(host, port))
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread, which raises it
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="secret-rotator-emulator", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("the emulator did not start in time")
        if failure:
            raise failure[0]

    def stop_thread(self, timeout: float = 10.0) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._loop = None
        self._thread = None

    # -- request pipeline --------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        service = classify(request.path)
        segments = request.path.lstrip("/").split("/")
        if service == "control":
            from service.emulator.control import handle_control

            return await handle_control(self, request, segments[1:])
        if service == "graph":
            graph_segments = [s for s in segments[1:] if s]
            if graph_segments == ["$batch"] and request.method == "POST":
                return await self.graph_batch.handle(request)
            return await self.graph.handle(request, graph_segments, version=segments[0])
        if service == "keyvault":
            return await self.keyvault.handle(request, segments)
        if service == "hooks":
            return await self.hooks.handle(request, [s for s in segments[1:] if s])
        if service == "receiver":
            if request.path.rstrip("/") != RECEIVER_PATH:
                raise web.HTTPNotFound()
            return await self.receiver.handle(request)
        return await self.entra.handle(request, [s for s in segments if s])

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        service = classify(request.path)
        if service == "control":
            response: web.StreamResponse = await handler(request)
            self._record(request, service, response.status)
            return response
        latency = self.default_latency.total_seconds()
        if latency > 0:
            await asyncio.sleep(latency)
        firing = self.faults.take(request.method, request.path)
        for fault in (f for f in firing if not f.after):
            early = await self._apply_before(request, service, fault)
            if early is not None:
                self._record(request, service, early.status)
                return early
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = web.Response(status=exc.status, text=exc.text or "", content_type="text/plain")
        for fault in (f for f in firing if f.after):
            response = await self._apply_after(request, service, fault, response)
            if response.status == DROPPED:
                break
        self._record(request, service, response.status)
        return response

    def _info(self, request: web.Request, service: str, phase: str, status: int | None = None) -> RequestInfo:
        return RequestInfo(
            service=service,
            method=request.method,
            path=request.path,
            query=request.query_string,
            tenant_id=request.get(TENANT_ID),
            phase="after" if phase == "after" else "before",
            status=status,
        )

    async def _apply_before(self, request: web.Request, service: str, fault: Fault) -> web.StreamResponse | None:
        if fault.kind == "latency":
            await asyncio.sleep(fault.delay)
            return None
        if fault.kind == "hook":
            assert fault.hook is not None
            await asyncio.sleep(fault.delay) if fault.delay else None
            fault.hook(self._info(request, service, "before"))
            return None
        if fault.kind == "drop":
            return _drop(request)
        if fault.kind == "respond":
            return await fault_bodies.respond(fault, request, None)
        if fault.kind == "flood":
            return await fault_bodies.flood(fault, request)
        return fault_response(service, fault.status, fault.retry_after, self)

    async def _apply_after(
        self, request: web.Request, service: str, fault: Fault, response: web.StreamResponse
    ) -> web.StreamResponse:
        if fault.kind == "hook":
            assert fault.hook is not None
            fault.hook(self._info(request, service, "after", response.status))
            return response
        if fault.kind == "drop":
            return _drop(request)
        if fault.kind == "respond":
            return await fault_bodies.respond(fault, request, response)
        if fault.kind == "flood":
            return await fault_bodies.flood(fault, request)
        return fault_response(service, fault.status, fault.retry_after, self)

    def _record(self, request: web.Request, service: str, status: int, *, inner: bool = False) -> None:
        tenant = request.get(TENANT_ID)
        self.requests.append(
            RequestRecord(
                service=service,
                method=request.method,
                path=request.path,
                status=status,
                tenant_id=str(tenant).lower() if tenant else None,
                at=self.clock.now(),
                inner=inner,
            )
        )

    def reset_requests(self) -> None:
        self.requests.clear()

    # -- seeding -----------------------------------------------------------------------------------

    @staticmethod
    def issued_secrets() -> set[str]:
        """Every secret text generated or seeded by any emulator in this process (a canary set)."""
        return directory.issued_secrets()

    @staticmethod
    def issued_tokens() -> set[str]:
        """Every access token issued by any emulator in this process (the canary looks for them too)."""
        return directory.issued_tokens()

    def add_tenant(self, tenant_id: str | None = None, *, vault: bool = True) -> str:
        tenant = self.directory.add_tenant(tenant_id)
        if vault and self.keyvault.tenant_id is None:
            self.keyvault.tenant_id = tenant.tenant_id
        return tenant.tenant_id

    def add_app(
        self,
        tenant_id: str,
        display_name: str,
        *,
        app_id: str | None = None,
        owners: tuple[str, ...] | list[str] = (),
        service_principal: bool = True,
        redirect_uris: list[str] | None = None,
        required_resource_access: list[dict[str, Any]] | None = None,
    ) -> AppRecord:
        """An app registration (and, unless told otherwise, its service principal, so it can sign in).

        `required_resource_access` is the permissions the app requests, in Graph's `requiredResourceAccess`
        shape: `[{"resourceAppId": ..., "resourceAccess": [{"id": ..., "type": "Role" | "Scope"}]}]`
        (ValueError if it is not). Requesting is not consent: grant app roles with `grant_app_role`.
        """
        tenant = self.directory.require_tenant(tenant_id)
        requested = directory.required_resource_access(required_resource_access or [])
        with self.directory.lock:
            app = self.directory.create_app(
                tenant,
                display_name,
                app_id=app_id,
                owners=owners,
                redirect_uris=redirect_uris,
                required_resource_access=requested,
            )
            if service_principal:
                self.directory.create_sp(tenant, app.app_id)
            return app

    def add_service_principal(self, tenant_id: str, app_id: str) -> SpRecord:
        return self.directory.create_sp(self.directory.require_tenant(tenant_id), app_id)

    def grant_app_role(self, tenant_id: str, principal_object_id: str, role: str) -> None:
        """Assign a Microsoft Graph application permission (by value, e.g. Application.Read.All)."""
        tenant = self.directory.require_tenant(tenant_id)
        role_id = GRAPH_APP_ROLES.get(role, role)
        self.directory.assign_app_role(tenant, principal_object_id, self.directory.graph_sp(tenant).object_id, role_id)

    def add_rotator(
        self,
        tenant_id: str,
        roles: tuple[str, ...] | list[str] = ("Application.ReadWrite.OwnedBy",),
        display_name: str = "secret-rotator",
    ) -> Identity:
        tenant = self.directory.require_tenant(tenant_id)
        with self.directory.lock:
            app = self.directory.create_app(tenant, display_name)
            sp = self.directory.create_sp(tenant, app.app_id)
            for role in roles:
                self.grant_app_role(tenant_id, sp.object_id, role)
            _, secret = self.directory.add_password(app, display_name="rotator", replicated=True)
        return Identity(
            tenant_id=tenant.tenant_id,
            client_id=app.app_id,
            secret=secret,
            object_id=sp.object_id,
            app_object_id=app.object_id,
        )

    def add_owner(self, tenant_id: str, app_object_id: str, principal_object_id: str) -> None:
        tenant = self.directory.require_tenant(tenant_id)
        app = tenant.apps[app_object_id.lower()]
        self.directory.add_owner(tenant, app, principal_object_id)

    def _app(self, tenant_id: str, app_id: str) -> AppRecord:
        tenant = self.directory.require_tenant(tenant_id)
        app = self.directory.app_by_app_id(tenant, app_id)
        if app is None:
            raise KeyError(f"no app with appId {app_id} in tenant {tenant_id}")
        return app

    def add_password(
        self,
        tenant_id: str,
        app_id: str,
        *,
        display_name: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        secret: str | None = None,
        usable: bool = True,
    ) -> tuple[str, str]:
        """Seed a password as if made by hand in the portal: usable at once (`usable=False`: never)."""
        app = self._app(tenant_id, app_id)
        now = self.clock.now()
        name = display_name if display_name is not None else f"Password uploaded on {now:%a %b %d %Y}"
        record, text = self.directory.add_password(
            app, display_name=name, start=start, end=end, secret=secret, replicated=True, usable=usable
        )
        return record.key_id, text

    def passwords(self, tenant_id: str, app_id: str) -> list[PasswordInfo]:
        app = self._app(tenant_id, app_id)
        with self.directory.lock:
            return [PasswordInfo(p.key_id, p.display_name, p.hint, p.start, p.end, p.created_at) for p in app.passwords]

    def add_user(
        self,
        tenant_id: str,
        upn: str,
        roles: tuple[str, ...] | list[str] = ("Global Administrator",),
        *,
        device_sign_in: bool = False,
    ) -> str:
        """A member user with these directory roles; its object id.

        A device code is approved by the tenant's first user unless another was added with
        `device_sign_in=True` (or named by `sign_in_device_codes_as`): that user is who signs in.
        """
        tenant = self.directory.require_tenant(tenant_id)
        return self.directory.add_user(tenant, upn, roles, device_sign_in=device_sign_in).object_id

    def sign_in_device_codes_as(self, tenant_id: str, user_object_id: str) -> None:
        """From now on, device codes in this tenant are approved by this (existing) user."""
        self.directory.set_device_sign_in_user(self.directory.require_tenant(tenant_id), user_object_id)

    def add_federated_credential(
        self, tenant_id: str, app_id: str, issuer: str, subject: str, audience: str = "api://AzureADTokenExchange"
    ) -> None:
        app = self._app(tenant_id, app_id)
        with self.directory.lock:
            app.federated.append(
                FederatedCredential(
                    id=new_id(),
                    name=f"fic-{len(app.federated) + 1}",
                    issuer=issuer,
                    subject=subject,
                    audiences=(audience,),
                )
            )

    def set_password_max_lifetime(
        self, tenant_id: str, lifetime: timedelta | None, *, app_object_id: str | None = None
    ) -> None:
        tenant = self.directory.require_tenant(tenant_id)
        with self.directory.lock:
            if app_object_id is None:
                tenant.password_max_lifetime = lifetime
            elif lifetime is None:
                tenant.app_password_max_lifetime.pop(app_object_id.lower(), None)
            else:
                tenant.app_password_max_lifetime[app_object_id.lower()] = lifetime

    def vault_secret(self, name: str) -> SecretVersion | None:
        return self.keyvault.latest(name)

    def vault_versions(self, name: str) -> list[SecretVersion]:
        return self.keyvault.versions(name)

    def add_vault_secret(
        self,
        name: str,
        value: str,
        *,
        tags: dict[str, str] | None = None,
        expires: datetime | None = None,
        version_id: str | None = None,
    ) -> SecretVersion:
        """Seed a Key Vault secret version as if pasted in the portal (no tags unless given)."""
        return self.keyvault.seed(name, value, tags=tags, expires=expires, version_id=version_id)

    @property
    def vault_page_limit(self) -> int | None:
        """Key Vault listings serve at most this many items a page (short pages with a nextLink); None: no limit."""
        return self.keyvault.page_limit

    @vault_page_limit.setter
    def vault_page_limit(self, value: int | None) -> None:
        if value is not None and value < 1:
            raise ValueError("vault_page_limit must be at least 1")
        self.keyvault.page_limit = value

    def kv_scope_to_secrets(self, object_id: str) -> None:
        """The principal's Key Vault role is on single secrets: it may read and write them, not list the vault."""
        self.keyvault.scope_to_secrets(object_id)

    def kv_deny(self, object_id: str) -> None:
        self.keyvault.deny(object_id)

    def kv_allow(self, object_id: str) -> None:
        self.keyvault.allow(object_id)


def _drop(request: web.Request) -> web.Response:
    """Abort the connection; the response returned is never written (aiohttp sees a closed transport)."""
    transport = request.transport
    if transport is not None:
        with contextlib.suppress(Exception):
            transport.abort()
    return web.Response(status=DROPPED)
