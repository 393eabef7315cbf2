"""`status` says what is becoming of every secret of an app, so that an operator reads it at a glance: the
one in use and when it renews, a superseded one and when it goes, an orphan, someone else's left alone; a
target that cannot be read stands out. The same facts are in `--output json`. Real `secret-rotator status`
against the emulator through the real SDKs (``main`` in process, the emulator in a thread)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import structlog

from service.emulator import Emulator
from service.model import credential_name
from tests.integration.test_cli import cli
from tests.world import World, emulator_in_thread

DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    root.handlers, root.level = handlers, level


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """The emulator in a thread: ``main`` runs its own event loop on the test's."""
    yield from emulator_in_thread()


def rows(table: str) -> dict[str, list[str]]:
    """The credential rows of a status table, by key id: the columns split on two or more spaces."""
    lines = table.splitlines()
    header = next(i for i, line in enumerate(lines) if "KEY ID" in line)
    found = {}
    for line in lines[header + 1 :]:
        if not line.startswith("  ") or line.startswith(("  sink ", "  note:")):
            break
        cells = [cell for cell in line.strip().split("  ") if cell.strip()]
        found[cells[0].strip()] = [cell.strip() for cell in cells]
    return found


def by_key(document: dict[str, Any], target: str = "dime-exchange") -> dict[str, dict[str, Any]]:
    [entry] = [t for t in document["targets"] if t["target"] == target]
    return {c["key_id"]: c for c in entry["credentials"]}


def test_status_says_what_becomes_of_every_secret_and_when(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    now = world.clock.now()
    hand_made, _ = world.emu.add_password(
        world.tenant, world.app_id, display_name="made by hand", start=now - 80 * DAY, end=now + 10 * DAY
    )
    path = str(world.config_file())
    assert cli(capsys, "run", "--config", path)[0] == 0
    [first] = [p.key_id for p in world.passwords() if p.key_id != hand_made]
    assert cli(capsys, "run", "--config", path, "--force")[0] == 0
    [current] = [p.key_id for p in world.passwords() if p.key_id not in (hand_made, first)]
    # A secret named as this service names its own, that this state store never set out to create: another
    # host's (a one-off run from a laptop). Dime.Scheduler may hold it, so it is kept.
    foreign, _ = world.emu.add_password(
        world.tenant,
        world.app_id,
        display_name=credential_name("secret-rotator", world.clock.now() - timedelta(minutes=1)),
        start=world.clock.now() - timedelta(minutes=1),
        end=world.clock.now() + 90 * DAY,
    )

    code, table, _ = cli(capsys, "status", "--config", path)
    json_code, out, _ = cli(capsys, "status", "--config", path, "--output", "json")

    assert (code, json_code) == (0, 0)
    table_rows, facts = rows(table), by_key(json.loads(out))
    header = table.splitlines()[1].split()
    assert header == ["KEY", "ID", "HINT", "MANAGED", "STATE", "EXPIRES", "DAYS", "RENEW", "AT", "HELD", "BY"]
    # The secret in use: when it renews (a third of its 90 days before its end), and who holds it.
    assert facts[current]["state"] == "in_use"
    end = {p.key_id: p for p in world.passwords()}[current].end
    assert facts[current]["renew_at"] == (end - 30 * DAY).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert table_rows[current][3] == "in use"
    assert table_rows[current][6] == f"{facts[current]['renew_at'][:10]} {facts[current]['renew_at'][11:16]}Z"
    # The one it replaced: superseded, gone a grace period after the sinks took its successor.
    assert facts[first]["state"] == "superseded"
    assert facts[first]["retire_due"] is False
    assert table_rows[first][3].startswith("superseded, retire after ")
    # Another host's secret, and someone's hand-made one that expires in ten days: kept, and harmless.
    assert facts[foreign]["state"] == "foreign"
    assert table_rows[foreign][3] == "another store's (foreign), kept"
    assert facts[hand_made]["state"] == "unmanaged"
    assert table_rows[hand_made][2:4] == ["no", "unmanaged, left alone"]
    assert table_rows[hand_made][5] == "10"
    # The hint (the secret's first 3 characters, as the portal shows them) tells them apart, here only.
    assert all(len(c["hint"]) == 3 for c in facts.values())
    assert table_rows[current][1] == facts[current]["hint"]


def test_a_leftover_no_sink_ever_recorded_is_an_orphan_that_goes_after_in_flight_timeout(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.target(sinks=("keyvault",))
    path = str(world.config_file())
    cli(capsys, "run", "--config", path)
    started = world.clock.now() - timedelta(minutes=1)
    orphan, _ = world.emu.add_password(
        world.tenant,
        world.app_id,
        display_name=credential_name("secret-rotator", started),
        start=started,
        end=started + 90 * DAY,
    )

    _, table, _ = cli(capsys, "status", "--config", path)
    _, out, _ = cli(capsys, "status", "--config", path, "--output", "json")

    fact = by_key(json.loads(out))[orphan]
    assert (fact["state"], fact["retire_due"]) == ("orphan", False)
    assert fact["retire_after"] == (started + timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert rows(table)[orphan][3] == f"orphan, retire after {fact['retire_after'][:10]} {fact['retire_after'][11:16]}Z"


def test_a_superseded_secret_past_its_grace_period_is_shown_as_going_with_the_next_run(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    # The command line's clock is the system's: a grace period of a second, waited out.
    world.defaults["grace_period"] = "1s"
    path = str(world.config_file())
    cli(capsys, "run", "--config", path)
    [first] = [p.key_id for p in world.passwords()]
    cli(capsys, "run", "--config", path, "--force")
    time.sleep(1.5)

    _, table, _ = cli(capsys, "status", "--config", path)
    _, out, _ = cli(capsys, "status", "--config", path, "--output", "json")

    assert by_key(json.loads(out))[first]["retire_due"] is True
    assert rows(table)[first][3] == "superseded, retired by the next run"


def test_a_target_that_cannot_be_read_stands_out_in_the_table_and_the_json(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.target("dime-exchange")
    world.target("ghost", app_id=str(uuid.uuid4()), sinks=("keyvault",), secret_name="ghost-secret")
    path = str(world.config_file())

    code, table, _ = cli(capsys, "status", "--config", path)
    _, out, _ = cli(capsys, "status", "--config", path, "--output", "json")

    assert code == 1
    assert "ghost: FAILED, could not be read (not_found)" in table.splitlines()
    assert table.splitlines()[-1] == "FAILED: 1 of 2 target(s) could not be read: ghost"
    assert {t["target"]: t["status"] for t in json.loads(out)["targets"]} == {"dime-exchange": "ok", "ghost": "error"}


def test_with_retire_on_usage_status_and_plan_show_last_sign_ins_and_a_lagging_consumer(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    # The command line's clock is the system's: a grace period and usage_lag of a second, waited out.
    world.defaults.update({"retire_on": "usage", "grace_period": "1s", "usage_lag": "1s"})
    world.emu.receiver.verify_signin = False  # the test plays the consumer's sign-ins
    world.emu.grant_app_role(world.tenant, world.rotator_object_id, "AuditLog.Read.All")
    path = str(world.config_file())
    cli(capsys, "run", "--config", path)
    cli(capsys, "run", "--config", path, "--force")
    old, new = world.emu.receiver.deliveries[0], world.emu.receiver.deliveries[-1]
    time.sleep(2.5)
    # One instance of the consumer took the new secret, another still signs in with the old one.
    assert world.emu.receiver.sign_in(world.tenant, world.app_id, new.reveal())
    assert world.emu.receiver.sign_in(world.tenant, world.app_id, old.reveal())

    code, table, _ = cli(capsys, "status", "--config", path)
    _, out, _ = cli(capsys, "status", "--config", path, "--output", "json")
    plan_code, plan, _ = cli(capsys, "plan", "--config", path)

    assert (code, plan_code) == (0, 0)
    facts, table_rows = by_key(json.loads(out)), rows(table)
    old_key, new_key = str(old.idempotency_key), str(new.idempotency_key)
    assert table.splitlines()[1].endswith("LAST SIGN-IN")
    assert facts[old_key]["last_sign_in"] is not None
    assert facts[new_key]["last_sign_in"] is not None
    assert table_rows[old_key][-1] == f"{facts[old_key]['last_sign_in'][:10]} {facts[old_key]['last_sign_in'][11:16]}Z"
    assert facts[old_key]["retire_due"] is False
    assert "still signed in at" in facts[old_key]["missing_evidence"]
    assert table_rows[old_key][3].startswith("superseded, waits for evidence of the switch, at the latest ")
    [lagging] = json.loads(out)["targets"][0]["evidence"]["lagging"]
    assert (lagging["key_id"], lagging["in_use"]) == (old_key, [new_key])
    assert f"note: consumer lagging for retiring {old_key}: {old_key} still signed in at" in table
    assert f"note: consumer lagging for retiring {old_key}" in plan
    assert old_key in {p.key_id for p in world.passwords()}
