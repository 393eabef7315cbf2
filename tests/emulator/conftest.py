"""Fixtures: a started emulator with one tenant and a rotator identity, and an HTTPS client trusting it."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from service.emulator import Clock, Emulator, Identity

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
VAULT_SCOPE = "https://vault.azure.net/.default"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def emu(clock: Clock) -> AsyncIterator[Emulator]:
    emulator = Emulator(clock=clock, receiver_api_key="test-receiver-api-key-0123456789")
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.stop()


@pytest.fixture
def tenant_id(emu: Emulator) -> str:
    return emu.add_tenant()


@pytest.fixture
def rotator(emu: Emulator, tenant_id: str) -> Identity:
    return emu.add_rotator(tenant_id)


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    context = ssl.create_default_context(cafile=str(emu.ca_file))
    # force_close: a dropped connection must surface as an error, not be retried on a fresh one.
    connector = aiohttp.TCPConnector(ssl=context, force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=20)) as session:
        yield session


TokenGetter = Callable[..., Awaitable[str]]


@pytest.fixture
def get_token(http: aiohttp.ClientSession, emu: Emulator) -> TokenGetter:
    """`await get_token(identity_or_(tenant, client_id, secret), scope=...)` -> an access token."""

    async def fetch(identity: Identity, scope: str = GRAPH_SCOPE, *, secret: str | None = None) -> str:
        response = await http.post(
            f"{emu.url}/{identity.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": identity.client_id,
                "client_secret": secret or identity.secret,
                "scope": scope,
            },
        )
        body: dict[str, Any] = await response.json()
        assert response.status == 200, body
        token = body["access_token"]
        assert isinstance(token, str)
        return token

    return fetch


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def auth() -> Callable[[str], dict[str, str]]:
    return bearer
