"""Maintenance windows against the emulator, through the real SDKs: a due rotation waits for the next window
(`plan` says when it opens, `run` changes nothing), goes ahead once it is open, and a secret that would expire
before the window opens is rotated at once, saying why. The daemon defers the same way, and wakes for the
window when its schedule would fire later.

The window is placed by the emulator's clock, which the engine shares: it opens at local midnight of the day
after tomorrow in Amsterdam, so it is closed now whatever day the test runs.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.interval import IntervalTrigger

from service.daemon import WINDOW_WAKE_JITTER
from service.metrics import Metrics
from service.output import plan_document, render_json, render_plan_table, render_status_table, status_document
from service.reconcile import Outcome
from service.runner import exit_code, plan_pass
from service.windows import DAY_NAMES
from tests.integration.conftest import SECRET_NAME, World, days
from tests.integration.daemon_kit import StartDaemon, get_json, passes

AMS = ZoneInfo("Europe/Amsterdam")


def closed_window(world: World) -> tuple[dict[str, Any], datetime]:
    """A whole-day window three days from today (Amsterdam), and when it opens: at least 48 hours away, so
    a test may move the clock a day and more and still be outside it, whatever the time of day it runs."""
    day = world.clock.now().astimezone(AMS).date() + timedelta(days=3)
    opens = datetime(day.year, day.month, day.day, tzinfo=AMS)
    window = {"days": [DAY_NAMES[day.weekday()]], "start": "00:00", "end": "24:00", "time_zone": "Europe/Amsterdam"}
    return window, opens


def remote(world: World) -> tuple[object, ...]:
    """What the remote side holds: the app's secrets, the vault's versions, the receiver's deliveries."""
    return (
        sorted(p.key_id for p in world.passwords()),
        len(world.emu.vault_versions(SECRET_NAME)),
        len(world.emu.receiver.deliveries),
    )


async def plan(world: World) -> tuple[int, dict[str, Any], str]:
    """`plan`'s exit code, its JSON document and its table, as the command builds them (on the shared clock)."""
    results = await plan_pass(world.config(), clock=world.clock, metrics=Metrics())
    document = plan_document(results)
    return exit_code(results), json.loads(render_json(document)), render_plan_table(document)


async def status(world: World) -> str:
    """`status`'s table, as the command builds it (on the shared clock)."""
    results = await plan_pass(world.config(), clock=world.clock, metrics=Metrics())
    return render_status_table(status_document(results, world.clock.now()))


async def test_a_window_defers_a_due_rotation_until_it_opens(world: World) -> None:
    await world.run()
    [first] = world.passwords()
    world.clock.advance(days(61))  # past 2/3 of the 90-day lifetime: due
    window, opens = closed_window(world)
    world.targets[0]["windows"] = [window]
    before = remote(world)

    code, document, table = await plan(world)

    [target] = document["targets"]
    assert code == 0
    assert target["status"] == "waiting"
    [action] = target["actions"]
    assert (action["kind"], action["reason"]) == ("wait", "outside_window")
    assert action["waits_until"] == opens.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")
    local = f"{opens:%a %Y-%m-%d %H:%M} Europe/Amsterdam"
    assert f"waiting for window, opens at {opens.astimezone(ZoneInfo('UTC')):%Y-%m-%d %H:%M}Z ({local})" in table
    assert f"create (renewal_due): {first.key_id} was due for renewal" in table
    assert "  note: waiting for window, opens at " in await status(world)

    [result] = await world.run()

    assert result.outcome is Outcome.HEALTHY
    assert remote(world) == before, "nothing changes outside the window"
    [deferred] = world.logs.named("rotation.deferred", target="dime-exchange")
    assert deferred["reason"] == "outside_window"
    assert deferred["opens_at"] == action["waits_until"]
    assert len(world.logs.named("credential.created")) == 1, "only the first pass created one"

    world.clock.advance(opens - world.clock.now() + timedelta(minutes=1))
    [opened] = await world.run()

    assert opened.outcome is Outcome.CHANGED
    [second] = [p for p in world.passwords() if p.key_id != first.key_id]
    assert world.vault_key_id() == second.key_id
    assert world.emu.receiver.deliveries[-1].idempotency_key == second.key_id


async def test_a_secret_about_to_expire_overrides_the_window(world: World) -> None:
    await world.run()
    [first] = world.passwords()
    world.clock.advance(days(88))  # two days left: less than window_margin (3d) before the window opens
    window, _ = closed_window(world)
    world.targets[0]["windows"] = [window]

    _, document, _ = await plan(world)
    [action] = document["targets"][0]["actions"]
    assert (action["kind"], action["reason"]) == ("create", "renewal_due")
    assert action["window_overridden"].startswith(
        "outside the maintenance windows, but a secret a consumer depends on expires at "
    )

    [result] = await world.run()

    assert result.outcome is Outcome.CHANGED
    [second] = [p for p in world.passwords() if p.key_id != first.key_id]
    assert world.vault_key_id() == second.key_id
    assert world.emu.receiver.deliveries[-1].idempotency_key == second.key_id
    [overridden] = world.logs.named("rotation.window_overridden", target="dime-exchange")
    assert overridden["level"] == "warning"
    assert "less than window_margin before expiry, so it is rotated now" in overridden["detail"]

    # The old secret's retirement is no emergency: after the grace period it waits for the window.
    world.clock.advance(days(1) + timedelta(hours=1))
    [later] = await world.run()
    assert later.outcome is Outcome.HEALTHY
    assert first.key_id in {p.key_id for p in world.passwords()}
    assert world.logs.named("rotation.deferred", target="dime-exchange")


async def test_an_empty_list_on_a_target_lifts_the_defaults_windows(world: World) -> None:
    await world.run()
    world.clock.advance(days(61))
    window, _ = closed_window(world)
    world.defaults["windows"] = [window]
    world.targets[0]["windows"] = []

    [result] = await world.run()

    assert result.outcome is Outcome.CHANGED
    assert len(world.passwords()) == 2


async def test_the_daemon_defers_too_and_runs_its_next_pass_when_the_window_opens(
    world: World, start_daemon: StartDaemon
) -> None:
    await world.run()
    world.clock.advance(days(61))
    window, opens = closed_window(world)
    world.targets[0]["windows"] = [window]
    before = remote(world)
    daemon = await start_daemon(IntervalTrigger(days=30))
    await passes(daemon, 1)
    _, health = await get_json(f"{daemon.url}/healthz")

    assert remote(world) == before
    assert health["last_pass"]["healthy"] == 1
    assert world.logs.named("rotation.deferred", target="dime-exchange")
    # The scheduler's next pass is at the opening (on the system clock: the emulator's runs ahead of it), up to
    # a minute later (schedule_jitter, 5m by default, capped for a window).
    late = datetime.fromisoformat(health["next_pass_at"]) - (opens - world.clock.offset)
    assert timedelta(seconds=-5) < late < WINDOW_WAKE_JITTER + timedelta(seconds=5)
    assert world.logs.named("daemon.window_wake")
