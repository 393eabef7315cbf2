"""The standalone command: starts, seeds, writes its files, prints no secret, stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from service.config.loading import load_config
from service.emulator import Emulator
from service.emulator.standalone import main, seed
from service.metrics import Metrics
from service.runner import plan_pass

REPO = Path(__file__).resolve().parents[2]


def test_a_non_loopback_host_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    # The address is only parsed and refused, never bound.
    assert main(["--host", "0.0.0.0", "--port", "0"]) == 2  # noqa: S104
    assert "loopback" in capsys.readouterr().err


async def test_the_seeded_rotator_may_read_the_sign_in_report_so_retire_on_usage_works_by_hand(
    tmp_path: Path,
) -> None:
    async with Emulator(state_dir=tmp_path / "emulator") as emu:
        config = seed(emu, tmp_path)
        config["defaults"] = {"retire_on": "usage"}
        path = tmp_path / "usage.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        [result] = await plan_pass(load_config(path), clock=emu.clock, metrics=Metrics())

    assert result.plan is not None, result.error
    usage = result.plan.usage
    assert usage is not None
    assert usage.gap is None, f"{usage.gap}: {usage.detail}"
    [hand_made] = emu.passwords(config["targets"][0]["tenant_id"], config["targets"][0]["client_id"])
    assert set(usage.last_sign_in) == {hand_made.key_id}, "Dime.Scheduler's sign-in with its hand-made secret"


@pytest.mark.slow
def test_standalone_serves_until_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service.emulator",
            "--port",
            "0",
            "--state-dir",
            str(state),
            "--replication-delay",
            "5",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 30
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("emulator ready"):
                break
        output = "".join(lines)
        if "emulator ready" not in output and process.poll() is not None and process.stderr is not None:
            output += process.stderr.read()
        assert "emulator ready" in output, output
        url = next(line.split(": ", 1)[1].strip() for line in lines if line.startswith("Entra authority host"))
        assert f"Config: {state / 'config.yaml'}" in output

        for name in ("rotator-client-secret", "receiver-api-key"):
            path = state / name
            assert path.stat().st_mode & 0o777 == 0o600
            assert path.read_text().strip() not in output
        config = yaml.safe_load((state / "config.yaml").read_text())
        assert config["cloud"] == {
            "authority_host": url,
            "graph_url": f"{url}/v1.0",
            "ca_bundle": str(state / "ca.pem"),
        }
        assert config["credential"]["client_secret"] == {"file": str(state / "rotator-client-secret")}
        sinks = config["targets"][0]["sinks"]
        assert sinks[0] == {
            "type": "keyvault",
            "vault_url": url,
            "secret_name": "dime-exchange-client-secret",
            "verify_challenge_resource": False,
        }
        assert sinks[1]["api_key"] == {"file": str(state / "receiver-api-key")}
        assert config["state"] == {"backend": "file", "path": str(state / "rotator-state")}

        context = ssl.create_default_context(cafile=str(state / "ca.pem"))
        with urllib.request.urlopen(f"{url}/_emulator/settings", context=context, timeout=10) as response:  # noqa: S310
            assert json.load(response)["replication_delay_seconds"] == 5
        for secret in Emulator.issued_secrets():
            assert secret not in output

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
