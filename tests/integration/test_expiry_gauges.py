"""The expiry gauges a changing pass leaves: what apply did, applied to what it gathered, without reading the
app and every sink once more; exactly what a fresh read shows (the next, healthy pass's gauges, from a
registry of its own). A pass that did not get through its plan reads again."""

from __future__ import annotations

from service.metrics import Metrics
from service.reconcile import Outcome, TargetResult
from tests.integration.conftest import World, days

EXPIRY = "secret_rotator_credential_expiry_timestamp_seconds"


def gauges(metrics: Metrics) -> dict[tuple[str, ...], float]:
    return {
        tuple(sample.labels[k] for k in ("target", "key_id", "managed", "in_use")): sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == EXPIRY
    }


async def fresh_gauges(world: World) -> dict[tuple[str, ...], float]:
    """The gauges of a pass that changes nothing, in a registry of its own: the app and sinks as they are."""
    metrics = Metrics()
    [result] = await world.run(metrics=metrics)
    assert result.outcome is Outcome.HEALTHY
    return gauges(metrics)


async def changing_pass(world: World) -> tuple[TargetResult, list[tuple[str, str]]]:
    """A pass that changes the target, and the reads it made after its last write."""
    before = len(world.emu.requests)
    [result] = await world.run()
    assert result.outcome is Outcome.CHANGED
    requests = world.emu.requests[before:]
    writes = [i for i, r in enumerate(requests) if r.method in ("POST", "PUT", "PATCH", "DELETE")]
    after = [(r.service, r.method) for r in requests[writes[-1] + 1 :] if r.service in ("graph", "keyvault")]
    return result, after


async def test_after_a_rotation_and_after_a_retirement_the_gauges_are_what_a_fresh_read_shows(world: World) -> None:
    world.target()
    first, read_after_first = await changing_pass(world)  # the first secret, to Key Vault and the push
    assert gauges(world.metrics) == await fresh_gauges(world)
    world.clock.advance(days(70))
    second, read_after_second = await changing_pass(world)  # due: a new one; the old one stays, superseded
    assert len(world.passwords()) == 2
    assert gauges(world.metrics) == await fresh_gauges(world)
    world.clock.advance(days(2))
    third, read_after_third = await changing_pass(world)  # the grace period has run: the old one goes
    assert len(world.passwords()) == 1
    assert gauges(world.metrics) == await fresh_gauges(world)

    assert [len(r.done) for r in (first, second, third)] == [1, 1, 1]
    assert (read_after_first, read_after_second, read_after_third) == ([], [], [])


async def test_a_pass_that_fails_halfway_reads_the_app_again_for_its_gauges(world: World) -> None:
    world.target()
    await world.run()
    world.clock.advance(days(70))
    world.emu.faults.add(r"/dimescheduler/", "POST", kind="status", status=503)
    before = len(world.emu.requests)
    [result] = await world.run()
    assert result.outcome is Outcome.FAILED
    # Key Vault took the new secret, the push did not: the gauges show both secrets, neither guessed.
    requests = world.emu.requests[before:]
    last_push = max(i for i, r in enumerate(requests) if r.service == "receiver")
    assert ("graph", "GET") in [(r.service, r.method) for r in requests[last_push + 1 :]]
    current = gauges(world.metrics)
    assert {labels[1] for labels in current} == {p.key_id for p in world.passwords()}
    assert len(current) == 2
