"""`run --workers N`: a pass spread over processes, a tenant's targets in one, reported as one pass.

The emulator serves from this process; the workers are real forked processes that reach it over
loopback, whether the pass runs in this process (its results and metrics) or as `python -m service run`
(its log lines and exit code).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from service import logs
from service.metrics import Metrics
from service.reconcile import Outcome
from service.runner import PassOptions, run_pass
from service.shards import worker_groups
from tests.integration.conftest import FAST_BACKOFF, FAST_RETRY, World
from tests.reliability.conftest import run_cli

TENANTS = 3
PER_TENANT = 2


def fleet(world: World, *, unowned: str | None = None) -> dict[str, tuple[str, str]]:
    """Two apps in each of three tenants, each a target: name -> (tenant, app id). The rotator owns them all
    but ``unowned``, which it may read and not change."""
    apps = {}
    for t in range(TENANTS):
        tenant = world.tenant if t == 0 else world.add_tenant()
        for a in range(PER_TENANT):
            name = f"app-{t}-{a}"
            if name == unowned:
                app_id = world.emu.add_app(tenant, name).app_id
            else:
                app_id = world.app_id if (t, a) == (0, 0) else world.add_app(tenant, name)
            world.target(name, tenant=tenant, app_id=app_id, secret_name=name)
            apps[name] = (tenant, app_id)
    return apps


def events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def options(workers: int) -> PassOptions:
    return PassOptions(retry=FAST_RETRY, backoff=FAST_BACKOFF, workers=workers)


async def test_a_pass_in_workers_returns_every_target_and_its_metrics(world: World) -> None:
    apps = fleet(world)
    config = world.config()
    metrics = Metrics()

    results = await run_pass(config, clock=world.clock, metrics=metrics, options=options(2))

    assert sorted(r.target for r in results) == sorted(apps)
    assert {r.outcome for r in results} == {Outcome.CHANGED}
    for name, (tenant, app_id) in apps.items():
        [password] = world.passwords(app_id, tenant)
        assert world.vault_key_id(name) == password.key_id
        # Each worker's metrics came back to the registry this process serves.
        assert (
            metrics.credential_expiry.labels(name, password.key_id, "true", "true")._value.get()
            == password.end.timestamp()
        )
        assert metrics.last_success.labels(name)._value.get() > 0
        assert metrics.rotations.labels(name, "no_credential_in_use")._value.get() == 1
    assert metrics.remote_calls.labels("graph", "addPassword", "ok")._value.get() == len(apps)


async def test_the_workers_are_processes_of_their_own(world: World, tmp_path: Path) -> None:
    fleet(world)
    log_file = tmp_path / "pass.log"
    with log_file.open("a") as stream:  # a file the forked workers write to as well (a StringIO stays theirs)
        logs.configure(stream, json=True, level="info")
        await run_pass(world.config(), clock=world.clock, metrics=Metrics(), options=options(2))

    started = [e for e in events(log_file.read_text()) if e["event"] == "worker.started"]
    assert sorted(e["worker"] for e in started) == [0, 1]
    assert len({e["pid"] for e in started} | {os.getpid()}) == 3


async def test_run_logs_one_pass_with_the_totals_of_every_worker(world: World) -> None:
    apps = fleet(world)
    config = world.config_file()

    first = await run_cli(config, "--workers", "2")
    second = await run_cli(config, "--workers", "2")

    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    lines = events(first.stdout)
    [started] = [e for e in lines if e["event"] == "run.started"]
    [finished] = [e for e in lines if e["event"] == "run.finished"]
    assert (started["targets"], started["workers"]) == (len(apps), 2)
    assert (finished["changed"], finished["healthy"], finished["failed"]) == (len(apps), 0, 0)
    assert "worker" not in started, "the parent's own line"
    assert "worker" not in finished, "the parent's own line"
    # Each target in exactly one worker, all of a tenant's targets in the same one.
    worker_of = {e["target"]: e["worker"] for e in lines if e["event"] == "credential.created"}
    assert sorted(worker_of) == sorted(apps)
    for tenant in {tenant for tenant, _ in apps.values()}:
        assert len({worker_of[name] for name, (t, _) in apps.items() if t == tenant}) == 1
    groups = worker_groups(world.config().targets, 2)
    assert worker_of == {t.name: i for i, group in enumerate(groups) for t in group}
    assert [e["worker"] for e in lines if e["event"] == "worker.finished"] != []
    [again] = [e for e in events(second.stdout) if e["event"] == "run.finished"]
    assert (again["healthy"], again["changed"], again["failed"]) == (len(apps), 0, 0)


async def test_run_exits_1_when_a_target_of_one_worker_fails_and_the_others_finish(world: World) -> None:
    broken = "app-2-1"
    apps = fleet(world, unowned=broken)

    done = await run_cli(world.config_file(), "--workers", "3")

    assert done.returncode == 1, done.stderr
    lines = events(done.stdout)
    [failed] = [e for e in lines if e["event"] == "rotation.failed"]
    assert (failed["target"], failed["reason"]) == (broken, "permission_denied")
    [finished] = [e for e in lines if e["event"] == "run.finished"]
    assert (finished["changed"], finished["failed"]) == (len(apps) - 1, 1)
    assert len({e["worker"] for e in lines if e["event"] == "worker.finished"}) == 3


async def test_one_target_runs_in_the_process_itself(world: World) -> None:
    fleet(world)

    done = await run_cli(world.config_file(), "--workers", "4", "--target", "app-1-0")

    assert done.returncode == 0, done.stderr
    lines = events(done.stdout)
    assert [e["workers"] for e in lines if e["event"] == "run.started"] == [1]
    assert [e for e in lines if e["event"].startswith("worker.")] == []
