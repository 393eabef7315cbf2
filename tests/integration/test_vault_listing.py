"""Reading a Key Vault secret's versions as the real service lists them: by version id, in pages that may
be short yet carry a nextLink. The adapter and the Key Vault sink must follow every nextLink and take the
newest version from `created`, never the last one listed. And the pass's one listing of a vault's secrets
(their current versions, 25 a page), which a pass uses instead of reading each target's secret alone.

The real azure-keyvault-secrets client talks HTTPS to the emulator, which serves the listing in that order.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest

from service.adapters.entra import rotator_credential
from service.adapters.keyvault import KeyVault, secret_client
from service.adapters.transport import aiohttp_session, tls_context
from service.config.clouds import Endpoints, IdentityConfig
from service.metrics import Metrics
from service.model import App, Credential
from service.ports import NotListed
from service.sinks.keyvault import VaultSink
from tests.integration.conftest import FAST_RETRY, SECRET_NAME, World
from tests.integration.kit import Catcher, https_server


@pytest.fixture
async def vault(world: World) -> AsyncIterator[KeyVault]:
    """A KeyVault adapter built as service/wiring.py builds it, on the world's emulator."""
    emu = world.emu
    session = aiohttp_session(tls_context(emu.ca_file))
    endpoints = Endpoints(emu.url, emu.graph_url, "https://graph.microsoft.com/.default", emu.ca_file)
    identity = IdentityConfig.model_validate(
        {
            "type": "client_secret",
            "tenant_id": world.tenant,
            "client_id": world.rotator_client_id,
            "client_secret": {"file": str(world.tmp / "rotator-secret")},
        }
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
        world.emu.add_vault_secret(
            SECRET_NAME,
            f"value-of-{key_id}-0123456789",
            version_id=version_id,
            tags={"managed-by": "secret-rotator", "key-id": key_id, "client-id": world.app_id},
        )
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
    app = App(
        "object-id",
        world.app_id,
        "Dime.Scheduler",
        tuple(
            Credential(key_id, f"secret-rotator {start:%Y-%m-%dT%H:%M:%SZ}", None, start, start + timedelta(days=90))
            for key_id, _ in WRITTEN
        ),
    )
    sink = VaultSink(vault, world.emu.vault_url, SECRET_NAME, world.app_id)

    holding = await sink.read(app)

    assert holding.key_id == "k3"
    assert holding.recorded == {"k1", "k2", "k3"}
    current = world.emu.vault_secret(SECRET_NAME)
    assert current is not None
    assert holding.since == current.created.replace(microsecond=0)  # Key Vault's times have whole seconds
    assert (await sink.read_secret("k3")).reveal() == "value-of-k3-0123456789"


# --- the pass's one listing of a vault (GET /secrets, 25 a page) ------------------------------------


def seed_secrets(world: World, count: int, prefix: str = "app") -> list[str]:
    names = [f"{prefix}-{i:03d}" for i in range(count)]
    for i, name in enumerate(names):
        world.emu.add_vault_secret(name, f"value-of-{name}-0123456789", tags={"key-id": f"k{i}"})
    return names


def listing_pages(world: World) -> list[int]:
    """The statuses of the listing's pages (the vault's 401 challenge, paid once by a new client, left out)."""
    return [
        r.status for r in world.emu.requests if r.service == "keyvault" and r.path == "/secrets" and r.status != 401
    ]


def secret_reads(world: World) -> list[str]:
    return [r.path for r in world.emu.requests if r.service == "keyvault" and r.path.startswith("/secrets/")]


@pytest.mark.parametrize("page_limit", [None, 7], ids=["in pages of 25", "in pages shorter than asked for"])
async def test_one_listing_answers_every_secret_of_the_pass_as_its_page_arrives(
    world: World, vault: KeyVault, page_limit: int | None
) -> None:
    names = seed_secrets(world, 60)
    world.emu.vault_page_limit = page_limit
    vault.wanted = 61
    world.emu.reset_requests()

    found = await asyncio.gather(*(vault.current(n.upper()) for n in [*names, "not-there"]))

    assert [v.tags["key-id"] if v else None for v in found] == [f"k{i}" for i in range(60)] + [None]
    assert all(v.created is not None and v.enabled for v in found if v)
    assert listing_pages(world) == [200] * math.ceil(60 / (page_limit or 25)), "every nextLink, once"
    assert secret_reads(world) == [], "no secret was read alone"
    assert await vault.current("app-000") == found[0], "later callers are answered from the same listing"
    assert len(listing_pages(world)) == math.ceil(60 / (page_limit or 25))


async def test_a_vault_read_by_one_target_of_the_pass_is_not_listed(world: World, vault: KeyVault) -> None:
    seed_secrets(world, 3)
    vault.wanted = 1
    world.emu.reset_requests()

    with pytest.raises(NotListed):
        await vault.current("app-000")

    assert listing_pages(world) == []


async def test_a_vault_mostly_holding_other_secrets_is_given_up_after_a_few_pages(
    world: World, vault: KeyVault
) -> None:
    seed_secrets(world, 200, prefix="other")
    vault.wanted = 2
    world.emu.reset_requests()

    with pytest.raises(NotListed):
        await vault.current("app-000")

    assert listing_pages(world) == [200, 200], "no more pages than its 2 secrets read alone would take requests"


async def test_a_vault_shared_with_other_processes_secrets_is_listed_while_that_costs_fewer_requests(
    world: World, vault: KeyVault
) -> None:
    # Another worker's or shard's targets keep their secrets in the same vault: 10 of its 60 are this one's.
    names = seed_secrets(world, 60)
    vault.wanted = 10
    world.emu.reset_requests()

    found = await asyncio.gather(*(vault.current(n) for n in names[::6]))

    assert [v.tags["key-id"] if v else None for v in found] == [f"k{i}" for i in range(0, 60, 6)]
    assert listing_pages(world) == [200, 200, 200], "3 pages instead of 10 reads alone"
    assert secret_reads(world) == []


async def test_a_listing_the_vault_refuses_leaves_each_sink_to_read_its_own_secret(
    world: World, vault: KeyVault
) -> None:
    seed_in_order(world, WRITTEN)
    world.emu.kv_scope_to_secrets(world.rotator_object_id)
    vault.wanted = 2
    app = _app_with(world, [key_id for key_id, _ in WRITTEN])
    sink = VaultSink(vault, world.emu.vault_url, SECRET_NAME, world.app_id)
    world.emu.reset_requests()

    holding = await sink.read(app, history=False)

    assert (holding.key_id, holding.recorded, holding.history) == ("k3", {"k1", "k2", "k3"}, True)
    assert listing_pages(world) == [403]
    assert secret_reads(world) == [f"/secrets/{SECRET_NAME}/versions"]
    with pytest.raises(NotListed):
        await vault.current(SECRET_NAME)
    assert listing_pages(world) == [403], "refused once a pass"


async def test_a_next_link_away_from_the_vault_is_not_followed(world: World, vault: KeyVault) -> None:
    # Another host that would answer as the vault does: the listing would carry the vault's token there.
    catcher = Catcher(
        lambda _: {
            "value": [
                {
                    "id": f"{world.emu.vault_url}/secrets/{SECRET_NAME}",
                    "attributes": {"enabled": True, "created": 1},
                    "tags": {"key-id": "planted"},
                }
            ],
            "nextLink": None,
        }
    )
    async with https_server(world.emu, catcher.handle) as elsewhere:
        world.emu.faults.add(
            r"^/secrets$",
            "GET",
            "respond",
            status=200,
            count=1,
            body=f'{{"value": [], "nextLink": "{elsewhere}/secrets?$skiptoken=x"}}',
        )
        vault.wanted = 2

        with pytest.raises(NotListed):
            await vault.current(SECRET_NAME)

    assert catcher.seen == []


def _app_with(world: World, key_ids: list[str]) -> App:
    start = world.clock.now() - timedelta(days=1)
    return App(
        "object-id",
        world.app_id,
        "Dime.Scheduler",
        tuple(
            Credential(k, f"secret-rotator {start:%Y-%m-%dT%H:%M:%SZ}", None, start, start + timedelta(days=90))
            for k in key_ids
        ),
    )


async def test_the_key_vault_sink_holds_the_listed_current_version_and_names_only_it(
    world: World, vault: KeyVault
) -> None:
    seed_in_order(world, WRITTEN)
    vault.wanted = 2
    sink = VaultSink(vault, world.emu.vault_url, SECRET_NAME, world.app_id)
    world.emu.reset_requests()

    holding = await sink.read(_app_with(world, ["k1", "k2", "k3"]), history=False)

    current = world.emu.vault_secret(SECRET_NAME)
    assert current is not None
    assert (holding.key_id, holding.recorded, holding.history) == ("k3", {"k3"}, False)
    assert holding.since == current.created.replace(microsecond=0)
    assert secret_reads(world) == [], "neither the versions nor the value were read"


@pytest.mark.parametrize(
    ("arrange", "expected"),
    [
        pytest.param(lambda w: None, (None, frozenset(), True), id="no such secret: nothing held, nothing recorded"),
        pytest.param(
            lambda w: w.emu.add_vault_secret(SECRET_NAME, "made-by-hand-0123456789"),
            (None, frozenset(), True),
            id="an untagged secret is read whole, to adopt it",
        ),
        pytest.param(
            lambda w: w.emu.add_vault_secret(
                SECRET_NAME, "value-0123456789", tags={"key-id": "k1", "client-id": "another-app"}
            ),
            (None, frozenset(), False),
            id="another app's secret holds nothing of ours",
        ),
    ],
)
async def test_what_the_key_vault_sink_makes_of_the_listing(
    world: World,
    vault: KeyVault,
    arrange: Callable[[World], object],
    expected: tuple[str | None, frozenset[str], bool],
) -> None:
    arrange(world)
    vault.wanted = 2
    sink = VaultSink(vault, world.emu.vault_url, SECRET_NAME, world.app_id)

    holding = await sink.read(_app_with(world, ["k1"]), history=False)

    assert (holding.key_id, holding.recorded, holding.history) == expected
