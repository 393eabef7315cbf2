"""Notifications to people against the emulator's Teams and Slack webhooks: a rotation and a failure are
told once each per target and pass, in each service's own JSON, with no secret bytes (the suite's canary
reads every message); a webhook that fails or redirects is logged and never fails the pass, and a redirect
is never followed (the message would go wherever it points, and the URL is a secret)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import yaml

from service.config.loading import parse_config
from service.emulator.hooks import HookMessage
from service.reconcile import Outcome
from service.secret import Secret
from tests.conftest import assert_no_secrets
from tests.integration.conftest import World, days
from tests.integration.kit import Kit

GRAPH = r"^/v1\.0/"


def with_hooks(world: World, *kinds: str, events: list[str] | None = None) -> Any:
    """The world's config with a `notify:` entry per kind, each URL a file reference (a mounted Secret)."""
    data = world.config_data()
    data["notify"] = []
    for kind in kinds:
        path = world.tmp / f"{kind}-webhook-url"
        path.write_text(world.emu.hook_url(kind))
        path.chmod(0o600)
        data["notify"].append({"type": kind, "url": {"file": str(path)}, **({"events": events} if events else {})})
    return parse_config(yaml.safe_dump(data), "world.yaml", environ={})


def checked(messages: list[HookMessage]) -> list[HookMessage]:
    """``messages``, each read by the canary: no secret or token the emulator issued, in any encoding."""
    for message in messages:
        assert_no_secrets(json.dumps(message.body), f"a {message.kind} message")
    return messages


async def test_a_rotation_then_a_failure_are_told_once_each_in_teams_and_slack_form(world: World) -> None:
    config = with_hooks(world, "teams", "slack")

    [rotated] = await world.run(config=config)

    assert rotated.outcome is Outcome.CHANGED
    [teams] = checked(world.emu.hooks.of("teams"))
    [slack] = checked(world.emu.hooks.of("slack"))
    [attachment] = teams.body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["content"]["type"] == "AdaptiveCard"
    assert set(slack.body) == {"text"}
    for message in (teams, slack):
        text = message.text()
        assert "dime-exchange has a new client secret in every sink" in text
        assert "no_credential_in_use" in text
        assert world.emu.receiver.deliveries[-1].reveal() not in text
    assert len(world.logs.named("notify.sent", target="dime-exchange")) == 2

    world.emu.faults.add(GRAPH, status=403)
    [failed] = await world.run(config=config)

    assert failed.outcome is Outcome.FAILED
    assert len(world.emu.hooks.of("teams")) == len(world.emu.hooks.of("slack")) == 2, "one message per kind"
    for message in checked([world.emu.hooks.of("teams")[-1], world.emu.hooks.of("slack")[-1]]):
        text = message.text()
        assert "rotation failed for dime-exchange" in text
        assert "permission_denied" in text
        assert failed.error is not None
        assert failed.error.hint is not None
        assert failed.error.hint[:40].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in text


async def test_a_webhook_asks_for_some_kinds_only(world: World) -> None:
    config = with_hooks(world, "slack", events=["failed"])

    [result] = await world.run(config=config)

    assert result.outcome is Outcome.CHANGED
    assert world.emu.hooks.of("slack") == []


async def test_a_failing_or_redirecting_webhook_is_logged_and_never_fails_the_pass(world: World) -> None:
    config = with_hooks(world, "teams", "slack")
    world.emu.faults.add(r"^/hooks/teams/", status=500)
    # The Slack webhook redirects to the Teams one: followed, the message would arrive there.
    world.emu.faults.add(r"^/hooks/slack/", status=307, headers={"Location": world.emu.hook_url("teams")}, count=1)

    [result] = await world.run(config=config)

    assert result.outcome is Outcome.CHANGED
    assert world.emu.hooks.messages == [], "nothing arrived: the redirect was not followed"
    failures = {e["channel"]: e for e in world.logs.named("notify.failed", target="dime-exchange")}
    assert failures["teams"]["status"] == 500
    assert failures["slack"]["status"] == 307
    assert "redirects" in failures["slack"]["hint"]
    assert failures["slack"]["host"] == world.emu.url  # the host alone: the URL is a secret
    assert world.emu.hooks.token not in world.logs.text
    [finished] = world.logs.named("run.finished")
    assert finished["changed"] == 1
    assert finished["failed"] == 0


async def test_an_unreachable_webhook_is_logged_and_never_fails_the_pass(world: World) -> None:
    config = with_hooks(world, "slack")
    (world.tmp / "slack-webhook-url").write_text("https://127.0.0.1:9/hooks/slack/gone")

    [result] = await world.run(config=config)

    assert result.outcome is Outcome.CHANGED
    [failure] = world.logs.named("notify.failed", target="dime-exchange")
    assert failure["error"].startswith("no answer: ")


async def test_a_lagging_consumer_and_a_report_without_evidence_are_told_with_retire_on_usage(
    world: World, kit: Kit
) -> None:
    world.defaults = {"retire_on": "usage"}
    world.emu.receiver.verify_signin = False  # only the test's sign-ins count as the consumer's
    world.emu.grant_app_role(world.tenant, world.rotator_object_id, "AuditLog.Read.All")
    await world.run()
    [old] = world.passwords()
    old_secret = world.emu.receiver.deliveries[-1].reveal()
    world.clock.advance(days(61))
    await world.run()
    world.clock.advance(timedelta(hours=25))
    await kit.verifier().try_token(world.tenant, world.app_id, Secret(old_secret))  # the consumer never switched

    await world.run(config=with_hooks(world, "slack"))

    [lagging] = checked(world.emu.hooks.of("slack"))
    assert f"Kept {old.key_id}" in lagging.text()
    assert "consumer still uses an old secret" in lagging.text()

    world.emu.sign_ins.available = False  # as in a national cloud: no report at all
    await world.run(config=with_hooks(world, "slack"))

    unavailable = checked(world.emu.hooks.of("slack"))[-1]
    assert "no sign-in evidence for dime-exchange" in unavailable.text()
    assert "not_in_this_cloud" in unavailable.text()
