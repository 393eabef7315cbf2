"""Helpers for killing a real `secret-rotator run` process at a chosen step, and checking the invariants."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass
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


async def run_cli(config: Path, *args: str, kill_on: tuple[str, str] | None = None, world: World | None = None,
                  kill_delay: float = 0.0) -> Finished:
    """`python -m service run --config FILE`, killed with SIGKILL right after the emulator answers
    ``kill_on = (method, path regex)`` (plus ``kill_delay`` seconds), if given."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "run", "--config", str(config), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    if kill_on is not None:
        assert world is not None
        loop = asyncio.get_running_loop()

        def kill(_: RequestInfo) -> None:
            if kill_delay:
                loop.call_later(kill_delay, _kill, process.pid)
            else:
                _kill(process.pid)

        world.emu.faults.add(kill_on[1], kill_on[0], "hook", after=True, count=1, hook=kill)
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT)
    finally:
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
    credential = ClientSecretCredential(world.tenant, world.app_id, secret, authority=world.emu.url,
                                        connection_verify=str(world.emu.ca_file))
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
