"""Helpers for killing a real `secret-rotator run` process at a chosen step, and checking the invariants."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import ClientSecretCredential

from service.emulator import RequestInfo
from tests.conftest import assert_no_secrets
from tests.world import SECRET_NAME, World

RUN_TIMEOUT = 60.0


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Killer:
    """SIGKILLs the `run` process in flight when the emulator meets the first request that matches.

    ``after=True`` (the default): once the request has been processed and committed, so the write happened
    and its answer is lost. ``after=False``: before it is processed, and the request is then dropped, so
    the write never happened. Armed once, it waits across passes until a pass makes that request.
    """

    pid: int | None = None
    fired: list[str] = field(default_factory=list)
    faults: list[int] = field(default_factory=list)

    def arm(self, world: World, method: str, path: str, *, after: bool = True, delay: float = 0.0) -> None:
        loop = asyncio.get_running_loop()

        def kill(info: RequestInfo) -> None:
            self.fired.append(f"{info.method} {info.path}")
            pid = self.pid
            if pid is None:
                return
            if delay:
                loop.call_later(delay, _kill, pid)
            else:
                _kill(pid)

        self.faults.append(world.emu.faults.add(path, method, "hook", after=after, count=1, hook=kill))
        if not after:
            self.faults.append(world.emu.faults.add(path, method, "drop", count=1))

    def disarm(self, world: World) -> None:
        for fault in self.faults:
            world.emu.faults.remove(fault)
        self.faults.clear()


async def run_cli(
    config: Path,
    *args: str,
    kill_on: tuple[str, str] | None = None,
    world: World | None = None,
    kill_delay: float = 0.0,
    killer: Killer | None = None,
) -> Finished:
    """`python -m service run --config FILE`, killed with SIGKILL right after the emulator answers
    ``kill_on = (method, path regex)`` (plus ``kill_delay`` seconds), if given, or when ``killer`` fires."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "run",
        "--config",
        str(config),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    if kill_on is not None:
        assert world is not None
        killer = Killer()
        killer.arm(world, kill_on[0], kill_on[1], delay=kill_delay)
    if killer is not None:
        killer.pid = process.pid
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT)
    finally:
        if killer is not None:
            killer.pid = None
        if process.returncode is None:
            process.kill()
            await process.wait()
    out, err = stdout.decode(), stderr.decode()
    assert_no_secrets(out + err, "the run's output")
    assert process.returncode is not None
    return Finished(process.returncode, out, err)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have finished already
        os.kill(pid, signal.SIGKILL)


async def authenticates(world: World, secret: str) -> bool:
    credential = ClientSecretCredential(
        world.tenant, world.app_id, secret, authority=world.emu.url, connection_verify=str(world.emu.ca_file)
    )
    async with credential:
        try:
            await credential.get_token("https://graph.microsoft.com/.default")
        except ClientAuthenticationError:
            return False
    return True


async def check_invariants(world: World, max_credentials: int = 4) -> None:
    """I1 (every sink that holds a secret holds one that authenticates) and I3 (the cap)."""
    assert len(world.passwords()) <= max_credentials, "I3: more credentials than max_credentials"
    latest = world.emu.vault_secret(SECRET_NAME)
    if latest is not None:
        assert await authenticates(world, latest.value), "I1: Key Vault holds a secret that does not authenticate"
    if world.emu.receiver.deliveries:
        assert world.emu.receiver.current_key_authenticates(), "I1: Dime.Scheduler holds a dead secret"
