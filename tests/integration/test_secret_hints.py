"""No part of a secret in routine output: Graph's hint (a secret's first three characters) is shown by
`status` alone, never by `plan` or in the log of a `run` (issue 11, item 10).

The app carries two seeded secrets with canary hints: an orphan this service retires from a Key-Vault-only
target (its `plan` action and its `credential.retired` event name it), and a hand-made secret that a push
sink added later, without a receipt, may hold (the `plan` note lists it). Both are named by key id, and
their hints appear in `status` only.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta

import pytest

from service.model import DEFAULT_MARKER, credential_name
from tests.integration.conftest import World

# The threaded emulator and the logging reset that running the CLI in-process needs, with the CLI itself.
from tests.integration.test_cli import _no_config_from_the_environment, _restore_logging, cli, emu  # noqa: F401

ORPHAN_HINT, HAND_HINT = "~Q~", "~W~"  # no key id, date, sink id or word of ours has a tilde


def seed(world: World, hint: str, name: str) -> str:
    start = datetime.now(UTC) - timedelta(hours=1)
    key_id, _ = world.emu.add_password(
        world.tenant,
        world.app_id,
        display_name=name,
        start=start,
        end=start + timedelta(days=90),
        secret=hint + secrets.token_urlsafe(30),
    )
    return key_id


def test_plan_and_run_name_credentials_by_key_id_and_only_status_shows_hints(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.target(sinks=("keyvault",))
    path = str(world.config_file())
    assert cli(capsys, "run", "--config", path)[0] == 0
    orphan = seed(world, ORPHAN_HINT, credential_name(DEFAULT_MARKER, datetime.now(UTC) - timedelta(hours=1)))
    hand = seed(world, HAND_HINT, "made by hand")

    _, plan_table, _ = cli(capsys, "plan", "--config", path)
    _, plan_json, _ = cli(capsys, "plan", "--config", path, "--output", "json")
    code, run_log, _ = cli(capsys, "run", "--config", path)
    world.targets.clear()
    world.target(sinks=("keyvault", "dimescheduler"))  # a push sink without a receipt: it may hold any secret
    world.config_file()
    _, noted_table, _ = cli(capsys, "plan", "--config", path)
    _, noted_json, _ = cli(capsys, "plan", "--config", path, "--output", "json")
    _, status_json, _ = cli(capsys, "status", "--config", path, "--output", "json")
    _, status_table, _ = cli(capsys, "status", "--config", path)

    # What each output is about was said, by key id.
    assert code == 0
    assert f"{orphan} was created 1h ago and no sink ever recorded it" in plan_table
    retired = [json.loads(line) for line in run_log.splitlines() if '"credential.retired"' in line]
    assert [(e["key_id"], e["reason"]) for e in retired] == [(orphan, "orphan")]
    assert orphan in retired[0]["detail"]
    assert hand in noted_table
    assert "no receipt" in json.dumps(json.loads(noted_json)["targets"][0]["notes"])
    for where, text in {
        "plan": plan_table,
        "plan --output json": plan_json,
        "run's log": run_log,
        "plan with a note": noted_table,
        "plan --output json with a note": noted_json,
    }.items():
        assert ORPHAN_HINT not in text, where
        assert HAND_HINT not in text, where
        assert "(hint " not in text, where
    # status shows the hint of every credential, hand-made ones included.
    [target] = json.loads(status_json)["targets"]
    hints = {c["key_id"]: c["hint"] for c in target["credentials"]}
    assert hints[hand] == HAND_HINT
    assert all(hints.values())
    assert HAND_HINT in status_table
