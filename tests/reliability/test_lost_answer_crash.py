"""A push-only pass killed right after Graph created its new secret: the secret is this store's own orphan.

The answer of addPassword is lost with the process (SIGKILL once Graph has committed the credential). Its
intent was written to the state store before the call, so the next passes know the credential for this
store's lost answer, not for another host's secret that Dime.Scheduler may hold: it goes as an orphan once
in_flight_timeout has passed, with no rotation to answer it. Without the intent it would be answered
(`foreign_credential`) and kept for a grace period. A ReceiverWatch checks the receiver's secret the whole
time. Time is real here (the subprocess has the system clock), so the policy uses seconds.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.integration.conftest import World
from tests.reliability.conftest import Killer, check_invariants, run_cli
from tests.world import ReceiverWatch

pytestmark = pytest.mark.slow

IN_FLIGHT = 8.0  # seconds: the "young" pass, a process start after the crash, must begin inside it on a loaded machine
GRACE = 30.0  # long enough that no retirement in this test can be a superseded one


def events(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


async def test_a_push_only_pass_killed_after_addpassword_leaves_its_own_orphan_which_goes_after_in_flight_timeout(
    world: World,
) -> None:
    world.defaults.update(in_flight_timeout=f"{IN_FLIGHT:g}s", grace_period=f"{GRACE:g}s", verify_timeout="20s")
    world.target(sinks=("dimescheduler",))
    config = world.config_file()
    assert (await run_cli(config)).returncode == 0
    [held] = world.passwords()
    killer = Killer()
    killer.arm(world, "POST", r"/addPassword$")
    watch = ReceiverWatch(world)

    async with watch.watching():
        crashed = await run_cli(config, "--force", killer=killer)
        [orphan] = [p for p in world.passwords() if p.key_id != held.key_id]
        intents = json.loads((world.tmp / "state" / "intents" / "dime-exchange.json").read_text())["intents"]
        young = await run_cli(config)  # within in_flight_timeout: it may still be in flight
        after_young = {p.key_id for p in world.passwords()}
        await asyncio.sleep(IN_FLIGHT + 0.5)
        retired = await run_cli(config)
        claimed = json.loads((world.tmp / "state" / "intents" / "dime-exchange.json").read_text())["intents"]
        settled = await run_cli(config)

    assert crashed.returncode == -9
    assert len(killer.fired) == 1
    # Written before addPassword, and never given the key id: the answer never came.
    assert intents[-1]["name"] == orphan.display_name
    assert intents[-1]["reason"] == "forced"
    assert "key_id" not in intents[-1]
    assert young.returncode == 0, young.stdout[-2000:]
    assert orphan.key_id in after_young
    assert retired.returncode == 0, retired.stdout[-2000:]
    assert [(e["key_id"], e["reason"]) for e in events(retired.stdout) if e["event"] == "credential.retired"] == [
        (orphan.key_id, "orphan")
    ]
    assert not [e for r in (young, retired, settled) for e in events(r.stdout) if e["event"] == "credential.created"]
    # Found beyond doubt, the lost answer was given its key id before the orphan went: a credential another
    # store might name alike can never be taken for it.
    assert claimed[-1] == {**intents[-1], "key_id": orphan.key_id}
    assert '"event": "target.healthy"' in settled.stdout
    assert [p.key_id for p in world.passwords()] == [held.key_id]
    assert not watch.dead, f"the receiver held a dead secret: {watch.dead[:3]}"
    assert watch.samples > 10
    await check_invariants(world)
