"""A healthy `run` reads through the pass's aiohttp session alone: Graph's SDK (msgraph-sdk, kiota, httpx),
which only the writes need, is never imported. The program runs in a subprocess, which lists its modules.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.emulator import Emulator
from tests.integration.conftest import World
from tests.integration.test_cli import ROOT, subprocess_cli
from tests.unit.test_startup_imports import PROBE, among
from tests.world import emulator_in_thread

# The write side: Graph's SDK and its HTTP stack (kiota's, on httpx).
WRITE_SIDE = (
    "msgraph",
    "msgraph_core",
    "kiota_abstractions",
    "kiota_http",
    "kiota_authentication_azure",
    "kiota_serialization_json",
    "httpx",
    "httpcore",
)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """The emulator in a daemon thread, so that this test's subprocesses can reach it while the test waits."""
    yield from emulator_in_thread()


def test_a_healthy_run_never_imports_graphs_sdk(world: World, tmp_path: Path) -> None:
    config = str(world.config_file())
    assert subprocess_cli("run", "--config", config).returncode == 0  # the first run writes
    listing = tmp_path / "modules.json"

    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(listing), "run", "--config", config],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    result = json.loads(listing.read_text())
    assert (result["code"] or 0) == 0, done.stderr
    assert [json.loads(line)["event"] for line in done.stdout.splitlines()].count("target.healthy") == 1
    assert among(result["modules"], WRITE_SIDE) == []
