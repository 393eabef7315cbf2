"""The daemon under a slow-connection flood (slowloris): probes keep answering, passes keep working.

A real `secret-rotator daemon` process runs with RLIMIT_NOFILE lowered to 256, so that a few hundred
loopback connections are a flood. They come from another loopback address (127.0.0.2, as an attacker
in another pod would) and each sends a request head a line at a time, never finishing it; the ones the
server drops are opened again every round, as slowloris does. Meanwhile the start-up pass (held at
addPassword until the flood is up) must open its own connections to Entra, Key Vault and the push
endpoint, `/readyz` is asked twice a second from 127.0.0.1, and the log must stay small.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest

from service.http_endpoints import parse_listen
from tests.conftest import assert_no_secrets
from tests.integration.conftest import World
from tests.integration.daemon_kit import DaemonProcess, pause_on_add_password

pytestmark = pytest.mark.slow

OPEN_FILES = 256  # the daemon's RLIMIT_NOFILE, soft and hard
FLOOD_CONNECTIONS = 300  # more than the daemon has descriptors
FLOOD_SECONDS = 12.0
ATTACKER = "127.0.0.2"


@dataclass
class SlowFlood:
    """``count`` connections from ``source`` that send a request head slowly and never finish it."""

    host: str
    port: int
    count: int
    source: str = ATTACKER
    interval: float = 0.5
    opened: int = 0
    up: asyncio.Event = field(default_factory=asyncio.Event)

    async def _open(self) -> asyncio.StreamWriter | None:
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, local_addr=(self.source, 0)), timeout=1.0
            )
        except (OSError, TimeoutError):
            return None
        writer.write(b"GET /readyz HTTP/1.1\r\nHost: flood\r\n")
        self.opened += 1
        return writer

    @staticmethod
    async def _dribble(writer: asyncio.StreamWriter | None, n: int) -> bool:
        if writer is None or writer.is_closing():
            return False
        try:
            writer.write(b"X-Slow-%d: x\r\n" % n)
            await asyncio.wait_for(writer.drain(), timeout=1.0)
        except (OSError, TimeoutError):
            return False
        return True

    async def run(self, seconds: float) -> None:
        writers: list[asyncio.StreamWriter | None] = [None] * self.count
        deadline = time.monotonic() + seconds
        n = 0
        try:
            while time.monotonic() < deadline:
                alive = await asyncio.gather(*(self._dribble(w, n) for w in writers))
                dropped = [i for i, ok in enumerate(alive) if not ok]
                reopened = await asyncio.gather(*(self._open() for _ in dropped))
                for i, writer in zip(dropped, reopened, strict=True):
                    if writers[i] is not None:
                        writers[i].close()  # type: ignore[union-attr]
                    writers[i] = writer
                self.up.set()
                n += 1
                await asyncio.sleep(self.interval)
        finally:
            for writer in writers:
                if writer is not None:
                    writer.close()


@pytest.fixture
async def daemon() -> AsyncIterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    yield started
    for process in started:
        await process.kill()


async def probe(url: str) -> int | str:
    """The /readyz status, or why there was none."""
    try:
        timeout = aiohttp.ClientTimeout(total=3)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
            await response.read()
            return response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        return type(exc).__name__


async def test_a_slow_connection_flood_leaves_readyz_answering_and_the_pass_succeeding(
    world: World, daemon: list[DaemonProcess]
) -> None:
    pause_on_add_password(world, 3.0)  # the pass still has its Entra, Key Vault and push calls ahead
    process = await DaemonProcess.start(
        "--config", str(world.config_file()), "--listen", "127.0.0.1:0", open_files=OPEN_FILES
    )
    daemon.append(process)
    started = await process.event("daemon.started")
    host, port = parse_listen(started["listen"])
    assert started["max_connections"] == 32, "an eighth of 256 descriptors"
    flood = SlowFlood(host, port, FLOOD_CONNECTIONS)
    flooding = asyncio.create_task(flood.run(FLOOD_SECONDS))
    probes: list[asyncio.Task[int | str]] = []
    try:
        async with asyncio.timeout(10):
            await flood.up.wait()
        finished = asyncio.create_task(process.event("run.finished", within=FLOOD_SECONDS + 30))
        while not flooding.done():  # a probe every half second, as a kubelet would, each with its own timeout
            probes.append(asyncio.create_task(probe(f"http://{host}:{port}/readyz")))
            await asyncio.sleep(0.5)
        passed_during_flood = finished.done()
        answers = await asyncio.gather(*probes)
        report = await finished
    finally:
        flooding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flooding

    assert flood.opened >= FLOOD_CONNECTIONS, "the flood opened its connections"
    assert len(answers) >= 15
    assert all(a in (200, 503) for a in answers), f"/readyz did not answer during the flood: {answers}"
    assert passed_during_flood, "the start-up pass finished while the flood went on"
    assert (report["changed"], report["failed"]) == (1, 0), report
    assert await probe(f"http://{host}:{port}/readyz") == 200
    log = "".join(process.lines)
    assert len(process.lines) < 100, f"{len(process.lines)} log lines during a {FLOOD_SECONDS:g} s flood"
    assert len(log) < 64_000
    assert_no_secrets(log, "the daemon's log")
