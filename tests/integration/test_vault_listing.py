"""Reading a Key Vault secret's versions as the real service lists them: by version id, in pages that may
be short yet carry a nextLink. The adapter and the Key Vault sink must follow every nextLink and take the
newest version from `created`, never the last one listed.

The real azure-keyvault-secrets client talks HTTPS to the emulator, which serves the listing in that order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from service.adapters.entra import rotator_credential
from service.adapters.keyvault import KeyVault, secret_client
from service.adapters.transport import aiohttp_session, tls_context
from service.config.clouds import Endpoints, IdentityConfig
from service.metrics import Metrics
from service.model import App, Credential
from service.sinks.keyvault import VaultSink
from tests.integration.conftest import FAST_RETRY, SECRET_NAME, World


@pytest.fixture
async def vault(world: World) -> AsyncIterator[KeyVault]:
    """A KeyVault adapter built as service/wiring.py builds it, on the world's emulator."""
    emu = world.emu
    session = aiohttp_session(tls_context(emu.ca_file))
    endpoints = Endpoints(emu.url, emu.graph_url, "https://graph.microsoft.com/.default", emu.ca_file)
    identity = IdentityConfig.model_validate(
        {"type": "client_secret", "tenant_id": world.tenant, "client_id": world.rotator_client_id,
         "client_secret": {"file": str(world.tmp / "rotator-secret")}}
    )
    credential = rotator_credential(identity, endpoints, session, world.tenant)
    client = secret_client(emu.vault_url, credential, session, verify_challenge_resource=False)
    try:
        yield KeyVault(client, emu.vault_url, FAST_RETRY, Metrics())
    finally:
        await client.close()
        await credential.close()
        await session.close()


def seed_in_order(world: World, versions: list[tuple[str, str]]) -> None:
    """Key Vault versions written one after another (5 s apart), each (key id, version id)."""
    for key_id, version_id in versions:
        world.emu.add_vault_secret(SECRET_NAME, f"value-of-{key_id}-0123456789", version_id=version_id,
                                   tags={"managed-by": "secret-rotator", "key-id": key_id,
                                         "client-id": world.app_id})
        world.clock.advance(timedelta(seconds=5))


# Written k1, k2, k3; listed by id k1, k3, k2: the newest is neither the first nor the last one listed.
WRITTEN = [("k1", "0" * 32), ("k2", "f" * 32), ("k3", "8" * 32)]


async def test_the_adapter_follows_next_links_past_pages_shorter_than_it_asked_for(
    world: World, vault: KeyVault
) -> None:
    seed_in_order(world, WRITTEN)
    world.emu.vault_page_limit = 1  # the adapter asks for up to 25 a page and gets 1, with a nextLink
    world.emu.reset_requests()

    listed = await vault.list_versions(SECRET_NAME)

    assert {v.tags["key-id"] for v in listed} == {"k1", "k2", "k3"}
    pages = [r for r in world.emu.requests if r.method == "GET" and r.path.endswith("/versions") and r.status == 200]
    assert len(pages) == 3, "every nextLink was followed"


@pytest.mark.parametrize("page_limit", [None, 1], ids=["in one page", "in pages of one"])
async def test_the_key_vault_sink_holds_the_newest_version_not_the_last_one_listed(
    world: World, vault: KeyVault, page_limit: int | None
) -> None:
    seed_in_order(world, WRITTEN)
    world.emu.vault_page_limit = page_limit
    start = world.clock.now() - timedelta(days=1)
    app = App("object-id", world.app_id, "Dime.Scheduler", tuple(
        Credential(key_id, f"secret-rotator {start:%Y-%m-%dT%H:%M:%SZ}", None, start, start + timedelta(days=90))
        for key_id, _ in WRITTEN
    ))
    sink = VaultSink(vault, world.emu.vault_url, SECRET_NAME, world.app_id)

    holding = await sink.read(app)

    assert holding.key_id == "k3"
    assert holding.recorded == {"k1", "k2", "k3"}
    current = world.emu.vault_secret(SECRET_NAME)
    assert current is not None
    assert holding.since == current.created.replace(microsecond=0)  # Key Vault's times have whole seconds
    assert (await sink.read_secret("k3")).reveal() == "value-of-k3-0123456789"
