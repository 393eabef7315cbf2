"""The pass that runs with an empty state folder, killed at each of its writes: the receiver never holds a
removed secret, and later passes converge.

A push-only target is rotated by a real `secret-rotator run` with one state folder; once that secret is
older than in_flight_timeout (the old rule's orphan), passes run with an empty state folder, and the first
addPassword, push or removePassword after that is answered and then the process is SIGKILLed. A
ReceiverWatch checks after every request the emulator answers that the secret the receiver holds signs in.
Time is real here (the subprocess has the system clock), so the policy uses seconds.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import yaml

from tests.integration.conftest import World
from tests.reliability.conftest import Killer, check_invariants, run_cli
from tests.world import ReceiverWatch

pytestmark = pytest.mark.slow

IN_FLIGHT = 2.0  # seconds
GRACE = 2.0

# (method, path, which pass with the empty folder is killed): the one that rotates makes no removal at
# all, so the first removePassword is the retirement of the superseded secret, a grace period later.
WRITES = {
    "killed right after addPassword created the new credential": ("POST", r"/addPassword$", 0),
    "killed right after the push reached the receiver": ("POST", r"^/dimescheduler/", 0),
    "killed right after removePassword removed a credential": ("POST", r"/removePassword$", 1),
}


def config_with_state(world: World, folder: str) -> Any:
    data = {**world.config_data(), "state": {"backend": "file", "path": str(world.tmp / folder)}}
    path = world.tmp / f"{folder}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(("method", "path", "killed"), WRITES.values(), ids=WRITES.keys())
async def test_a_pass_with_an_empty_state_folder_killed_at_each_write_never_leaves_the_receiver_on_a_removed_secret(
    world: World, method: str, path: str, killed: int
) -> None:
    world.defaults.update(in_flight_timeout=f"{IN_FLIGHT:g}s", grace_period=f"{GRACE:g}s", verify_timeout="20s")
    world.target(sinks=("dimescheduler",))
    first = await run_cli(config_with_state(world, "state-a"))
    assert first.returncode == 0, first.stdout[-2000:]
    [held] = world.passwords()
    await asyncio.sleep(IN_FLIGHT + 0.5)  # the old rule would now take `held` for an orphan

    fresh = config_with_state(world, "state-b")
    killer = Killer()
    killer.arm(world, method, path)
    watch = ReceiverWatch(world)
    codes = []
    async with watch.watching():
        # Until the kill has happened and two grace periods have run since, so that everything settles.
        for _ in range(8):
            finished = await run_cli(fresh, killer=killer)
            codes.append(finished.returncode)
            await check_invariants(world)
            if killer.fired and codes.count(0) >= 3:
                break
            await asyncio.sleep(GRACE + 0.5)

    assert len(killer.fired) == 1
    assert codes.index(-9) == killed, codes
    assert set(codes) == {0, -9}, codes
    assert codes.count(-9) == 1, codes
    assert not watch.dead, f"the receiver held a dead secret: {watch.dead[:3]}"
    assert watch.samples > 10
    [survivor] = world.passwords()
    assert survivor.key_id != held.key_id
    assert world.emu.receiver.deliveries[-1].idempotency_key == survivor.key_id
    assert world.emu.receiver.current_key_authenticates()
