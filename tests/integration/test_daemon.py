"""The daemon: passes on a schedule, probes and metrics over HTTP, a clean stop on SIGTERM.

In-process tests drive `service.daemon.Daemon` on the test's event loop with a short IntervalTrigger;
the subprocess tests run the real `secret-rotator daemon` against the same in-process emulator over
loopback and signal it.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from service.http_endpoints import parse_listen
from service.schedule import cron_trigger, cron_weekdays
from tests.conftest import assert_no_secrets
from tests.integration.conftest import World
from tests.integration.daemon_kit import (
    DaemonProcess,
    StartDaemon,
    get,
    get_json,
    metric,
    passes,
    pause_on_add_password,
)

TARGET = "dime-exchange"
GRAPH = r"^/v1\.0/"


# --- in process ----------------------------------------------------------------------------------


async def test_the_start_up_pass_rotates_and_every_endpoint_reports_it(world: World, start_daemon: StartDaemon) -> None:
    daemon = await start_daemon()
    await passes(daemon, 1)

    [password] = world.passwords()
    assert world.vault_key_id() == password.key_id
    status, health = await get_json(f"{daemon.url}/healthz")
    assert status == 200
    assert health["status"] == "alive"
    assert health["last_pass"]["changed"] == 1
    assert health["next_pass_at"] is not None
    status, ready = await get_json(f"{daemon.url}/readyz")
    assert (status, ready["status"], ready["reason"]) == (200, "ready", None)

    status, content_type, text = await get(f"{daemon.url}/metrics")
    assert status == 200
    assert content_type.startswith("text/plain; version=")
    [expiry] = metric(
        text,
        "secret_rotator_credential_expiry_timestamp_seconds",
        target=TARGET,
        key_id=password.key_id,
        managed="true",
        in_use="true",
    )
    assert expiry == pytest.approx(password.end.timestamp())
    [last_success] = metric(text, "secret_rotator_last_success_timestamp_seconds", target=TARGET)
    assert abs(last_success - world.clock.now().timestamp()) < 60
    assert metric(text, "secret_rotator_rotations_total", target=TARGET, reason="no_credential_in_use") == [1.0]
    assert metric(text, "secret_rotator_failures_total") == []
    assert metric(text, "secret_rotator_pass_duration_seconds_count") == [1.0]
    for service in ("graph", "keyvault", "push"):
        assert sum(metric(text, "secret_rotator_remote_calls_total", service=service, outcome="ok")) > 0, service
    assert_no_secrets(text, "/metrics")


async def test_readyz_says_not_ready_until_the_first_pass_has_finished(world: World, start_daemon: StartDaemon) -> None:
    arrived = pause_on_add_password(world, 1.5)
    daemon = await start_daemon()
    async with asyncio.timeout(10):
        await arrived.wait()

    status, body = await get_json(f"{daemon.url}/readyz")
    assert (status, body["reason"]) == (503, "the first pass has not finished yet")
    status, health = await get_json(f"{daemon.url}/healthz")
    assert status == 200
    assert health["pass_in_flight_since"] is not None
    _, _, text = await get(f"{daemon.url}/metrics")
    assert metric(text, "secret_rotator_last_success_timestamp_seconds") == []  # absent, never 0

    await passes(daemon, 1)
    status, _ = await get_json(f"{daemon.url}/readyz")
    assert status == 200


async def test_readyz_says_not_ready_while_every_target_fails_and_recovers_with_the_next_pass(
    world: World, start_daemon: StartDaemon
) -> None:
    world.emu.faults.add(GRAPH, status=403)
    daemon = await start_daemon(trigger=IntervalTrigger(seconds=1))
    await passes(daemon, 1)

    status, body = await get_json(f"{daemon.url}/readyz")
    assert status == 503
    assert body["reason"] == "the last pass failed on every target (permission_denied)"
    assert body["last_pass"]["failures"] == {TARGET: "permission_denied"}
    _, _, text = await get(f"{daemon.url}/metrics")
    assert metric(text, "secret_rotator_failures_total", target=TARGET, reason="permission_denied")[0] >= 1
    assert metric(text, "secret_rotator_last_success_timestamp_seconds") == []  # absent, never 0

    world.emu.faults.clear()
    await passes(daemon, daemon.passes + 2)  # the one in flight may have started before the fault went
    status, body = await get_json(f"{daemon.url}/readyz")
    assert (status, body["status"]) == (200, "ready")
    _, _, text = await get(f"{daemon.url}/metrics")
    assert metric(text, "secret_rotator_last_success_timestamp_seconds", target=TARGET)[0] > 0


async def test_passes_follow_the_trigger_and_never_overlap(world: World, start_daemon: StartDaemon) -> None:
    daemon = await start_daemon(trigger=IntervalTrigger(seconds=1))
    await passes(daemon, 3, within=20)

    assert daemon.last_pass is not None
    assert daemon.last_pass.counts == {"healthy": 1, "changed": 0, "failed": 0}
    assert len(world.passwords()) == 1
    started = [e["timestamp"] for e in world.logs.named("run.started")]
    finished = [e["timestamp"] for e in world.logs.named("run.finished")]
    # Each pass starts after the one before it finished.
    assert all(s >= f for s, f in zip(started[1:], finished, strict=False))


async def test_stop_lets_a_pass_in_flight_finish(world: World, start_daemon: StartDaemon) -> None:
    arrived = pause_on_add_password(world, 1.0)
    daemon = await start_daemon()
    async with asyncio.timeout(10):
        await arrived.wait()

    async with asyncio.timeout(30):
        cancelled = await daemon.stop("test")

    assert cancelled is False
    [password] = world.passwords()
    assert world.vault_key_id() == password.key_id
    events = [e["event"] for e in world.logs.events]
    assert events.index("run.finished") < events.index("daemon.stopped")
    [stopping] = world.logs.named("daemon.stopping")
    assert stopping["pass_in_flight"] is True


async def test_stop_cancels_a_pass_that_outlasts_the_shutdown_timeout(world: World, start_daemon: StartDaemon) -> None:
    arrived = pause_on_add_password(world, 3.0)
    daemon = await start_daemon(shutdown_timeout=0.2)
    async with asyncio.timeout(10):
        await arrived.wait()

    async with asyncio.timeout(5):
        cancelled = await daemon.stop("test")

    assert cancelled is True
    [stopped] = world.logs.named("daemon.stopped")
    assert stopped["pass_cancelled"] is True
    assert world.logs.named("run.finished") == []


# --- the schedule and the listen address ---------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        pytest.param("*", "*", id="every day stays every day"),
        pytest.param("0", "sun", id="0 is Sunday as in cron, not Monday as in APScheduler 3"),
        pytest.param("7", "sun", id="7 is Sunday too"),
        pytest.param("1-5", "mon,tue,wed,thu,fri", id="a range of numbers is weekdays"),
        pytest.param("mon-fri", "mon,tue,wed,thu,fri", id="a range of names is the same"),
        pytest.param("*/2", "sun,tue,thu,sat", id="a step counts from Sunday"),
        pytest.param("6,0", "sun,sat", id="a list is the weekend"),
    ],
)
def test_a_crontab_weekday_means_what_cron_means(field: str, expected: str) -> None:
    assert cron_weekdays(field) == expected


def test_the_cron_trigger_fires_on_cron_sundays_in_utc_with_the_configured_jitter() -> None:
    monday = datetime(2024, 1, 1, tzinfo=UTC)
    trigger = cron_trigger("0 3 * * 0", timedelta(minutes=5))

    fire = trigger.get_next_fire_time(None, monday)

    assert trigger.jitter == 300
    assert datetime(2024, 1, 7, 3, tzinfo=UTC) <= fire <= datetime(2024, 1, 7, 3, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("0.0.0.0:8080", ("0.0.0.0", 8080), id="IPv4 host and port"),  # noqa: S104 - parsed, not bound
        pytest.param("[::1]:9000", ("::1", 9000), id="IPv6 in brackets"),
        pytest.param(":8080", ("0.0.0.0", 8080), id="no host is every interface"),  # noqa: S104 - parsed, not bound
        pytest.param("localhost:0", ("localhost", 0), id="port 0 picks a free one"),
    ],
)
def test_a_listen_address_is_host_and_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["8080", "host:", "::1:8080", "[::1:8080", "host:70000", "host:http"])
def test_a_listen_address_without_a_usable_port_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"port|HOST:PORT|brackets"):
        parse_listen(text)


# --- the real command, as a subprocess -----------------------------------------------------------


@pytest.fixture
async def daemon_process() -> AsyncIterator[Callable[..., Awaitable[DaemonProcess]]]:
    started: list[DaemonProcess] = []

    async def start(*args: str, open_files: int | None = None) -> DaemonProcess:
        started.append(await DaemonProcess.start(*args, open_files=open_files))
        return started[-1]

    yield start
    for process in started:
        await process.kill()


@pytest.mark.slow
async def test_sigterm_stops_an_idle_daemon_with_exit_0(world: World, daemon_process: Any) -> None:
    daemon = await daemon_process("--config", str(world.config_file()), "--listen", "127.0.0.1:0")
    started = await daemon.event("daemon.started")
    await daemon.event("run.finished")
    host, port = parse_listen(started["listen"])
    status, body = await get_json(f"http://{host}:{port}/readyz")
    assert (status, body["last_pass"]["changed"]) == (200, 1)

    daemon.process.send_signal(signal.SIGTERM)

    assert await daemon.exit_code(within=10) == 0
    assert daemon.names()[-2:] == ["daemon.stopping", "daemon.stopped"]
    assert_no_secrets("".join(daemon.lines) + await daemon.stderr(), "the daemon's output")


@pytest.mark.slow
async def test_sigterm_during_a_pass_lets_it_finish_then_exits_0(world: World, daemon_process: Any) -> None:
    arrived = pause_on_add_password(world, 2.0)
    daemon = await daemon_process("--config", str(world.config_file()), "--listen", "127.0.0.1:0")
    async with asyncio.timeout(30):
        await arrived.wait()

    daemon.process.send_signal(signal.SIGTERM)

    assert await daemon.exit_code(within=30) == 0
    names = daemon.names()
    assert names.index("daemon.stopping") < names.index("run.finished") < names.index("daemon.stopped")
    stopping = await daemon.event("daemon.stopping")
    assert stopping["pass_in_flight"] is True
    [password] = world.passwords()
    assert world.vault_key_id() == password.key_id
    assert [d.idempotency_key for d in world.emu.receiver.deliveries] == [password.key_id]
    assert_no_secrets("".join(daemon.lines) + await daemon.stderr(), "the daemon's output")


@pytest.mark.parametrize(
    ("config_text", "message"),
    [
        pytest.param("targets: []\n", "targets", id="a config without targets"),
        pytest.param("schedule: every day\ntargets: []\n", "schedule", id="a schedule that is not cron"),
    ],
)
async def test_a_bad_config_exits_2_before_serving(
    tmp_path: Path, daemon_process: Any, config_text: str, message: str
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(config_text)

    daemon = await daemon_process("--config", str(config), "--listen", "127.0.0.1:0")

    assert await daemon.exit_code(within=30) == 2
    assert message in await daemon.stderr()
    assert "daemon.started" not in daemon.names()
