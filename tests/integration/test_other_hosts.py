"""A secret another host created never cuts Dime.Scheduler off: stale receipts, and two state stores.

What Dime.Scheduler holds is known only from the receipts of the store that pushed it. An operator's
`run` from another host (its own, fresh state) rotates and pushes; the CronJob host's receipt still names
the secret before. That new secret is one no receipt here recorded and no intent here names: it is
another store's, which the receiver may hold, so it is answered with a secret the receiver is known to
hold, and goes only a grace period later. A ReceiverWatch checks after every request the emulator
answers, and on a timer in between, that the secret the receiver holds signs in.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import yaml

from service.config.document import Config
from service.config.loading import parse_config
from service.model import DEFAULT_MARKER, credential_name, parse_credential_name
from service.reconcile import Outcome, TargetResult
from tests.integration.conftest import World, days
from tests.world import ReceiverWatch

PUSH_ONLY = ("dimescheduler",)
HOUR = timedelta(hours=1)


def host(world: World, folder: str) -> Config:
    """The world's config with its own state folder: one host, or an operator's laptop."""
    data = {**world.config_data(), "state": {"backend": "file", "path": str(world.tmp / folder)}}
    return parse_config(yaml.safe_dump(data), f"{folder}.yaml", environ={})


def held(world: World) -> str:
    return world.emu.receiver.deliveries[-1].idempotency_key


async def one(world: World, config: Config) -> TargetResult:
    [result] = await world.run(config=config)
    return result


async def test_the_cronjob_hosts_stale_receipt_answers_a_manual_run_and_never_retires_what_it_pushed(
    world: World,
) -> None:
    world.target(sinks=PUSH_ONLY)
    cron, laptop = host(world, "cron-state"), host(world, "laptop-state")
    await one(world, cron)
    [first] = world.passwords()
    watch = ReceiverWatch(world)

    async with watch.watching():
        world.clock.advance(HOUR)
        await one(world, laptop)  # by hand, from elsewhere: no receipt there, so it rotates and pushes
        manual = held(world)
        world.clock.advance(HOUR)  # older than in_flight_timeout: the old rule took it for an orphan
        answered = await one(world, cron)
        answer = held(world)
        on_app = {p.key_id for p in world.passwords()}
        world.clock.advance(days(1) - timedelta(minutes=1))
        waiting = await one(world, cron)
        world.clock.advance(timedelta(minutes=2))
        settled = await one(world, cron)

    assert not watch.dead, f"the receiver held a dead secret: {watch.dead[:3]}"
    assert watch.samples > 10
    assert answered.outcome is Outcome.CHANGED
    assert on_app == {first.key_id, manual, answer}, "nothing the receiver may hold went with the answer"
    [created] = world.logs.named("credential.created", key_id=answer)
    assert created["reason"] == "foreign_credential"
    assert f"{manual}" in created["detail"]
    assert "created by another host or state store" in created["detail"]
    assert waiting.outcome is Outcome.HEALTHY
    assert settled.outcome is Outcome.CHANGED
    assert [p.key_id for p in world.passwords()] == [answer]
    assert {e["key_id"] for e in world.logs.named("credential.retired", reason="superseded")} == {first.key_id, manual}
    assert not world.logs.named("credential.retired", reason="orphan")
    assert not world.logs.named("rotation.failed")


async def test_the_manual_hosts_stale_receipt_answers_the_cronjob_and_both_settle(world: World) -> None:
    """The other order: the laptop ran once, the CronJob host answered and settled; weeks later the laptop
    runs again with its old receipt, naming a secret that is long gone."""
    world.target(sinks=PUSH_ONLY)
    cron, laptop = host(world, "cron-state"), host(world, "laptop-state")
    await one(world, cron)
    watch = ReceiverWatch(world)

    async with watch.watching():
        world.clock.advance(HOUR)
        await one(world, laptop)
        world.clock.advance(HOUR)
        await one(world, cron)
        world.clock.advance(days(2))
        await one(world, cron)
        cron_secret = held(world)
        assert [p.key_id for p in world.passwords()] == [cron_secret]

        world.clock.advance(days(20))
        again = await one(world, laptop)  # its receipt names a secret retired weeks ago
        laptop_secret = held(world)
        world.clock.advance(HOUR)
        answered = await one(world, cron)
        cron_again = held(world)
        for _ in range(4):
            world.clock.advance(timedelta(hours=12))
            await one(world, cron)

    assert not watch.dead, f"the receiver held a dead secret: {watch.dead[:3]}"
    assert again.outcome is Outcome.CHANGED
    assert world.logs.named("credential.created", key_id=laptop_secret)[0]["reason"] == "foreign_credential"
    assert answered.outcome is Outcome.CHANGED
    assert world.logs.named("credential.created", key_id=cron_again)[0]["reason"] == "foreign_credential"
    assert [p.key_id for p in world.passwords()] == [cron_again]
    assert cron_secret in {e["key_id"] for e in world.logs.named("credential.retired", reason="superseded")}
    assert not world.logs.named("credential.retired", reason="orphan")
    assert not world.logs.named("rotation.failed")


async def test_a_rotation_here_while_another_hosts_secret_is_still_on_its_way_does_not_take_that_one_for_superseded(
    world: World,
) -> None:
    """The other host's pass has created its secret and pushes it after this host's forced rotation pushed:
    the receiver ends on the other host's secret, which this host must neither retire nor forget."""
    world.target(sinks=PUSH_ONLY)
    cron, laptop = host(world, "cron-state"), host(world, "laptop-state")
    await one(world, cron)
    world.clock.advance(HOUR)
    pushes = [r for r in world.emu.requests if r.method == "POST" and r.path.startswith("/dimescheduler/")]
    world.emu.faults.add(r"^/dimescheduler/", "POST", "latency", delay=1.5, count=1)
    created = asyncio.Event()
    loop = asyncio.get_running_loop()
    world.emu.faults.add(
        r"/addPassword$", "POST", "hook", after=True, count=1, hook=lambda _: loop.call_soon_threadsafe(created.set)
    )
    watch = ReceiverWatch(world)

    async with watch.watching():
        manual = asyncio.create_task(one(world, laptop))
        await asyncio.wait_for(created.wait(), 10)  # the laptop's addPassword is done; its push is on its way
        await asyncio.sleep(0.2)
        forced = (await world.run(config=cron, force=True))[0]
        await manual
        theirs = held(world)
        three = {p.key_id for p in world.passwords()}
        sent = [r for r in world.emu.requests if r.method == "POST" and r.path.startswith("/dimescheduler/")]
        delivered = [d.idempotency_key for d in world.emu.receiver.deliveries]
        for _ in range(8):
            world.clock.advance(timedelta(hours=6))
            await one(world, cron)

    assert not watch.dead, f"the receiver held a dead secret: {watch.dead[:3]}"
    assert forced.outcome is Outcome.CHANGED
    assert len(sent) == len(pushes) + 2
    [mine] = world.logs.named("credential.created", reason="forced")
    assert delivered[-2:] == [mine["key_id"], theirs], "the laptop's push landed last"
    assert world.logs.named("credential.created", key_id=theirs)[0]["reason"] == "no_receipt"
    assert len(three) == 3
    # Three secrets and none to spare on a push-only target: the answer waits until the one this host
    # superseded with its forced rotation may go, a grace period after; the laptop's is kept meanwhile.
    [answer] = world.logs.named("credential.created", reason="foreign_credential")
    assert theirs in answer["detail"]
    assert [p.key_id for p in world.passwords()] == [held(world)] == [answer["key_id"]]
    assert theirs in {e["key_id"] for e in world.logs.named("credential.retired", reason="superseded")}
    assert {e["reason"] for e in world.logs.named("rotation.failed")} <= {"policy_violation"}


async def test_two_hosts_that_both_keep_running_are_blocked_in_turn_loudly_and_never_cut_the_receiver_off(
    world: World,
) -> None:
    world.target(sinks=PUSH_ONLY)
    first, second = host(world, "host-a"), host(world, "host-b")
    watch = ReceiverWatch(world)
    counts = []

    async with watch.watching():
        for _ in range(4 * 5):  # five days of two CronJobs every 6 hours, three hours apart
            await world.run(config=first)
            world.clock.advance(3 * HOUR)
            await world.run(config=second)
            world.clock.advance(3 * HOUR)
            counts.append(len(world.passwords()))

    assert not watch.dead, f"the receiver held a dead secret: {watch.dead[:3]}"
    assert max(counts) <= 4, counts
    blocked = world.logs.named("rotation.failed", reason="policy_violation")
    said = [e for e in blocked if "Give them one shared state store" in e["error"]]
    assert said, "loud: a failed target that says what to fix"
    assert "one shared state store" in said[0]["hint"]
    assert said[0]["timestamp"] < world.logs.named("credential.created")[4]["timestamp"], "within the first answers"
    answers = world.logs.named("credential.created", reason="foreign_credential")
    assert len(answers) <= 2 * 5, "each store answers at most once a grace period, not on every pass"
    assert not world.logs.named("credential.retired", reason="orphan")


async def test_an_upgraded_store_without_intents_answers_an_unrecorded_secret_once_and_then_settles(
    world: World,
) -> None:
    """State written before intents were kept: receipts, and no intents. A managed secret no receipt recorded
    (a lost answer from before the upgrade, or another host's) may be what the receiver holds: one answer,
    then it goes as superseded, and no pass after rotates again."""
    world.target(sinks=PUSH_ONLY)
    config = host(world, "state")
    await one(world, config)
    [recorded] = world.passwords()
    start = world.clock.now() - timedelta(minutes=30)
    unrecorded, _ = world.emu.add_password(
        world.tenant,
        world.app_id,
        display_name=credential_name(DEFAULT_MARKER, start),
        start=start,
        end=start + days(90),
    )
    for path in (world.tmp / "state" / "intents").iterdir():
        path.unlink()  # what the store looked like before the upgrade
    watch = ReceiverWatch(world)

    async with watch.watching():
        for _ in range(8):
            world.clock.advance(timedelta(hours=6))
            await one(world, config)

    assert not watch.dead, f"the receiver held a dead secret: {watch.dead[:3]}"
    created = world.logs.named("credential.created")
    assert [e["reason"] for e in created] == ["no_credential_in_use", "foreign_credential"], "no churn"
    assert [p.key_id for p in world.passwords()] == [held(world)]
    assert {e["key_id"] for e in world.logs.named("credential.retired", reason="superseded")} == {
        recorded.key_id,
        unrecorded,
    }


async def test_an_upgraded_store_whose_receipts_recorded_every_secret_changes_nothing(world: World) -> None:
    world.target(sinks=PUSH_ONLY)
    config = host(world, "state")
    await one(world, config)
    world.clock.advance(days(61))  # due: one renewal, its predecessor retired after the grace period
    await one(world, config)
    for path in (world.tmp / "state" / "intents").iterdir():
        path.unlink()

    results = []
    for _ in range(6):
        world.clock.advance(timedelta(hours=6))
        results.append((await one(world, config)).outcome)

    assert [e["reason"] for e in world.logs.named("credential.created")] == ["no_credential_in_use", "renewal_due"]
    assert len(world.passwords()) == 1
    assert Outcome.FAILED not in results


def intents(world: World, folder: str) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = json.loads((world.tmp / folder / "intents" / "dime-exchange.json").read_text())[
        "intents"
    ]
    return entries


async def test_each_intent_ends_with_the_key_id_addpassword_answered_or_as_refused(world: World) -> None:
    """What the intents say once addPassword answered: which credential came of each, or that none did."""
    world.target(sinks=PUSH_ONLY)
    config = host(world, "state")
    await one(world, config)
    [created] = world.passwords()
    world.emu.faults.add(r"/addPassword$", "POST", "status", status=403, count=1)
    world.clock.advance(HOUR)
    before = world.clock.now().replace(microsecond=0)

    refused = (await world.run(config=config, force=True))[0]

    assert refused.outcome is Outcome.FAILED
    first, second = intents(world, "state")
    assert (first["name"], first["key_id"], first["reason"]) == (
        created.display_name,
        created.key_id,
        "no_credential_in_use",
    )
    assert second["refused"] is True
    assert "key_id" not in second
    when = parse_credential_name(str(second["name"]), DEFAULT_MARKER)
    assert when is not None
    assert before <= when <= world.clock.now()


async def test_a_key_vault_only_target_writes_no_intents(world: World) -> None:
    world.target(sinks=("keyvault",))
    await one(world, host(world, "state"))

    assert len(world.passwords()) == 1
    assert not list((world.tmp / "state" / "intents").iterdir())
