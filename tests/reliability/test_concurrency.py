"""Two passes at once on a target due for rotation converge to one credential in use (I6)."""

from __future__ import annotations

import asyncio

import pytest

from service.reconcile import Outcome
from tests.integration.conftest import World, days
from tests.reliability.conftest import check_invariants, run_cli


async def test_two_passes_on_one_host_take_turns_and_rotate_once(world: World) -> None:
    first, second = await asyncio.gather(world.run(), world.run())

    outcomes = sorted(r.outcome.value for r in (*first, *second))
    assert outcomes == ["changed", "healthy"], "the second pass waited for the first and found nothing to do"
    assert len(world.passwords()) == 1
    await check_invariants(world)


@pytest.mark.slow
async def test_two_run_processes_at_once_rotate_once(world: World) -> None:
    config = world.config_file()

    a, b = await asyncio.gather(run_cli(config), run_cli(config))

    assert (a.returncode, b.returncode) == (0, 0)
    assert len(world.passwords()) == 1, "the state directory's lock kept the two processes apart"
    assert sum('"event": "credential.created"' in r.stdout for r in (a, b)) == 1
    await check_invariants(world)


async def test_two_hosts_without_shared_state_converge_to_one_credential_in_use(world: World) -> None:
    world.target(sinks=("keyvault",))
    config = world.config_data()
    other = {**config, "state": {"backend": "file", "path": str(world.tmp / "other-host-state")}}
    world.clock.advance(days(0))
    import yaml

    from service.config.loading import parse_config

    second_host = parse_config(yaml.safe_dump(other), "other.yaml", environ={})

    results = await asyncio.gather(world.run(), world.run(config=second_host))

    assert all(r.outcome is Outcome.CHANGED for rs in results for r in rs)
    created = world.passwords()
    assert 1 <= len(created) <= 2
    await check_invariants(world)

    world.clock.advance(days(1.1))  # past the grace period
    await asyncio.gather(world.run(), world.run(config=second_host))
    await world.run()

    [survivor] = world.passwords()
    assert world.vault_key_id() == survivor.key_id
    await check_invariants(world)
