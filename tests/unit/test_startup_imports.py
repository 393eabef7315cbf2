"""`--help`, `config schema` and `config check` load only what they use: no Azure SDK, no HTTP client, no
scheduler, no metrics library and no emulator (each costs start-up time; tests/bench/startup.py measures it).

Each runs as the program does, in a subprocess, which then lists the modules it imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Runs `secret-rotator ARGV` (as `python -m service` does), then writes the names in sys.modules to a file.
PROBE = """\
import json, runpy, sys
out, sys.argv = sys.argv[1], ["secret-rotator", *sys.argv[2:]]
try:
    runpy.run_module("service", run_name="__main__", alter_sys=True)
except SystemExit as exit_:
    code = exit_.code
with open(out, "w") as handle:
    json.dump({"code": code, "modules": sorted(sys.modules)}, handle)
"""
# Packages no start-up of these commands may import: the SDKs and their HTTP stacks, the daemon's scheduler
# and metrics, the emulator, and the service's own modules of the other commands.
NEVER = (
    "azure",
    "msgraph",
    "msgraph_core",
    "kiota_abstractions",
    "kiota_http",
    "kiota_authentication_azure",
    "kiota_serialization_json",
    "kiota_serialization_text",
    "msal",
    "msal_extensions",
    "aiohttp",
    "httpx",
    "httpcore",
    "apscheduler",
    "prometheus_client",
    "structlog",
    "service.emulator",
    "service.adapters",
    "service.wiring",
    "service.runner",
    "service.reconcile",
    "service.daemon",
    "service.demo",
    "service.bootstrap",
    "service.bootstrap_cli",
)
# `--help` reads no config either.
NOT_FOR_HELP = ("pydantic", "pydantic_core", "yaml")
CONFIG = """\
schedule: '0 3 * * 0'
targets:
  - name: dime-exchange
    tenant_id: 00000000-0000-0000-0000-000000000000
    client_id: 11111111-1111-1111-1111-111111111111
    sinks:
      - {type: keyvault, vault_url: 'https://my-vault.vault.azure.net', secret_name: dime-exchange-client-secret}
      - {type: dimescheduler, url: 'https://example.invalid/settings', api_key: {env: DIME_API_KEY}}
      - {type: webhook, url: 'https://example.invalid/hook', secret_headers: {X-Key: {env: DIME_API_KEY}}}
"""


def imported_by(tmp_path: Path, *argv: str, exit_code: int = 0) -> list[str]:
    """The modules `secret-rotator ARGV` imported, once it ended with ``exit_code``."""
    listing = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_ROTATOR_CONFIG", "PYTHONPATH")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(listing), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**env, "DIME_API_KEY": "startup-test-key"},
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(listing.read_text())
    assert (result["code"] or 0) == exit_code, done.stderr
    modules: list[str] = result["modules"]
    return modules


def among(modules: list[str], packages: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == p or m.startswith(f"{p}.") for p in packages)]


@pytest.mark.parametrize(
    ("argv", "absent"),
    [
        pytest.param(("--help",), NEVER + NOT_FOR_HELP, id="--help"),
        pytest.param(("config", "schema"), NEVER, id="config schema"),
        pytest.param(("config", "check", "{config}"), NEVER, id="config check FILE"),
        pytest.param(("--config", "{config}", "config", "check"), NEVER, id="--config FILE config check"),
    ],
)
def test_a_command_that_needs_no_network_imports_no_sdk(
    tmp_path: Path, argv: tuple[str, ...], absent: tuple[str, ...]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)

    modules = imported_by(tmp_path, *(a.replace("{config}", str(config)) for a in argv))

    assert "service.cli" in modules, "the probe ran the program"
    assert among(modules, absent) == []


def test_the_probe_sees_what_a_pass_imports(tmp_path: Path) -> None:
    """Guards the test above: `run` with a bad config imports the pass's modules before it fails, and the probe
    lists them."""
    modules = imported_by(tmp_path, "run", "--config", str(tmp_path / "missing.yaml"), exit_code=2)

    assert among(modules, ("azure", "msgraph", "aiohttp", "structlog")) != []
