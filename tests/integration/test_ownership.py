"""Only what this service wrote is its own: secrets whose names merely look like ours survive every pass."""

from __future__ import annotations

from datetime import timedelta

from service.reconcile import Outcome
from tests.integration.conftest import World, days


async def test_look_alike_secrets_of_others_survive_renewals_grace_periods_and_revocation(world: World) -> None:
    now = world.clock.now()
    hour_ago = now - timedelta(hours=1)

    def seed(name: str) -> str:
        key_id, _ = world.emu.add_password(
            world.tenant, world.app_id, display_name=name, start=hour_ago, end=now + days(365)
        )
        return key_id

    stamp = f"{hour_ago:%Y-%m-%dT%H:%M:%SZ}"
    # Another installation's marker begins with ours; a person named a break-glass secret after the service.
    staging = seed(f"secret-rotator-staging {stamp}")
    break_glass = seed("secret-rotator: break-glass 2026-01")
    # The control: a name exactly as this service writes it, that no sink ever held, is ours and goes.
    ours = seed(f"secret-rotator {stamp}")
    theirs = {staging, break_glass}

    passes = [
        ("the first pass", timedelta(0), {}),
        ("a pass two days later", days(2), {}),
        ("the renewal", days(61), {}),
        ("the pass that retires the superseded secret", days(2), {}),
        ("a revocation of the secret in use", timedelta(hours=1), {"revoke_previous": True}),
        ("the pass after it", days(2), {}),
    ]
    for name, wait, flags in passes:
        world.clock.advance(wait)
        [result] = await world.run(**flags)
        assert result.outcome is not Outcome.FAILED, (name, result.error)
        assert theirs <= {p.key_id for p in world.passwords()}, f"{name} removed a secret that is not ours"

    assert ours not in {p.key_id for p in world.passwords()}, "a secret named exactly as ours is ours"
    retired = {e["key_id"] for e in world.logs.named("credential.retired")}
    assert ours in retired
    assert not theirs & retired
    assert len(world.logs.named("credential.created")) == 3  # first pass, renewal, revocation
