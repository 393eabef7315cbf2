"""retire_on: usage against the emulator, through the real SDKs: an old secret goes only once Entra's sign-in
report shows the consumer switched; a consumer that keeps the old one is reported and not cut off until that
secret expires anyway; a report the rotator may not read falls back to the grace period, and says so.

The consumer (Dime.Scheduler) is played by token requests with a given secret through azure-identity's
ClientSecretCredential (the Verifier adapter); the emulator's receiver is told not to sign in by itself.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.reconcile import Outcome
from service.secret import Secret
from tests.integration.conftest import World, days
from tests.integration.kit import Kit

TARGET = "dime-exchange"


def on_usage(world: World, *, may_read_report: bool = True) -> None:
    world.defaults = {"retire_on": "usage"}
    world.emu.receiver.verify_signin = False  # only the test's sign-ins count as the consumer's
    if may_read_report:
        world.emu.grant_app_role(world.tenant, world.rotator_object_id, "AuditLog.Read.All")


async def sign_in(kit: Kit, world: World, secret: str) -> None:
    """The consumer gets a token with ``secret``: Entra records a sign-in with its credential."""
    await kit.verifier().try_token(world.tenant, world.app_id, Secret(secret))


async def renewed(world: World) -> tuple[str, str, str, str]:
    """A first secret, then its renewal: (old key id, old secret, new key id, new secret)."""
    await world.run()
    world.clock.advance(days(61))  # past 2/3 of the 90-day lifetime
    [result] = await world.run()
    assert result.outcome is Outcome.CHANGED
    first, second = world.emu.receiver.deliveries[0], world.emu.receiver.deliveries[-1]
    assert first.idempotency_key != second.idempotency_key
    assert first.idempotency_key is not None
    assert second.idempotency_key is not None
    return first.idempotency_key, first.reveal(), second.idempotency_key, second.reveal()


def lagging_seconds(world: World, key_id: str) -> float | None:
    return world.metrics.registry.get_sample_value(
        "secret_rotator_consumer_lagging_seconds", {"target": TARGET, "key_id": key_id}
    )


async def test_the_old_secret_waits_for_the_reports_evidence_that_the_consumer_switched(world: World, kit: Kit) -> None:
    on_usage(world)
    old, _, new, new_secret = await renewed(world)
    world.clock.advance(timedelta(hours=25))  # the grace period has run

    [waiting] = await world.run()
    assert old in {p.key_id for p in world.passwords()}, "no evidence yet: the old secret stays"
    assert waiting.plan is not None
    assert any(f"no sign-in with {new} since it was handed out" in n for n in waiting.plan.notes)

    await sign_in(kit, world, new_secret)
    world.clock.advance(timedelta(minutes=5))
    await world.run()

    assert [p.key_id for p in world.passwords()] == [new]
    [event] = world.logs.named("credential.retired", key_id=old)
    assert event["reason"] == "superseded"
    assert "the sign-in report shows the switch" in event["detail"]
    # One read of the report in each of the four passes, beside the sinks; none for the gauges after apply.
    assert len([r for r in world.emu.requests if "appCredentialSignInActivities" in r.path]) == 4
    assert lagging_seconds(world, old) is None
    # The first pass found no sign-ins at all (a new app): nothing waited on them, so no warning.
    assert not world.logs.named("evidence.unavailable")


async def test_a_consumer_that_keeps_the_old_secret_is_reported_each_pass_and_kept_until_it_expires(
    world: World, kit: Kit
) -> None:
    on_usage(world)
    old, old_secret, new, new_secret = await renewed(world)
    world.clock.advance(timedelta(hours=25))
    await sign_in(kit, world, new_secret)  # one instance switched...
    await sign_in(kit, world, old_secret)  # ...and another still uses the old secret

    await world.run()
    world.clock.advance(days(10))
    await sign_in(kit, world, old_secret)
    [still] = await world.run()

    assert old in {p.key_id for p in world.passwords()}
    lagging = world.logs.named("consumer.lagging", target=TARGET, key_id=old)
    assert len(lagging) == 2, "once per pass"
    assert lagging[-1]["level"] == "warning"
    assert lagging[-1]["in_use"] == [new]
    assert lagging[-1]["days_since_handout"] == pytest.approx(11.0, abs=0.1)
    assert set(lagging[-1]["last_sign_in"]) == {old, new}
    assert lagging_seconds(world, old) == pytest.approx(days(11).total_seconds(), rel=0.01)
    assert still.plan is not None
    assert any(n.startswith(f"consumer lagging for retiring {old}") for n in still.plan.notes)

    world.clock.advance(days(19))  # the old secret's 90 days are over: it works for no one now
    await world.run()

    assert [p.key_id for p in world.passwords()] == [new]
    [event] = world.logs.named("credential.retired", key_id=old)
    assert event["reason"] == "superseded_expired"
    assert lagging_seconds(world, old) is None


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("no permission", "no_permission"), ("national cloud", "not_in_this_cloud"), ("empty report", "no_data")],
    ids=[
        "without AuditLog.Read.All the grace period decides and the pass says so once",
        "in a cloud without the report the grace period decides and the pass says so once",
        "with an empty report the grace period decides and the pass says so once",
    ],
)
async def test_a_report_that_gives_no_evidence_falls_back_to_the_grace_period(
    world: World, kit: Kit, fault: str, reason: str
) -> None:
    on_usage(world, may_read_report=fault != "no permission")
    world.emu.sign_ins.available = fault != "national cloud"
    world.emu.sign_ins.empty = fault == "empty report"
    old, _, new, _ = await renewed(world)
    world.clock.advance(timedelta(hours=25))
    before = len(world.logs.events)

    [result] = await world.run()

    assert [p.key_id for p in world.passwords()] == [new]
    assert world.logs.named("credential.retired", key_id=old, reason="superseded")
    [event] = [e for e in world.logs.events[before:] if e["event"] == "evidence.unavailable"]
    assert (event["level"], event["reason"], event["fallback"]) == ("warning", reason, "grace_period")
    assert event["hint"]
    assert result.plan is not None
    assert any(n.startswith(f"evidence unavailable ({reason})") for n in result.plan.notes)
    assert (
        world.metrics.registry.get_sample_value(
            "secret_rotator_evidence_unavailable", {"target": TARGET, "reason": reason}
        )
        == 1
    )
