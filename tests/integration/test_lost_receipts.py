"""A push sink whose receipts are lost (a fresh state volume, a run from another host) is never cut off.

Dime.Scheduler cannot be read back: what it holds is known only from the receipt in the state store. With
no receipt at all it may hold any of the app's secrets, so none may be taken for an orphan; the pass
rotates to a secret the receiver is known to hold, and the one it held before goes only after the grace
period. A ReceiverWatch checks after every request the emulator answers, and on a timer in between, that
the secret the receiver holds signs in.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from service.config.document import Config
from service.config.loading import parse_config
from service.model import DEFAULT_MARKER as MARKER
from service.model import credential_name
from service.reconcile import Outcome
from tests.conftest import assert_no_secrets
from tests.integration.conftest import World, days
from tests.world import ReceiverWatch

PUSH_ONLY = ("dimescheduler",)


def with_state(world: World, folder: str) -> Config:
    """The world's config with the state store in ``folder`` (another host, or a fresh volume)."""
    data = {**world.config_data(), "state": {"backend": "file", "path": str(world.tmp / folder)}}
    return parse_config(yaml.safe_dump(data), f"{folder}.yaml", environ={})


async def test_a_run_with_an_empty_state_folder_keeps_the_receivers_secret_until_grace_after_the_new_one(
    world: World,
) -> None:
    world.target(sinks=PUSH_ONLY)
    [first] = await world.run(config=with_state(world, "state-a"))
    assert first.outcome is Outcome.CHANGED
    [held] = world.passwords()
    watch = ReceiverWatch(world)

    world.clock.advance(timedelta(hours=1))  # older than in_flight_timeout: the old rule took it for an orphan
    fresh = with_state(world, "state-b")
    async with watch.watching():
        [second] = await world.run(config=fresh)

    assert second.outcome is Outcome.CHANGED
    assert not watch.dead, f"the receiver held a dead secret: {watch.dead[:3]}"
    assert watch.samples > 10
    new = world.emu.receiver.deliveries[-1].idempotency_key
    assert new != held.key_id
    assert {p.key_id for p in world.passwords()} == {held.key_id, new}, "the secret it held before survives"
    [created] = world.logs.named("credential.created", key_id=new)
    assert created["reason"] == "no_receipt"
    assert "may hold any of" in created["detail"]
    assert not world.logs.named("credential.retired")

    # The grace period (1d) counts from when the receiver got the new secret.
    async with watch.watching():
        world.clock.advance(days(1) - timedelta(minutes=1))
        [waiting] = await world.run(config=fresh)
        assert held.key_id in {p.key_id for p in world.passwords()}
        assert waiting.outcome is Outcome.HEALTHY

        world.clock.advance(timedelta(minutes=2))
        [retired] = await world.run(config=fresh)

    assert retired.outcome is Outcome.CHANGED
    assert [p.key_id for p in world.passwords()] == [new]
    assert world.logs.named("credential.retired", key_id=held.key_id, reason="superseded")
    assert not watch.dead, f"the receiver held a dead secret: {watch.dead[:3]}"


async def push_by_hand(world: World, key_id: str, secret: str) -> None:
    """What a manual run from another host did: pushed a secret to the receiver, leaving no receipt here."""
    body = {
        "tenantId": world.tenant,
        "clientId": world.app_id,
        "clientSecret": secret,
        "expiresOn": "2030-01-01T00:00:00Z",
    }
    headers = {"X-API-KEY": world.emu.receiver.api_key, "Idempotency-Key": key_id}
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            world.emu.receiver_url, json=body, headers=headers, ssl=ssl.create_default_context(cafile=world.emu.ca_file)
        ) as response,
    ):
        assert response.status == 200


async def test_with_key_vault_a_push_sink_without_receipt_is_resent_and_what_it_held_waits_for_grace(
    world: World,
) -> None:
    """Key Vault holds the current secret: the push sink is re-sent it. The secret another host pushed (ours
    by name, never in Key Vault) was an orphan to the old rule; it goes only after the grace period."""
    world.target()
    await world.run(config=with_state(world, "state-a"))
    [current] = world.passwords()
    world.clock.advance(timedelta(hours=1))
    start = world.clock.now() - timedelta(minutes=1)
    other, secret = world.emu.add_password(
        world.tenant, world.app_id, display_name=credential_name(MARKER, start), start=start, end=start + days(90)
    )
    await push_by_hand(world, other, secret)
    world.clock.advance(timedelta(hours=1))
    fresh = with_state(world, "state-b")
    watch = ReceiverWatch(world)

    async with watch.watching():
        [resent] = await world.run(config=fresh)

    assert resent.outcome is Outcome.CHANGED
    assert not watch.dead, f"the receiver held a dead secret: {watch.dead[:3]}"
    assert world.logs.named("sink.updated", reason="sink_lags", key_id=current.key_id)
    assert {p.key_id for p in world.passwords()} == {current.key_id, other}
    assert not world.logs.named("credential.retired")

    world.clock.advance(days(1) + timedelta(minutes=1))
    await world.run(config=fresh)
    assert [p.key_id for p in world.passwords()] == [current.key_id]
    assert world.logs.named("credential.retired", key_id=other, reason="superseded")


async def _cli(config: Path, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        *args,
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ),
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert_no_secrets(out.decode() + err.decode(), "the command's output")
    assert process.returncode is not None
    return process.returncode, out.decode()


def _config_file(world: World, folder: str) -> Path:
    data: dict[str, Any] = {**world.config_data(), "state": {"backend": "file", "path": str(world.tmp / folder)}}
    path = world.tmp / f"{folder}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


async def test_plan_and_status_say_that_a_push_sink_without_receipt_may_hold_any_secret(world: World) -> None:
    world.target(sinks=PUSH_ONLY)
    await world.run(config=with_state(world, "state-a"))
    [held] = world.passwords()
    sink = f"dimescheduler:{world.emu.receiver_url}"
    fresh = _config_file(world, "state-b")

    code, table = await _cli(fresh, "plan")
    json_code, text = await _cli(fresh, "plan", "--output", "json")
    status_code, status = await _cli(fresh, "status")

    assert (code, json_code, status_code) == (0, 0, 0)
    [target] = json.loads(text)["targets"]
    assert [(a["kind"], a["reason"]) for a in target["actions"]] == [("create", "no_receipt")]
    [note] = target["notes"]
    assert note.startswith(f"no receipt: {sink} may hold any of these: {held.key_id}")
    assert f"note: no receipt: {sink} may hold any of these" in table
    assert f"no receipt: {sink} may hold any of these" in status
    assert [p.key_id for p in world.passwords()] == [held.key_id], "plan and status change nothing"
