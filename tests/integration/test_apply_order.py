"""The order apply takes a rotating pass's actions in: room first, then the new secret, then the rest."""

from __future__ import annotations

from datetime import timedelta

from service.reconcile import Outcome
from tests.integration.conftest import World, days

REMOVE = r"/removePassword$"
ADD = r"/addPassword$"


async def test_a_retirement_that_should_make_room_fails_so_nothing_is_created_beyond_the_cap(world: World) -> None:
    await world.run()
    now = world.clock.now()
    for _ in range(2):
        world.emu.add_password(world.tenant, world.app_id, start=now, end=now + days(700))
    world.clock.advance(days(1))
    await world.run(force=True)
    assert len(world.passwords()) == 4  # two hand-made, the superseded one, the one in use
    world.clock.advance(days(61))  # the one in use is due; the superseded one is long past its grace period
    world.emu.faults.add(REMOVE, "POST", "status", status=403)
    world.emu.reset_requests()

    [result] = await world.run()

    assert result.outcome is Outcome.FAILED
    assert result.error is not None
    assert result.error.reason.value == "permission_denied"
    assert not [r for r in world.emu.requests if r.path.endswith("/addPassword")], "no room, so no new secret"
    assert len(world.passwords()) == 4


async def test_in_a_rotating_pass_a_retirement_not_needed_for_room_runs_after_the_new_secret_is_everywhere(
    world: World,
) -> None:
    await world.run()
    world.clock.advance(days(1))
    await world.run(force=True)
    world.clock.advance(days(61))  # due again; the first secret is superseded and past its grace period
    world.emu.reset_requests()

    [result] = await world.run()

    assert result.outcome is Outcome.CHANGED
    writes = [
        (r.method, r.path.rsplit("/", 1)[-1])
        for r in world.emu.requests
        if r.method != "GET" and r.service != "entra" and r.status < 400
    ]
    assert writes[0] == ("POST", "addPassword")
    assert writes[-1] == ("POST", "removePassword"), "retired only after every sink took the new secret"
    assert [w for w in writes if w[1] == "exchange-settings"], "the push happened before it"
    assert len(world.passwords()) == 2


async def test_when_the_rotation_fails_a_retirement_waiting_for_it_is_left_to_a_later_pass(world: World) -> None:
    await world.run()
    world.clock.advance(days(1))
    await world.run(force=True)
    world.clock.advance(days(61))
    fault = world.emu.faults.add(r"^/dimescheduler/", "POST", "status", status=400)

    [failed] = await world.run()

    assert failed.outcome is Outcome.FAILED
    assert len(world.passwords()) == 3, "the superseded secret waits: the new one did not reach every sink"
    assert not world.logs.named("credential.retired", reason="superseded")

    world.emu.faults.remove(fault)
    await world.run()  # the push is re-sent the new secret from Key Vault; the grace period starts now
    assert len(world.passwords()) == 3
    world.clock.advance(days(1) + timedelta(minutes=1))
    await world.run()
    assert len(world.logs.named("credential.retired", reason="superseded")) == 2
    [current] = world.passwords()
    assert world.vault_key_id() == world.emu.receiver.deliveries[-1].idempotency_key == current.key_id
