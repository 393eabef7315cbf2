"""A push-only target keeps room to rotate again after a push that was never confirmed.

Dime.Scheduler cannot be read back, so a push killed before its answer can only be repaired by yet another
rotation, which needs a free slot under max_credentials, while neither the secret sent nor the one perhaps
still in use may go. An app with two hand-made secrets at max_credentials 4 used to get stuck there for
good (every later pass: exit 1, policy_violation). Now a rotation that would leave no slot for the repair
is refused up front, and `plan` says why and what to set. Real `secret-rotator run` processes, killed with
SIGKILL; time is real, so the policy uses seconds.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import World, days
from tests.reliability.conftest import Finished, Killer, check_invariants, run_cli

pytestmark = pytest.mark.slow

IN_FLIGHT = 2.0  # seconds
GRACE = 2.0
PUSH = ("POST", r"^/dimescheduler/")


def push_only_app_with_two_hand_made_secrets(world: World) -> set[str]:
    world.defaults.update(in_flight_timeout=f"{IN_FLIGHT:g}s", grace_period=f"{GRACE:g}s", verify_timeout="20s")
    world.target(sinks=("dimescheduler",))
    now = world.clock.now()
    return {
        world.emu.add_password(world.tenant, world.app_id, start=now - days(30), end=now + days(700))[0]
        for _ in range(2)
    }


def config(world: World, max_credentials: int) -> Path:
    world.defaults["max_credentials"] = max_credentials
    return world.config_file()


def events(finished: Finished, name: str) -> list[dict[str, Any]]:
    found = []
    for line in finished.stdout.splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            if event.get("event") == name:
                found.append(event)
    return found


async def plan_json(path: Path, *args: str) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "plan",
        "--config",
        str(path),
        "--output",
        "json",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()[-2000:]
    [target] = json.loads(out)["targets"]
    return dict(target)


async def settle(world: World, path: Path, passes: int = 4) -> Finished:
    """Passes a grace period apart, each checked against the invariants; the last one's outcome."""
    last = None
    for _ in range(passes):
        last = await run_cli(path)
        assert last.returncode == 0, last.stdout[-2000:]
        await check_invariants(world, max_credentials=6)
        await asyncio.sleep(GRACE + 0.5)
    assert last is not None
    return last


async def test_a_rotation_that_would_leave_no_room_to_repair_an_unconfirmed_push_is_refused_and_says_how(
    world: World,
) -> None:
    hand_made = push_only_app_with_two_hand_made_secrets(world)
    tight = config(world, 4)
    assert (await run_cli(tight)).returncode == 0  # the first secret: 3 of 4 slots, one left for a repair
    [first] = [p for p in world.passwords() if p.key_id not in hand_made]

    planned = await plan_json(tight, "--force")
    killer = Killer()
    killer.arm(world, *PUSH)
    refused = await run_cli(tight, "--force", killer=killer)

    [blocked] = planned["actions"]
    assert (blocked["kind"], blocked["reason"]) == ("blocked", "no_room_for_retry")
    assert "raise max_credentials to 5" in blocked["message"]
    assert refused.returncode == 1
    assert not killer.fired, "no secret was created, so there was no push to kill"
    [failed] = events(refused, "rotation.failed")
    assert failed["reason"] == "policy_violation"
    assert "max_credentials" in failed["hint"]
    assert {p.key_id for p in world.passwords()} == hand_made | {first.key_id}
    await check_invariants(world)

    # With the slot the refusal asked for, the same crash is repaired by the next pass, which may use it.
    roomy = config(world, 5)
    killer.disarm(world)
    killer = Killer()
    killer.arm(world, *PUSH)
    crashed = await run_cli(roomy, "--force", killer=killer)
    assert crashed.returncode == -9
    assert len(killer.fired) == 1
    await check_invariants(world, max_credentials=5)

    repaired = await run_cli(roomy)
    assert repaired.returncode == 0, repaired.stdout[-2000:]
    assert [e["reason"] for e in events(repaired, "credential.created")] == ["pending_unconfirmed"]
    await check_invariants(world, max_credentials=5)
    final = await settle(world, roomy)
    assert '"event": "target.healthy"' in final.stdout
    [survivor] = [p for p in world.passwords() if p.key_id not in hand_made]
    assert world.emu.receiver.deliveries[-1].idempotency_key == survivor.key_id
    assert {p.key_id for p in world.passwords()} == hand_made | {survivor.key_id}


async def test_a_repair_that_is_itself_never_confirmed_needs_the_runbook_and_its_fix_works(world: World) -> None:
    """Two unconfirmed pushes in a row use the kept slot and the cap: blocked, with the runbook named, the
    receiver still on a working secret; raising max_credentials as the runbook says lets it converge."""
    hand_made = push_only_app_with_two_hand_made_secrets(world)
    roomy = config(world, 5)
    assert (await run_cli(roomy)).returncode == 0
    for args in (("--force",), ()):  # the forced rotation, then its repair: both killed at the push
        killer = Killer()
        killer.arm(world, *PUSH)
        assert (await run_cli(roomy, *args, killer=killer)).returncode == -9
        await check_invariants(world, max_credentials=5)

    stuck = await run_cli(roomy)

    assert stuck.returncode == 1
    [failed] = events(stuck, "rotation.failed")
    assert failed["reason"] == "policy_violation"
    assert "see the runbook, 'push never confirmed, no room'" in failed["error"]
    assert len(world.passwords()) == 5
    await check_invariants(world, max_credentials=5)

    roomier = config(world, 6)
    final = await settle(world, roomier)
    assert '"event": "target.healthy"' in final.stdout
    [survivor] = [p for p in world.passwords() if p.key_id not in hand_made]
    assert world.emu.receiver.deliveries[-1].idempotency_key == survivor.key_id
    assert yaml.safe_load(roomier.read_text())["defaults"]["max_credentials"] == 6
