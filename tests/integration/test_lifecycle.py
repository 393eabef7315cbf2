"""A target's life through many passes: idempotence, renewal, grace, adoption, unmanaged and expired secrets.

Each test moves time with the emulator's clock, which the engine shares: credentials age on both sides
without waiting and without patching anything.
"""

from __future__ import annotations

from datetime import timedelta

from service.reconcile import Outcome
from tests.integration.conftest import SECRET_NAME, World, days


async def test_a_second_pass_changes_nothing_and_costs_one_read_per_service(world: World) -> None:
    await world.run()
    before = (world.passwords(), world.emu.vault_versions(SECRET_NAME), list(world.emu.receiver.deliveries))
    world.emu.reset_requests()

    [result] = await world.run()

    assert result.outcome is Outcome.HEALTHY
    assert (world.passwords(), world.emu.vault_versions(SECRET_NAME), world.emu.receiver.deliveries) == before
    graph = [r for r in world.emu.requests if r.service == "graph"]
    vault = [r for r in world.emu.requests if r.service == "keyvault" and r.status != 401]
    assert [(r.method, r.status) for r in graph] == [("GET", 200)]
    assert [(r.method, r.status) for r in vault] == [("GET", 200)]
    assert world.logs.named("target.healthy", target="dime-exchange")


async def test_renewal_replaces_the_secret_and_the_old_one_goes_after_the_grace_period(world: World) -> None:
    await world.run()
    [first] = world.passwords()

    world.clock.advance(days(61))  # past 2/3 of the 90-day lifetime
    [renewed] = await world.run()
    assert renewed.outcome is Outcome.CHANGED
    assert len(world.passwords()) == 2
    second = next(p for p in world.passwords() if p.key_id != first.key_id)
    assert world.vault_key_id() == second.key_id
    assert world.emu.receiver.deliveries[-1].idempotency_key == second.key_id

    world.clock.advance(timedelta(hours=12))  # inside the 1-day grace period: the old one stays
    [waiting] = await world.run()
    assert waiting.outcome is Outcome.HEALTHY
    assert {p.key_id for p in world.passwords()} == {first.key_id, second.key_id}

    world.clock.advance(timedelta(hours=13))
    [retired] = await world.run()
    assert retired.outcome is Outcome.CHANGED
    assert [p.key_id for p in world.passwords()] == [second.key_id]
    assert world.logs.named("credential.retired", key_id=first.key_id, reason="superseded")


async def test_a_hand_made_secret_already_in_key_vault_is_adopted_without_rotating(world: World) -> None:
    now = world.clock.now()
    key_id, secret = world.emu.add_password(world.tenant, world.app_id, start=now - days(10), end=now + days(300))
    await _put_in_vault_by_hand(world, secret, expires=now + days(300))
    world.target(sinks=("keyvault",))

    [result] = await world.run()

    assert result.outcome is Outcome.HEALTHY
    assert [p.key_id for p in world.passwords()] == [key_id]
    assert result.plan is not None
    assert result.plan.in_use == {key_id}


async def test_an_unmanaged_secret_is_left_alone(world: World) -> None:
    now = world.clock.now()
    hand_made, _ = world.emu.add_password(world.tenant, world.app_id, start=now - days(5), end=now + days(700))
    await world.run()
    world.clock.advance(days(3))

    await world.run()

    assert hand_made in {p.key_id for p in world.passwords()}
    assert len(world.passwords()) == 2


async def test_an_unmanaged_secret_goes_after_the_grace_period_with_retire_unmanaged(world: World) -> None:
    now = world.clock.now()
    hand_made, _ = world.emu.add_password(world.tenant, world.app_id, start=now - days(5), end=now + days(700))
    world.defaults["retire_unmanaged"] = True
    await world.run()
    assert hand_made in {p.key_id for p in world.passwords()}, "kept while the new secret is younger than grace"
    world.clock.advance(days(2))

    await world.run()

    assert hand_made not in {p.key_id for p in world.passwords()}
    assert world.logs.named("credential.retired", key_id=hand_made)


async def test_expired_leftovers_are_cleaned_up_and_unmanaged_ones_are_not(world: World) -> None:
    now = world.clock.now()
    managed, _ = world.emu.add_password(
        world.tenant,
        world.app_id,
        display_name="secret-rotator 2024-01-01T00:00:00Z",
        start=now - days(200),
        end=now - days(110),
    )
    unmanaged, _ = world.emu.add_password(world.tenant, world.app_id, start=now - days(400), end=now - days(30))

    await world.run()

    # The push sink has no receipt yet: it may hold any secret of the app, so nothing is an orphan in this
    # pass. The pass leaves a receipt, and the next pass knows what every sink holds.
    assert {managed, unmanaged} <= {p.key_id for p in world.passwords()}
    assert not world.logs.named("credential.retired")

    await world.run()

    keys = {p.key_id for p in world.passwords()}
    assert managed not in keys, "a managed secret no sink ever held is an orphan, expired or not"
    assert unmanaged in keys
    assert world.logs.named("credential.retired", key_id=managed, reason="orphan")


async def test_force_rotates_although_nothing_is_due(world: World) -> None:
    [setup] = await world.run()
    assert setup.outcome is Outcome.CHANGED, (setup.error, setup.error and setup.error.hint)
    [first] = world.passwords()

    [result] = await world.run(force=True)

    assert result.outcome is Outcome.CHANGED
    assert world.vault_key_id() != first.key_id
    assert len(world.passwords()) == 2
    assert (
        world.metrics.registry.get_sample_value(
            "secret_rotator_rotations_total", {"target": "dime-exchange", "reason": "forced"}
        )
        == 1.0
    )


async def test_revoke_previous_retires_the_leaked_secret_as_soon_as_the_new_one_is_everywhere(world: World) -> None:
    await world.run()
    [leaked] = world.passwords()

    [result] = await world.run(revoke_previous=True)

    assert result.outcome is Outcome.CHANGED
    [replacement] = world.passwords()
    assert replacement.key_id != leaked.key_id
    assert world.vault_key_id() == replacement.key_id
    assert world.emu.receiver.deliveries[-1].idempotency_key == replacement.key_id
    assert world.logs.named("credential.retired", key_id=leaked.key_id, reason="revoked")


async def _put_in_vault_by_hand(world: World, secret: str, *, expires: object) -> None:
    """What an admin did before the rotator existed: pasted the secret into Key Vault, no tags."""
    from azure.identity.aio import ClientSecretCredential
    from azure.keyvault.secrets.aio import SecretClient

    admin = world.emu.add_rotator(world.tenant, roles=(), display_name="admin")
    credential = ClientSecretCredential(
        world.tenant, admin.client_id, admin.secret, authority=world.emu.url, connection_verify=str(world.emu.ca_file)
    )
    async with (
        credential,
        SecretClient(
            world.emu.vault_url, credential, verify_challenge_resource=False, connection_verify=str(world.emu.ca_file)
        ) as client,
    ):
        await client.set_secret(SECRET_NAME, secret, expires_on=expires)
