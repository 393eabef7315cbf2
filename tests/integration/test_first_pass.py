"""The first pass over a Dime.Scheduler app whose secret is in use nowhere: rotate end to end."""

from __future__ import annotations

from service.reconcile import Outcome
from tests.integration.conftest import SECRET_NAME, World


async def test_a_first_pass_creates_verifies_stores_and_pushes_a_secret(world: World) -> None:
    results = await world.run()

    assert [r.outcome for r in results] == [Outcome.CHANGED]
    passwords = world.passwords()
    assert len(passwords) == 1
    key_id = passwords[0].key_id
    assert passwords[0].display_name.startswith("secret-rotator ")
    assert world.vault_key_id() == key_id
    latest = world.emu.vault_secret(SECRET_NAME)
    assert latest is not None
    assert latest.tags == {"managed-by": "secret-rotator", "key-id": key_id, "client-id": world.app_id}
    [delivery] = world.emu.receiver.deliveries
    assert delivery.idempotency_key == key_id
    assert delivery.signin_ok is True
    events = [e["event"] for e in world.logs.events]
    for name in ("run.started", "credential.created", "credential.verified", "sink.updated", "run.finished"):
        assert name in events
