"""Sink types are plugins: the config, its schema, the wording of problems, the reference checks and the
wiring of a pass all follow the registry, so a new sink type is one module (tests/integration/file_sink.py
is one, written as a module of service/sinks/ would be)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from service.config.document import json_schema
from service.config.loading import parse_config
from service.config.problems import ConfigProblems
from service.reconcile import Outcome
from service.sinks.registry import register, sink_types, unregister
from tests.conftest import assert_no_secrets
from tests.integration.conftest import World

ROOT = Path(__file__).resolve().parents[2]
FILE_SINK_MODULE = Path(__file__).with_name("file_sink.py")
TARGET = {
    "name": "t",
    "tenant_id": "00000000-0000-0000-0000-000000000000",
    "client_id": "11111111-1111-1111-1111-111111111111",
}


@pytest.fixture
def file_sink() -> Iterator[ModuleType]:
    """The `file` sink type, registered for one test only: the rest of the suite sees the shipped types."""
    import tests.integration.file_sink as module  # imported here: importing it registers the type

    register(module.FileSinkSettings)
    try:
        yield module
    finally:
        unregister("file")


def file_target(world: World, path: Path, *sinks: dict[str, Any]) -> None:
    world.targets.append(
        {
            "name": "file-consumer",
            "tenant_id": world.tenant,
            "client_id": world.app_id,
            "sinks": [{"type": "file", "path": str(path)}, *sinks],
        }
    )


async def test_a_sink_type_registered_from_outside_the_package_rotates_in_a_real_pass(
    world: World, file_sink: ModuleType
) -> None:
    path = world.tmp / "client-secret.json"
    file_target(world, path)

    first = await world.run()
    second = await world.run()

    assert [r.outcome for r in first] == [Outcome.CHANGED]
    assert [r.outcome for r in second] == [Outcome.HEALTHY], "the sink reads back what it holds"
    [password] = world.passwords()
    [version] = json.loads(path.read_text())
    assert version["key_id"] == password.key_id
    assert world.emu.receiver.signs_in(world.tenant, world.app_id, version["value"])
    assert world.logs.named("sink.updated", sink=f"file:{path}", key_id=password.key_id)


async def test_a_registered_sink_type_is_a_source_to_resync_a_push_sink_from(
    world: World, file_sink: ModuleType
) -> None:
    path = world.tmp / "client-secret.json"
    push = {
        "type": "dimescheduler",
        "url": world.emu.receiver_url,
        "api_key": {"file": str(world.tmp / "dimescheduler-api-key")},
    }
    file_target(world, path, push)
    await world.run()
    world.emu.receiver.clear()
    (world.tmp / "state").rename(world.tmp / "state-lost")  # the push sink's receipts are gone

    await world.run()

    [password] = world.passwords()
    assert [d.idempotency_key for d in world.emu.receiver.deliveries] == [password.key_id]
    assert world.emu.receiver.current_key_authenticates()


def test_the_config_takes_a_registered_type_and_refuses_it_once_it_is_gone(file_sink: ModuleType) -> None:
    text = yaml.safe_dump({"targets": [{**TARGET, "sinks": [{"type": "file", "path": "/run/secret.json"}]}]})
    broken = yaml.safe_dump({"targets": [{**TARGET, "sinks": [{"type": "file"}]}]})

    [target] = parse_config(text, environ={}).targets
    with pytest.raises(ConfigProblems) as missing:
        parse_config(broken, environ={})
    registered_schema = json_schema()
    unregister("file")
    with pytest.raises(ConfigProblems) as unknown:
        parse_config(text, environ={})

    assert target.sinks[0].sink_id() == "file:/run/secret.json"
    assert missing.value.problems == ["targets[0].sinks[0].path: required: add it"], "no branch name in the path"
    assert "file" in registered_schema["$defs"]["Target"]["properties"]["sinks"]["items"]["discriminator"]["mapping"]
    assert "does not match any of the expected tags: 'keyvault', 'dimescheduler', 'webhook'" in str(unknown.value)
    assert json_schema() == json.loads((ROOT / "config" / "schema.json").read_text()), "the shipped schema again"


def test_every_module_of_the_sinks_package_registers_its_type_unasked() -> None:
    probe = "from service.sinks.registry import sink_types; print(*[t.type_name() for t in sink_types()])"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["keyvault", "dimescheduler", "webhook"]
    assert [t.type_name() for t in sink_types()] == ["keyvault", "dimescheduler", "webhook"]


# The worktree's editable install would find the original service/; the copy is run from sys.path instead.
RUN_THE_COPY = (
    "import sys, runpy; sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in f.__module__]; "
    "sys.argv[0] = 'secret-rotator'; runpy.run_module('service', run_name='__main__', alter_sys=True)"
)


def test_a_new_module_in_the_sinks_package_is_all_a_new_sink_type_takes(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "service", tmp_path / "service", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(FILE_SINK_MODULE, tmp_path / "service" / "sinks" / "file.py")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"targets": [{**TARGET, "sinks": [{"type": "file", "path": "/run/s.json"}]}]}))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SECRET_ROTATOR_CONFIG")}

    def secret_rotator(*argv: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-c", RUN_THE_COPY, *argv],
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert_no_secrets(done.stdout + done.stderr, "the copy's output")
        return done

    checked = secret_rotator("config", "check", str(config))
    schema = secret_rotator("config", "schema")

    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == f"{config}: OK, 1 target(s): t"
    assert schema.returncode == 0, schema.stderr
    sinks = json.loads(schema.stdout)["$defs"]["Target"]["properties"]["sinks"]["items"]
    assert [branch["$ref"] for branch in sinks["oneOf"]] == [
        "#/$defs/KeyVaultSink",
        "#/$defs/DimeSchedulerSink",
        "#/$defs/WebhookSink",
        "#/$defs/FileSinkSettings",
    ]
