"""The daemon under test: in process on the test's loop (the `start_daemon` fixture), or as the real
`secret-rotator daemon` subprocess (:class:`DaemonProcess`); and the HTTP and metrics helpers its tests
read it with. Shared by the daemon, window, worker and flood tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client.parser import text_string_to_metric_families

from service.daemon import Daemon
from service.emulator import RequestInfo
from service.runner import PassOptions
from tests.world import FAST_BACKOFF, FAST_RETRY, World

ADD_PASSWORD = r"/addPassword$"
HOURLY = IntervalTrigger(hours=1)  # only the start-up pass happens within a test


async def get(url: str) -> tuple[int, str, str]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def get_json(url: str) -> tuple[int, dict[str, Any]]:
    status, _, text = await get(url)
    return status, json.loads(text)


def metric(text: str, name: str, **labels: str) -> list[float]:
    """The values of the samples called ``name`` whose labels include ``labels``."""
    return [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    ]


def pause_on_add_password(world: World, seconds: float) -> asyncio.Event:
    """Hold every addPassword for ``seconds``; the event is set when the first one arrives."""
    arrived = asyncio.Event()

    def hook(_: RequestInfo) -> None:
        arrived.set()  # the emulator serves on the test's own loop

    world.emu.faults.add(ADD_PASSWORD, "POST", kind="hook", hook=hook)
    world.emu.faults.add(ADD_PASSWORD, "POST", kind="latency", delay=seconds)
    return arrived


StartDaemon = Callable[..., Awaitable[Daemon]]


@pytest.fixture
async def start_daemon(world: World) -> AsyncIterator[StartDaemon]:
    started: list[Daemon] = []

    async def start(trigger: Any = HOURLY, **kwargs: Any) -> Daemon:
        daemon = Daemon(
            world.config(),
            clock=world.clock,
            metrics=world.metrics,
            listen=("127.0.0.1", 0),
            options=PassOptions(retry=FAST_RETRY, backoff=FAST_BACKOFF),
            trigger=trigger,
            **kwargs,
        )
        started.append(daemon)
        await daemon.start()
        return daemon

    yield start
    for daemon in started:
        daemon.shutdown_timeout = 5
        await daemon.stop()


async def passes(daemon: Daemon, count: int, within: float = 30) -> None:
    async with asyncio.timeout(within):
        await daemon.wait_for_passes(count)


_LIMITED = (
    "import os, resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, ({0}, {0})); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


class DaemonProcess:
    """`python -m service daemon` with its JSON log lines read as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []
        self.lines: list[str] = []
        self._new = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, *args: str, open_files: int | None = None) -> DaemonProcess:
        """``open_files``: run it with RLIMIT_NOFILE lowered to that (soft and hard), as a small pod would be."""
        env = {k: v for k, v in os.environ.items() if k != "SECRET_ROTATOR_CONFIG"}
        command = [sys.executable, "-m", "service", "daemon", "--log-format", "json", *args]
        if open_files is not None:
            # Lowered in a wrapper that then execs the daemon: the limit must hold from its first descriptor.
            command = [sys.executable, "-c", _LIMITED.format(open_files), *command]
        process = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            line = raw.decode(errors="replace")
            async with self._new:
                self.lines.append(line)
                with contextlib.suppress(ValueError):
                    self.events.append(json.loads(line))
                self._new.notify_all()

    async def event(self, name: str, within: float = 30) -> dict[str, Any]:
        async with asyncio.timeout(within), self._new:
            await self._new.wait_for(lambda: any(e.get("event") == name for e in self.events))
        return next(e for e in self.events if e.get("event") == name)

    async def exit_code(self, within: float) -> int:
        async with asyncio.timeout(within):
            code = await self.process.wait()
            await self._reader
        return code

    async def stderr(self) -> str:
        assert self.process.stderr is not None
        return (await self.process.stderr.read()).decode(errors="replace")

    def names(self) -> list[str]:
        return [str(e.get("event")) for e in self.events]

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self._reader.cancel()
