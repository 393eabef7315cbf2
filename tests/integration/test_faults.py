"""What goes wrong out there, and what a pass does about it: fail loudly, keep the old secret, heal later."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from service.reconcile import Outcome
from service.runner import exit_code
from tests.integration.conftest import SECRET_NAME, World, days

GRAPH_APP_READ = r"^/v1\.0/applications\(appId="
VAULT = r"^/secrets/"
RECEIVER = r"^/dimescheduler/"


def failures(world: World, target: str = "dime-exchange") -> list[dict[str, object]]:
    return world.logs.named("rotation.failed", target=target)


async def test_a_secret_that_never_verifies_is_removed_and_the_old_one_kept(world: World) -> None:
    await world.run()
    [old] = world.passwords()
    world.emu.replication_delay = timedelta(hours=1)  # Entra keeps refusing the new secret
    world.defaults["verify_timeout"] = "1s"

    [result] = await world.run(force=True)

    assert result.outcome is Outcome.FAILED
    assert [p.key_id for p in world.passwords()] == [old.key_id]
    assert world.vault_key_id() == old.key_id
    [failed] = failures(world)
    assert failed["reason"] == "verification_failed"
    assert failed["level"] == "error"
    assert "verify_timeout" in str(failed["hint"])
    assert world.logs.named("credential.retired", reason="compensation")


async def test_verification_rides_out_a_replication_delay(world: World) -> None:
    world.emu.replication_delay = timedelta(seconds=1.5)

    [result] = await world.run()

    assert result.outcome is Outcome.CHANGED
    [verified] = world.logs.named("credential.verified")
    assert int(verified["attempts"]) > 1


async def test_permission_denied_on_one_target_does_not_stop_the_other(world: World) -> None:
    stranger = world.emu.add_app(world.tenant, "Not ours")  # the rotator is no owner of it
    world.target("dime-exchange")
    world.target("not-ours", app_id=stranger.app_id)

    results = await world.run()

    outcomes = {r.target: r.outcome for r in results}
    assert outcomes == {"dime-exchange": Outcome.CHANGED, "not-ours": Outcome.FAILED}
    assert exit_code(results) == 1
    [failed] = failures(world, "not-ours")
    assert failed["reason"] == "permission_denied"
    assert "Application.ReadWrite.OwnedBy" in str(failed["hint"])
    assert world.emu.passwords(world.tenant, stranger.app_id) == []


async def test_an_unknown_app_is_not_found(world: World) -> None:
    world.target("ghost", app_id=str(uuid.uuid4()))

    [result] = await world.run()

    assert result.outcome is Outcome.FAILED
    assert result.error is not None
    assert result.error.reason.value == "not_found"
    assert "client_id" in failures(world, "ghost")[0]["hint"]  # type: ignore[operator]


async def test_a_short_429_storm_is_ridden_out_honouring_retry_after(world: World) -> None:
    world.emu.faults.add(GRAPH_APP_READ, "GET", "throttle", retry_after=1, count=2)

    [result] = await world.run()

    assert result.outcome is Outcome.CHANGED
    throttled = [r for r in world.emu.requests if r.service == "graph" and r.status == 429]
    assert len(throttled) == 2
    assert (
        world.metrics.registry.get_sample_value(
            "secret_rotator_remote_calls_total",
            {"service": "graph", "operation": "read the app", "outcome": "transient"},
        )
        == 2.0
    )


async def test_a_429_storm_that_does_not_stop_fails_the_target_as_throttled(world: World) -> None:
    world.emu.faults.add(GRAPH_APP_READ, "GET", "throttle", retry_after=0)

    [result] = await world.run()

    assert result.outcome is Outcome.FAILED
    assert failures(world)[0]["reason"] == "throttled"
    assert world.passwords() == []


async def test_key_vault_failing_then_recovering_ends_with_both_sinks_on_one_working_secret(world: World) -> None:
    fault = world.emu.faults.add(VAULT, "PUT", "status", status=503)

    [broken] = await world.run()

    assert broken.outcome is Outcome.FAILED
    assert failures(world)[0]["reason"] == "sink_failed"
    assert world.vault_key_id() is None
    delivered = world.emu.receiver.deliveries[-1].idempotency_key
    assert {p.key_id for p in world.passwords()} == {delivered}, "the push took it, so it stays"

    world.emu.faults.remove(fault)
    [healed] = await world.run()

    assert healed.outcome is Outcome.CHANGED
    assert world.vault_key_id() == world.emu.receiver.deliveries[-1].idempotency_key
    assert world.emu.receiver.current_key_authenticates()


async def test_a_push_endpoint_down_then_back_is_resynced_from_key_vault(world: World) -> None:
    fault = world.emu.faults.add(RECEIVER, "POST", "status", status=503)

    [broken] = await world.run()

    assert broken.outcome is Outcome.FAILED
    [created] = world.passwords()
    assert world.vault_key_id() == created.key_id

    world.emu.faults.remove(fault)
    [healed] = await world.run()

    assert healed.outcome is Outcome.CHANGED
    assert [p.key_id for p in world.passwords()] == [created.key_id], "re-synced, not rotated again"
    assert world.emu.receiver.deliveries[-1].idempotency_key == created.key_id
    # The failed push left its receipt pending (a 503 does not prove the endpoint ignored it).
    assert world.logs.named("sink.updated", reason="pending_resync", key_id=created.key_id)


async def test_a_push_endpoint_refusing_the_api_key_says_so(world: World) -> None:
    (world.tmp / "dimescheduler-api-key").write_text("not-the-right-key")

    [result] = await world.run()

    assert result.outcome is Outcome.FAILED
    [failed] = failures(world)
    assert failed["reason"] == "sink_failed"
    assert "api_key" in str(failed["hint"])


async def test_a_lifetime_beyond_the_tenant_policy_fails_as_policy_violation_when_the_policy_is_unreadable(
    world: World,
) -> None:
    world.emu.set_password_max_lifetime(world.tenant, days(30))

    [result] = await world.run()

    assert result.outcome is Outcome.FAILED
    [failed] = failures(world)
    assert failed["reason"] == "policy_violation"
    assert "Policy.Read.All" in str(failed["hint"])
    assert world.passwords() == []


async def test_a_lifetime_beyond_the_tenant_policy_is_capped_when_the_policy_is_readable(world: World) -> None:
    world.emu.set_password_max_lifetime(world.tenant, days(30))
    world.emu.grant_app_role(world.tenant, world.rotator_object_id, "Policy.Read.All")

    [result] = await world.run()

    assert result.outcome is Outcome.CHANGED
    [created] = world.passwords()
    assert created.end is not None
    assert created.start is not None
    assert days(29) <= created.end - created.start <= days(30)
    assert world.logs.named("credential.lifetime_capped")


@pytest.mark.parametrize("marker", ["credential.expiring"], ids=["a failing rotation inside the renewal window warns"])
async def test_a_secret_in_use_that_cannot_be_renewed_raises_an_expiry_warning(world: World, marker: str) -> None:
    await world.run()
    world.clock.advance(days(80))
    world.emu.faults.add(r"/addPassword$", "POST", "status", status=403)

    [result] = await world.run()

    assert result.outcome is Outcome.FAILED
    [warning] = world.logs.named(marker)
    assert warning["level"] == "warning"
    assert warning["key_id"] == world.vault_key_id()
    assert world.emu.vault_secret(SECRET_NAME) is not None
