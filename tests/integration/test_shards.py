"""`run --shard I/N` and `--shards N` (an Indexed Job's pods), with one state store per shard.

Each pod takes the tenants of its shard; with `state.shards: N` each shard keeps its receipts in a store
of its own, and every command (a pod's `run`, `plan` from anywhere, `run` without a shard) finds a
target's receipts in its tenant's store. Usage errors exit 2 before anything is contacted.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.shards import Shard, shard_of
from tests.conftest import assert_no_secrets
from tests.integration.conftest import World
from tests.integration.test_workers import fleet

SHARDS = 3


async def secret_rotator(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``python -m service ARGV``: exit code, stdout, stderr (checked for secrets)."""
    environ = {k: v for k, v in os.environ.items() if k not in ("SECRET_ROTATOR_CONFIG", "JOB_COMPLETION_INDEX")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert_no_secrets(out.decode() + err.decode(), "the command's output")
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def events(text: str, name: str) -> list[dict[str, Any]]:
    return [e for e in (json.loads(line) for line in text.splitlines() if line.strip()) if e["event"] == name]


def sharded_config(world: World) -> Path:
    data = world.config_data()
    data["state"]["shards"] = SHARDS
    path = world.tmp / "sharded.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


async def test_each_pod_takes_its_shard_and_every_command_finds_its_receipts(world: World) -> None:
    apps = fleet(world)
    config = sharded_config(world)
    state = world.tmp / "state"

    created: dict[str, int] = {}
    for index in range(SHARDS):
        code, out, err = await secret_rotator(
            "run", "--config", str(config), "--shards", str(SHARDS), env={"JOB_COMPLETION_INDEX": str(index)}
        )
        assert code == 0, err
        mine = [t.name for t in Shard(index, SHARDS).select(world.config().targets)]
        [started] = events(out, "run.started")
        assert (started["targets"], started["shard"]) == (len(mine), f"{index}/{SHARDS}")
        for event in events(out, "credential.created"):
            created[event["target"]] = index
        receipts = state / f"shard-{index}-of-{SHARDS}" / "receipts"
        assert sorted(p.stem for p in receipts.glob("*.json")) == sorted(mine), "each shard's receipts in its store"

    assert created == {name: shard_of(tenant, SHARDS) for name, (tenant, _) in apps.items()}

    # `plan` over every target, from no shard: each target's receipts are found in its shard's store.
    code, out, err = await secret_rotator("plan", "--config", str(config), "--output", "json")
    assert code == 0, err
    assert {t["target"]: t["status"] for t in json.loads(out)["targets"]} == dict.fromkeys(apps, "healthy")
    # And a run without a shard finds nothing to do.
    code, out, err = await secret_rotator("run", "--config", str(config), "--workers", "2")
    assert code == 0, err
    assert sorted(e["target"] for e in events(out, "target.healthy")) == sorted(apps)


USAGE_ERRORS = {
    "a shard that does not exist": (["--shard", "4/4"], {}, "shard 4 of 4 does not exist"),
    "a number of shards that is not state.shards": (["--shard", "0/2"], {}, "state.shards is 3"),
    "--shards outside an Indexed Job": (["--shards", "3"], {}, "JOB_COMPLETION_INDEX, which is not set"),
    "--shards with an index beyond N": (
        ["--shards", "3"],
        {"JOB_COMPLETION_INDEX": "3"},
        "completions must equal --shards",
    ),
    "--shard and --shards together": (["--shard", "0/3", "--shards", "3"], {}, "not allowed with"),
    "no workers": (["--workers", "0"], {}, "must be at least 1"),
    "workers that are not a number": (["--workers", "many"], {}, "is not a whole number"),
}


@pytest.mark.parametrize(("argv", "env", "says"), USAGE_ERRORS.values(), ids=USAGE_ERRORS.keys())
async def test_a_usage_error_exits_2_before_anything_is_contacted(
    world: World, argv: list[str], env: dict[str, str], says: str
) -> None:
    fleet(world)
    config = sharded_config(world)
    world.emu.reset_requests()

    code, out, err = await secret_rotator("run", "--config", str(config), *argv, env=env)

    assert code == 2
    assert says in err
    assert world.emu.requests == []
    assert out == ""


async def test_a_target_outside_the_shard_is_named_with_its_shard(world: World) -> None:
    apps = fleet(world)
    config = sharded_config(world)
    tenant, _ = apps["app-1-0"]
    home = shard_of(tenant, SHARDS)
    other = (home + 1) % SHARDS
    world.emu.reset_requests()

    code, _, err = await secret_rotator(
        "run", "--config", str(config), "--target", "app-1-0", "--shard", f"{other}/{SHARDS}"
    )

    assert code == 2
    assert (
        f"--target app-1-0: its tenant {tenant} is in shard {home}/{SHARDS}, not in this run's shard "
        f"{other}/{SHARDS}" in err
    )
    assert world.emu.requests == []
