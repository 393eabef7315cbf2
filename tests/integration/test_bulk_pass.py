"""A pass gathers in bulk before it plans: each tenant's apps in Graph batches, each vault listed once.

A healthy target is settled from those reads alone, without its lock; a target whose plan depends on
the whole history of its Key Vault secret reads its versions; a target that needs a change is read again,
fresh and alone, under its lock, before anything is written. An app that cannot be read fails its target
as reading it alone would. Real SDKs and real HTTPS against the emulator.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from service.adapters.state_file import FileStateStore
from service.emulator import RequestRecord
from service.metrics import Metrics
from service.reconcile import Outcome
from service.runner import plan_pass
from tests.integration.conftest import World, days

TARGETS_HOME, TARGETS_AWAY = 6, 4


def consent_in_another_tenant(world: World) -> str:
    """A second tenant in which the rotator (a multi-tenant app) is consented, as a partner's fleet has."""
    emu = world.emu
    tenant = emu.add_tenant()
    emu.add_app(tenant, "secret-rotator", app_id=world.rotator_client_id, service_principal=False)
    sp = emu.add_service_principal(tenant, world.rotator_client_id)
    emu.grant_app_role(tenant, sp.object_id, "Application.ReadWrite.OwnedBy")
    emu.add_password(tenant, world.rotator_client_id, secret=(world.tmp / "rotator-secret").read_text())
    return tenant


def fleet(world: World, *, due: str | None = None) -> dict[str, tuple[str, str]]:
    """Targets in two tenants, each with its own app, Key Vault secret and push: name -> (tenant, app id).
    ``due``: the target whose secrets live 30 days (the others' 90), so that it alone is due after 21."""
    away = consent_in_another_tenant(world)
    owners = {
        world.tenant: world.rotator_object_id,
        away: world.emu.directory.sp_by_app_id(
            world.emu.directory.require_tenant(away), world.rotator_client_id
        ).object_id,
    }
    targets = {}
    for n in range(TARGETS_HOME + TARGETS_AWAY):
        tenant = world.tenant if n < TARGETS_HOME else away
        app = world.emu.add_app(tenant, f"Dime.Scheduler {n}", owners=[owners[tenant]])
        name = f"app-{n}"
        policy = {"lifetime": "30d"} if name == due else {}
        world.target(name, app_id=app.app_id, tenant=tenant, secret_name=name, **policy)
        targets[name] = (tenant, app.app_id)
    return targets


def graph_http(world: World) -> list[RequestRecord]:
    return [r for r in world.emu.requests if r.service == "graph" and not r.inner]


def graph_inner(world: World) -> list[RequestRecord]:
    return [r for r in world.emu.requests if r.service == "graph" and r.inner]


def vault_http(world: World) -> list[RequestRecord]:
    return [r for r in world.emu.requests if r.service == "keyvault" and r.status != 401]


async def test_a_healthy_pass_reads_each_tenants_apps_in_one_batch_and_the_vault_in_one_listing(
    world: World,
) -> None:
    targets = fleet(world)
    first = await world.run()
    assert {r.outcome for r in first} == {Outcome.CHANGED}
    world.emu.reset_requests()

    second = await world.run()

    assert {r.outcome for r in second} == {Outcome.HEALTHY}
    assert Counter((r.method, r.path, r.tenant_id) for r in graph_http(world)) == Counter(
        {("POST", "/v1.0/$batch", tenant): 1 for tenant, _ in targets.values()}
    ), "one batch per tenant, and no app read alone"
    assert [(r.method, r.path) for r in graph_inner(world)] == [("GET", "/v1.0/applications")] * 2, (
        "one `appId in (...)` filter per tenant"
    )
    assert [(r.method, r.path) for r in vault_http(world)] == [("GET", "/secrets")], "one page lists 10 secrets"
    assert len(world.logs.named("target.healthy")) == len(targets)


async def test_only_a_target_whose_plan_needs_its_secrets_history_reads_its_versions(world: World) -> None:
    fleet(world)
    await world.run()
    await world.run(force=True, only="app-0")  # app-0 now has a superseded credential in its grace period
    world.emu.reset_requests()

    within_grace = await world.run()

    assert {r.outcome for r in within_grace} == {Outcome.HEALTHY}
    versions = [r.path for r in vault_http(world) if r.path.endswith("/versions")]
    assert versions == ["/secrets/app-0/versions"], "the superseded credential's fate needs what app-0 recorded"

    world.clock.advance(days(1.1))
    world.emu.reset_requests()
    after_grace = {r.target: r.outcome for r in await world.run()}

    assert after_grace.pop("app-0") is Outcome.CHANGED
    assert set(after_grace.values()) == {Outcome.HEALTHY}
    assert len(world.passwords(world.targets[0]["client_id"])) == 1, "the superseded credential retired"


async def test_a_target_that_needs_a_change_is_read_again_alone_before_anything_is_written(world: World) -> None:
    targets = fleet(world, due="app-5")
    await world.run()
    world.clock.advance(days(21))  # app-5's 30-day secret is due, the others' 90-day ones are not
    world.emu.reset_requests()

    outcomes = {r.target: r.outcome for r in await world.run()}

    assert outcomes.pop("app-5") is Outcome.CHANGED
    assert set(outcomes.values()) == {Outcome.HEALTHY}
    requests = world.emu.requests
    batches = [i for i, r in enumerate(requests) if r.path == "/v1.0/$batch"]
    alone = [i for i, r in enumerate(requests) if r.service == "graph" and not r.inner and r.method == "GET"]
    versions = [i for i, r in enumerate(requests) if r.path == "/secrets/app-5/versions"]
    first_write = next(i for i, r in enumerate(requests) if r.path.endswith("/addPassword"))
    assert requests[alone[0]].path == f"/v1.0/applications(appId='{targets['app-5'][1]}')"
    assert max(batches) < alone[0] < first_write, "read in bulk, then again alone under its lock, then written"
    assert versions
    assert versions[0] < first_write
    assert {requests[i].path for i in alone} == {requests[alone[0]].path}, "no other app was read alone"


async def test_a_healthy_target_is_settled_while_another_pass_holds_its_lock(world: World) -> None:
    fleet(world)
    await world.run()
    store = FileStateStore(world.tmp / "state")
    held, release = asyncio.Event(), asyncio.Event()

    async def another_pass() -> None:
        async with store.lock("app-0"):
            held.set()
            await release.wait()

    holder = asyncio.create_task(another_pass())
    await held.wait()
    try:
        results = await asyncio.wait_for(world.run(), timeout=20)
    finally:
        release.set()
        await holder

    assert {r.outcome for r in results} == {Outcome.HEALTHY}


async def test_an_app_that_cannot_be_read_fails_its_target_as_alone_and_the_others_are_settled(
    world: World,
) -> None:
    fleet(world)
    await world.run()
    ghost = world.target(
        "ghost", app_id="0c5e6f7a-8b9c-4d0e-9f1a-2b3c4d5e6f7a", sinks=("keyvault",), secret_name="ghost"
    )
    theirs = world.emu.add_app(world.tenant, "Not ours")
    world.target("not-ours", app_id=theirs.app_id, sinks=("keyvault",), secret_name="not-ours")
    world.emu.reset_requests()

    results = {r.target: r for r in await world.run()}

    assert results.pop("ghost").outcome is Outcome.FAILED
    assert results.pop("not-ours").outcome is Outcome.FAILED
    assert {r.outcome for r in results.values()} == {Outcome.HEALTHY}
    [missing] = world.logs.named("rotation.failed", target="ghost")
    [denied] = world.logs.named("rotation.failed", target="not-ours")
    assert (missing["reason"], missing["status"], missing["code"]) == ("not_found", 404, "Request_ResourceNotFound")
    assert "client_id" in missing["hint"]
    assert (denied["reason"], denied["status"]) == ("permission_denied", 403)
    assert ghost["client_id"] in missing["error"]
    assert [r.method for r in graph_http(world)].count("GET") == 0, "read alone inside a batch, not apart"


async def test_plan_and_status_read_in_bulk_too_and_write_nothing(world: World) -> None:
    fleet(world)
    await world.run()
    world.emu.reset_requests()

    results = await plan_pass(world.config(), clock=world.clock, metrics=Metrics())

    assert {r.outcome for r in results} == {Outcome.HEALTHY}
    assert {(r.method, r.path) for r in graph_http(world)} == {("POST", "/v1.0/$batch")}
    assert [(r.method, r.path) for r in vault_http(world)] == [("GET", "/secrets")]
    assert not [r for r in world.emu.requests if r.method in ("PUT", "PATCH", "DELETE")]
