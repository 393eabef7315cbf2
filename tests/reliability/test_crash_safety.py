"""The process killed at each step boundary of a rotation, then passes rerun: nothing is lost.

A real `secret-rotator run` process is killed (SIGKILL) right after the emulator answers the request
that ends a step. Later passes must repair what the crash left: every sink keeps a secret that
authenticates (I1), the orphan goes once in_flight_timeout has passed (I2), the cap holds (I3), nothing
a sink holds is removed (I4). Time is real here (the subprocess has the system clock), so the policy
uses seconds.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.integration.conftest import World
from tests.reliability.conftest import Killer, check_invariants, run_cli

pytestmark = pytest.mark.slow

IN_FLIGHT = 2.0  # seconds
GRACE = 2.0

# (method, path regex, delay after the answer, after): after=False kills before the request is processed
# and drops it, so that write never happens.
STEPS = {
    "killed right after addPassword created the credential": ("POST", r"/addPassword$", 0.0, True),
    "killed while verifying the new secret across a replication delay": ("POST", r"/addPassword$", 0.4, True),
    "killed right after the Key Vault write": ("PUT", r"^/secrets/", 0.0, True),
    "killed between the sinks: Key Vault written, the push never reached the endpoint": (
        "POST",
        r"^/dimescheduler/",
        0.0,
        False,
    ),
    "killed after the push, before its receipt was confirmed": ("POST", r"^/dimescheduler/", 0.0, True),
}


def short_policy(world: World) -> None:
    world.defaults.update(in_flight_timeout=f"{IN_FLIGHT:g}s", grace_period=f"{GRACE:g}s", verify_timeout="20s")


@pytest.mark.parametrize(("method", "path", "delay", "after"), STEPS.values(), ids=STEPS.keys())
async def test_a_pass_killed_mid_rotation_is_repaired_by_the_next_passes(
    world: World, method: str, path: str, delay: float, after: bool
) -> None:
    short_policy(world)
    config = world.config_file()
    first = await run_cli(config)  # a healthy starting point: a secret in both sinks
    assert first.returncode == 0, first.stderr
    [original] = world.passwords()
    world.emu.replication_delay = timedelta(seconds=1.0)
    killer = Killer()
    killer.arm(world, method, path, after=after, delay=delay)

    crashed = await run_cli(config, "--force", killer=killer)

    assert crashed.returncode == -9, "the process was killed mid-pass"
    await check_invariants(world)
    assert original.key_id in {p.key_id for p in world.passwords()}, "I4: the secret in use survived the crash"

    # The next passes: the first repairs, and once in_flight_timeout and the grace period have passed,
    # everything not in use is gone.
    repaired = await run_cli(config)
    assert repaired.returncode == 0, repaired.stdout[-2000:]
    await check_invariants(world)
    await asyncio.sleep(max(IN_FLIGHT, GRACE) + 0.5)
    settled = await run_cli(config)
    assert settled.returncode == 0, settled.stdout[-2000:]
    await check_invariants(world)
    await asyncio.sleep(GRACE + 0.5)
    final = await run_cli(config)
    assert final.returncode == 0
    await check_invariants(world)

    [survivor] = world.passwords()
    assert world.vault_key_id() == survivor.key_id
    assert world.emu.receiver.deliveries[-1].idempotency_key == survivor.key_id
    assert '"event": "target.healthy"' in final.stdout


async def test_an_addpassword_whose_answer_was_lost_leaves_an_orphan_that_goes_after_in_flight_timeout(
    world: World,
) -> None:
    """The connection drops after Graph created the credential: the pass cannot tell, never retries it,
    and a later pass removes the credential nobody ever received, but not while it may be in flight."""
    await world.run()
    world.emu.reset_requests()
    world.emu.faults.add(r"/addPassword$", "POST", "drop", after=True, count=1)

    [lost] = await world.run(force=True)

    assert lost.outcome.value == "failed"
    assert len([r for r in world.emu.requests if r.path.endswith("/addPassword")]) == 1, "never retried"
    orphan = {p.key_id for p in world.passwords()} - {world.vault_key_id()}
    assert len(orphan) == 1
    await check_invariants(world)

    world.clock.advance(timedelta(minutes=10))  # younger than in_flight_timeout (15m): it may be in flight
    await world.run()
    assert orphan <= {p.key_id for p in world.passwords()}

    world.clock.advance(timedelta(minutes=6))
    await world.run()
    assert not orphan & {p.key_id for p in world.passwords()}, "I2: the orphan outlived its in_flight_timeout"
    assert world.logs.named("credential.retired", reason="orphan", key_id=next(iter(orphan)))
    await check_invariants(world)


async def test_a_pass_killed_after_removepassword_committed_leaves_the_secret_in_use_and_the_next_pass_settles(
    world: World,
) -> None:
    """The retirement of the superseded secret reached Graph, and the process died before the answer: the
    sinks still hold the secret in use, and the next pass finds nothing left to do."""
    short_policy(world)
    config = world.config_file()
    assert (await run_cli(config)).returncode == 0
    [original] = world.passwords()
    assert (await run_cli(config, "--force")).returncode == 0
    [current] = [p for p in world.passwords() if p.key_id != original.key_id]
    await asyncio.sleep(GRACE + 0.5)
    killer = Killer()
    killer.arm(world, "POST", r"/removePassword$")

    crashed = await run_cli(config, killer=killer)

    assert crashed.returncode == -9
    assert len(killer.fired) == 1
    assert [p.key_id for p in world.passwords()] == [current.key_id], "the removal was committed"
    await check_invariants(world)
    assert world.vault_key_id() == current.key_id
    assert world.emu.receiver.deliveries[-1].idempotency_key == current.key_id

    after = await run_cli(config)

    assert after.returncode == 0, after.stdout[-2000:]
    assert '"event": "target.healthy"' in after.stdout
    assert [p.key_id for p in world.passwords()] == [current.key_id]
    await check_invariants(world)
