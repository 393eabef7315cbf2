"""The daemon with `--workers`: each pass runs in forked workers, and /metrics tells what every worker did.

The workers' metric changes come back with their results and land in the registry the daemon serves:
the expiry series of a target are replaced as the pass left its app, counters add up over workers and
passes, and the pass is observed once. A pass cancelled at shutdown leaves no worker behind.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
from datetime import timedelta

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import generate_latest

from service.daemon import Daemon
from service.runner import PassOptions
from tests.conftest import assert_no_secrets
from tests.integration.conftest import FAST_BACKOFF, FAST_RETRY, World
from tests.integration.daemon_kit import DaemonProcess, get, metric, passes, pause_on_add_password
from tests.integration.test_workers import fleet

EXPIRY = "secret_rotator_credential_expiry_timestamp_seconds"


def daemon(world: World, **kwargs: object) -> Daemon:
    return Daemon(
        world.config(),
        clock=world.clock,
        metrics=world.metrics,
        listen=("127.0.0.1", 0),
        options=PassOptions(retry=FAST_RETRY, backoff=FAST_BACKOFF, workers=2),
        **kwargs,
    )  # type: ignore[arg-type]


async def test_metrics_of_every_worker_and_pass_reach_the_daemons_registry(world: World) -> None:
    apps = fleet(world)
    running = daemon(world, trigger=IntervalTrigger(seconds=2))
    await running.start()
    try:
        await passes(running, 1)
        first = {name: world.passwords(app_id, tenant)[0] for name, (tenant, app_id) in apps.items()}
        # Two thirds of the 90-day lifetime later every target is due: the next pass rotates each.
        world.clock.advance(timedelta(days=61))
        await passes(running, 2)
        _, _, text = await get(f"{running.url}/metrics")
    finally:
        await running.stop()

    assert "secret_rotator_credential_expiry" in text  # the daemon's own /metrics; the rest from its registry
    text = generate_latest(world.metrics.registry).decode()  # after stop: no pass in flight any more
    for name, (tenant, app_id) in apps.items():
        old = first[name]
        [new] = [p for p in world.passwords(app_id, tenant) if p.key_id != old.key_id]
        # The series as the second pass left the app: the new secret in use, the old one no longer.
        series = {(s["key_id"], s["in_use"]) for s in _labels(text, EXPIRY, target=name)}
        assert series == {(new.key_id, "true"), (old.key_id, "false")}, name
        assert metric(text, EXPIRY, target=name, key_id=new.key_id) == [new.end.timestamp()]
        assert metric(text, "secret_rotator_rotations_total", target=name, reason="no_credential_in_use") == [1.0]
        assert metric(text, "secret_rotator_rotations_total", target=name, reason="renewal_due") == [1.0]
        [last] = metric(text, "secret_rotator_last_success_timestamp_seconds", target=name)
        assert last >= world.clock.now().timestamp() - 60
    assert metric(
        text, "secret_rotator_remote_calls_total", service="graph", operation="addPassword", outcome="ok"
    ) == [2.0 * len(apps)]  # later passes found every target healthy
    assert metric(text, "secret_rotator_pass_duration_seconds_count") == [float(running.passes)]
    assert metric(text, "secret_rotator_failures_total") == []


async def test_a_pass_cancelled_at_shutdown_leaves_no_worker_behind(world: World) -> None:
    fleet(world)
    arrived = pause_on_add_password(world, 5.0)
    running = daemon(world, trigger=IntervalTrigger(hours=1), shutdown_timeout=0.2)
    await running.start()
    async with asyncio.timeout(10):
        await arrived.wait()
    assert len(multiprocessing.active_children()) == 2

    async with asyncio.timeout(10):
        cancelled = await running.stop("test")

    assert cancelled is True
    assert multiprocessing.active_children() == []


def _labels(text: str, name: str, **match: str) -> list[dict[str, str]]:
    from prometheus_client.parser import text_string_to_metric_families

    return [
        dict(s.labels)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in match.items())
    ]


@pytest.mark.slow
async def test_the_daemon_command_runs_its_passes_in_workers(world: World) -> None:
    apps = fleet(world)
    running = await DaemonProcess.start(
        "--config", str(world.config_file()), "--listen", "127.0.0.1:0", "--workers", "2"
    )
    try:
        finished = await running.event("run.finished")
        running.process.send_signal(signal.SIGTERM)
        assert await running.exit_code(within=30) == 0
    finally:
        await running.kill()
    assert finished["changed"] == len(apps)
    assert sorted(e["worker"] for e in running.events if e.get("event") == "worker.finished") == [0, 1]
    assert running.names().count("run.started") == 1
    assert_no_secrets("".join(running.lines) + await running.stderr(), "the daemon's output")
