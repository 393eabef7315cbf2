"""The rotator's own sign-in failing reads as two lines: which sign-in was tried and why each failed, then
the fix. Real azure-identity, in a `secret-rotator` process whose environment has no credential at all (no
AZURE_* variables, an empty home, no az), against the emulator; the managed identity endpoint it probes is
a closed port on loopback, so nothing leaves the machine."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.emulator import Emulator
from tests.conftest import assert_no_secrets
from tests.world import World, emulator_in_thread

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """The emulator in a thread: the test waits on a subprocess."""
    yield from emulator_in_thread()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again once the block ends


def no_credentials_anywhere(home: Path) -> dict[str, str]:
    """An environment where no sign-in DefaultAzureCredential knows is set up."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_", "SECRET_ROTATOR"))}
    home.mkdir(exist_ok=True)
    return {
        **env,
        "HOME": str(home),
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
        "AZURE_POD_IDENTITY_AUTHORITY_HOST": f"http://127.0.0.1:{closed_port()}",
    }


def plan(world: World, credential: dict[str, Any]) -> dict[str, Any]:
    """`secret-rotator plan --output json` with the rotator's credential replaced; the target's error."""
    data = world.config_data()
    data["credential"] = credential
    path = world.tmp / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    completed = subprocess.run(
        [sys.executable, "-m", "service", "plan", "--config", str(path), "--output", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=no_credentials_anywhere(world.tmp / "home"),
        check=False,
    )
    assert_no_secrets(completed.stdout + completed.stderr, "plan's output")
    assert completed.returncode == 1, completed.stderr
    [target] = json.loads(completed.stdout)["targets"]
    return dict(target["error"])


def test_default_azure_credential_with_nothing_set_up_names_each_sign_in_and_why_in_one_line(world: World) -> None:
    error = plan(world, {"type": "default"})

    message = error["message"]
    assert "\n" not in message
    assert (
        "DefaultAzureCredential tried environment variables (not set), workload identity (not set up), "
        "managed identity (no endpoint answered)" in message
    )
    assert "Azure CLI (not installed)" in message
    assert "aka.ms" not in message
    assert "troubleshoot" not in message
    assert error["hint"].startswith("set credential.type to the sign-in this host has: workload_identity")


def test_a_wrong_client_secret_of_the_rotator_says_so_and_where_it_is(world: World) -> None:
    (world.tmp / "wrong-secret").write_text("not-the-rotators-secret")
    error = plan(
        world,
        {
            "type": "client_secret",
            "tenant_id": world.tenant,
            "client_id": world.rotator_client_id,
            "client_secret": {"file": str(world.tmp / "wrong-secret")},
        },
    )

    assert error["message"].endswith(
        "the client secret sign-in failed: refused: AADSTS7000215: Invalid client secret provided."
    )
    assert "Trace ID" not in error["message"]
    assert error["hint"] == (
        "the rotator's own client secret is wrong: put its current value where credential.client_secret points"
    )


def test_workload_identity_without_its_token_file_says_which_file_and_how_a_pod_gets_one(world: World) -> None:
    missing = world.tmp / "no-such-token"
    error = plan(
        world,
        {
            "type": "workload_identity",
            "client_id": world.rotator_client_id,
            "tenant_id": world.tenant,
            "token_file": str(missing),
        },
    )

    assert error["reason"] == "permission_denied"
    assert error["message"].endswith(
        f"the workload identity sign-in failed: its token file {missing} cannot be read (No such file or directory)"
    )
    assert "azure.workload.identity/use=true" in error["hint"]
