"""One worker of `run --workers 2` killed mid-pass: its targets fail loudly, the other worker's finish, and
the next passes repair what the kill left, with the invariants holding throughout.

A real `secret-rotator run` process forks its workers; the emulator, in this process, SIGKILLs the worker
that holds the second tenant right after it created a credential there (the answer is lost). Time is
real (the subprocess has the system clock), so the policy uses seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import ClientSecretCredential

from service.emulator import RequestInfo
from service.shards import worker_groups
from tests.conftest import assert_no_secrets
from tests.integration.conftest import World
from tests.reliability.conftest import RUN_TIMEOUT

pytestmark = pytest.mark.slow

IN_FLIGHT = 2.0  # seconds
GRACE = 2.0
PER_TENANT = 2


def two_tenants(world: World) -> dict[str, tuple[str, str]]:
    """Two apps in each of two tenants, each a target with Key Vault and a push: name -> (tenant, app id)."""
    world.defaults.update(in_flight_timeout=f"{IN_FLIGHT:g}s", grace_period=f"{GRACE:g}s", verify_timeout="20s")
    apps = {}
    for t, tenant in enumerate((world.tenant, world.add_tenant())):
        for a in range(PER_TENANT):
            name = f"app-{t}-{a}"
            app_id = world.app_id if (t, a) == (0, 0) else world.add_app(tenant, name)
            world.target(name, tenant=tenant, app_id=app_id, secret_name=name)
            apps[name] = (tenant, app_id)
    return apps


async def run_workers(
    world: World, *, on_started: Callable[[int, int], None] | None = None
) -> tuple[int, list[dict[str, Any]]]:
    """`python -m service run --workers 2`: its exit code and log lines; ``on_started(worker, pid)`` as each
    worker says it started."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "run",
        "--config",
        str(world.config_file()),
        "--workers",
        "2",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    assert process.stderr is not None
    lines: list[dict[str, Any]] = []
    text: list[str] = []

    async def read() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode()
            text.append(line)
            event = json.loads(line)
            lines.append(event)
            if event["event"] == "worker.started" and on_started is not None:
                on_started(event["worker"], event["pid"])

    try:
        async with asyncio.timeout(RUN_TIMEOUT):
            _, stderr = await asyncio.gather(read(), process.stderr.read())
            code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert_no_secrets("".join(text) + stderr.decode(), "the run's output")
    return code, lines


async def authenticates(world: World, tenant: str, app_id: str, secret: str) -> bool:
    credential = ClientSecretCredential(
        tenant, app_id, secret, authority=world.emu.url, connection_verify=str(world.emu.ca_file)
    )
    async with credential:
        try:
            await credential.get_token("https://graph.microsoft.com/.default")
        except ClientAuthenticationError:
            return False
    return True


async def check_invariants(world: World, apps: dict[str, tuple[str, str]]) -> None:
    """I1 for every target's sinks, I3 on every app."""
    for name, (tenant, app_id) in apps.items():
        assert len(world.passwords(app_id, tenant)) <= 4, f"I3: {name} has more credentials than max_credentials"
        latest = world.emu.vault_secret(name)
        if latest is not None:
            assert await authenticates(world, tenant, app_id, latest.value), f"I1: {name}'s Key Vault secret"
    last: dict[str, Any] = {}
    for delivery in world.emu.receiver.deliveries:
        last[delivery.client_id] = delivery
    for delivery in last.values():
        assert world.emu.receiver.signs_in(delivery.tenant_id, delivery.client_id, delivery.reveal()), (
            f"I1: the push endpoint holds a dead secret for {delivery.client_id}"
        )


async def test_a_worker_killed_mid_pass_fails_its_targets_loudly_and_the_next_passes_repair(world: World) -> None:
    apps = two_tenants(world)
    doomed_tenant = apps["app-1-0"][0]
    groups = worker_groups(world.config().targets, 2)
    [doomed] = [i for i, group in enumerate(groups) if group[0].tenant_id == doomed_tenant]
    doomed_names = sorted(t.name for t in groups[doomed])
    object_ids = [
        world.emu.directory.app_by_app_id(world.emu.directory.require_tenant(tenant), app_id)
        for name, (tenant, app_id) in apps.items()
        if name in doomed_names
    ]
    pids: dict[int, int] = {}
    killed: list[int] = []

    def kill(_: RequestInfo) -> None:
        pid = pids.get(doomed)
        if pid is not None and not killed:
            killed.append(pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    path = "/(" + "|".join(app.object_id for app in object_ids if app is not None) + ")/addPassword$"
    fault = world.emu.faults.add(path, "POST", "hook", after=True, count=1, hook=kill)

    code, lines = await run_workers(world, on_started=pids.__setitem__)

    world.emu.faults.remove(fault)
    assert killed == [pids[doomed]], "the doomed worker was killed once, by its pid"
    assert code == 1
    [failed] = [e for e in lines if e["event"] == "worker.failed"]
    assert failed["worker"] == doomed
    assert failed["reason"] == "unexpected"
    assert "killed by SIGKILL" in failed["error"]
    assert "next pass" in failed["hint"]
    lost = sorted(e["target"] for e in lines if e["event"] == "rotation.failed")
    assert lost == doomed_names
    assert all(e["reason"] == "unexpected" for e in lines if e["event"] == "rotation.failed")
    survivors = sorted(set(apps) - set(doomed_names))
    assert (
        sorted(
            e["target"] for e in lines if e["event"] == "credential.created" and "worker" in e and e["worker"] != doomed
        )
        == survivors
    )
    [finished] = [e for e in lines if e["event"] == "run.finished"]
    assert (finished["changed"], finished["failed"]) == (len(survivors), len(doomed_names))
    await check_invariants(world, apps)

    # The next passes: the first repairs, and once in_flight_timeout and the grace period have passed,
    # each app is down to the one secret every sink holds.
    code, lines = await run_workers(world)
    assert code == 0, [e for e in lines if e["event"] == "rotation.failed"]
    await check_invariants(world, apps)
    for _ in range(2):
        await asyncio.sleep(max(IN_FLIGHT, GRACE) + 0.5)
        code, lines = await run_workers(world)
        assert code == 0, [e for e in lines if e["event"] == "rotation.failed"]
        await check_invariants(world, apps)
    for name, (tenant, app_id) in apps.items():
        [survivor] = world.passwords(app_id, tenant)
        assert world.vault_key_id(name) == survivor.key_id, name
    assert sorted(e["target"] for e in lines if e["event"] == "target.healthy") == sorted(apps)
