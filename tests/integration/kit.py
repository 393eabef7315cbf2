"""Adapters built the way ``service/wiring.py`` builds them, on the world's emulator, for the adapter tests.

One TLS context, one aiohttp session, the rotator's client-secret credential, a Graph client per
tenant, a Key Vault client per vault; and a plain loopback server for what the emulator cannot play.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from azure.core.credentials_async import AsyncTokenCredential

from service.adapters.budget import GRAPH_LIMIT, Budget
from service.adapters.entra import EntraVerifier, rotator_credential
from service.adapters.graph import GraphDirectory
from service.adapters.graph_reads import GraphReads
from service.adapters.graph_sdk import GraphWrites, graph_service_client
from service.adapters.keyvault import KeyVault, secret_client
from service.adapters.push import HttpPusher, PushRequest
from service.adapters.transport import aiohttp_session, tls_context
from service.config.clouds import Endpoints, IdentityConfig
from service.emulator import Emulator, RequestRecord, ca
from service.metrics import Metrics
from service.retry import RetryPolicy
from service.secret import Secret
from tests.world import FAST_RETRY, World

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


@dataclass
class Kit:
    """One pass's worth of adapters on the world's emulator, closed by the fixture."""

    world: World
    tls: ssl.SSLContext
    session: aiohttp.ClientSession
    endpoints: Endpoints
    closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)

    @property
    def emu(self) -> Emulator:
        return self.world.emu

    def credential(self, secret_file: Path | None = None) -> AsyncTokenCredential:
        identity = IdentityConfig.model_validate(
            {
                "type": "client_secret",
                "tenant_id": self.world.tenant,
                "client_id": self.world.rotator_client_id,
                "client_secret": {"file": str(secret_file or self.world.tmp / "rotator-secret")},
            }
        )
        credential = rotator_credential(identity, self.endpoints, self.session, self.world.tenant)
        self.closers.append(credential.close)
        return credential

    def directory(self, retry: RetryPolicy = FAST_RETRY, *, secret_file: Path | None = None) -> GraphDirectory:
        credential = self.credential(secret_file)
        tenant, endpoints = self.world.tenant, self.endpoints
        budget = Budget(GRAPH_LIMIT)  # the tenant's: reads and writes spend (and pause) the same one
        reads = GraphReads(
            self.session, credential, tenant, endpoints.graph_url, endpoints.graph_scope, retry, Metrics(), budget
        )

        def writes() -> GraphWrites:
            client, http = graph_service_client(
                credential, tenant, endpoints.graph_url, endpoints.graph_scope, self.tls
            )
            self.closers.append(http.aclose)
            return GraphWrites(client, tenant, retry, Metrics(), budget)

        return GraphDirectory(reads, writes)

    def vault(self, retry: RetryPolicy = FAST_RETRY, *, verify_challenge_resource: bool = False) -> KeyVault:
        client = secret_client(
            self.emu.vault_url, self.credential(), self.session, verify_challenge_resource=verify_challenge_resource
        )
        self.closers.append(client.close)
        return KeyVault(client, self.emu.vault_url, retry, Metrics())

    def verifier(self) -> EntraVerifier:
        return EntraVerifier(self.endpoints, self.session)

    def pusher(self, url: str, *, api_key: str | None = None, retry: RetryPolicy = FAST_RETRY) -> HttpPusher:
        key = Secret(api_key if api_key is not None else self.emu.receiver.api_key)
        return HttpPusher(self.session, PushRequest(url=url, secret_headers={"X-API-KEY": key}), retry, Metrics())


@pytest.fixture
async def kit(world: World) -> AsyncIterator[Kit]:
    tls = tls_context(world.emu.ca_file)
    session = aiohttp_session(tls)
    endpoints = Endpoints(world.emu.url, world.emu.graph_url, GRAPH_SCOPE, world.emu.ca_file)
    built = Kit(world, tls, session, endpoints)
    try:
        yield built
    finally:
        for close in reversed(built.closers):
            await close()
        await session.close()


def calls(emu: Emulator, service: str, method: str | None = None, path: str = "") -> list[RequestRecord]:
    """The requests one service of the emulator answered, optionally by method and a path fragment."""
    return [
        r for r in emu.requests if r.service == service and (method is None or r.method == method) and path in r.path
    ]


def push_fields(world: World) -> dict[str, object]:
    return {"tenantId": world.tenant, "clientId": world.app_id, "expiresOn": "2030-01-01T00:00:00Z"}


@contextlib.asynccontextmanager
async def loopback_server(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> AsyncIterator[str]:
    """A plain-http aiohttp server on 127.0.0.1 answering every request with ``handler``; yields its URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def https_server(
    emu: Emulator, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> AsyncIterator[str]:
    """An HTTPS server on loopback with the emulator's certificate (so the rotator trusts it), answering every
    request with ``handler``; yields its URL, named ``localhost`` so that it is another host than the emulator."""
    files = ca.CertificateFiles(emu.ca_file, emu.state_dir / "server.pem", emu.state_dir / "server-key.pem")
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ca.server_context(files)).start()
    try:
        yield f"https://localhost:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@dataclass
class Catcher:
    """A server a redirect points to: it records what reaches it and answers as if it were the real thing."""

    answer: Callable[[web.Request], dict[str, Any]]
    seen: list[tuple[str, str, bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.method, request.path, await request.read()))
        return web.json_response(self.answer(request))
