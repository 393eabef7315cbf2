"""The `secret-rotator emulator` command: serve the emulator on loopback with a ready-made setup.

It seeds one tenant as an operator would find it (the Dime.Scheduler app with a hand-made secret that
expires in ten days, with which it has signed in, and a rotator identity that owns it with
Application.ReadWrite.OwnedBy and may read the sign-in activity report, for ``retire_on: usage``), writes the
rotator's secret and the receiver's API key to 0600 files, writes a config file for the service that
points at all of it, prints where everything is (never a secret value), and serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import os
import shutil
import signal
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from service.emulator.server import LOOPBACK_HOSTS, Emulator

DIME_REDIRECT_URI = "https://app.dimescheduler.com/signin-microsoft"
# The Graph permissions Dime.Scheduler's Exchange connector is granted (DESIGN.md, Bootstrap).
DIME_GRAPH_ROLES = ("Calendars.ReadWrite", "MailboxSettings.ReadWrite", "User.Read.All")
# The rotator's own: manage the secrets of the apps it owns, and read Entra's sign-in activity report, the
# evidence ``retire_on: usage`` waits for (without it that setting falls back to the grace period).
ROTATOR_GRAPH_ROLES = ("Application.ReadWrite.OwnedBy", "AuditLog.Read.All")
SECRET_NAME = "dime-exchange-client-secret"
DEFAULT_PORT = 8443


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="secret-rotator emulator",
        description="Serve emulated Entra ID, Graph, Key Vault and a Dime.Scheduler endpoint on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"port (default {DEFAULT_PORT}, or a free one when that is taken; 0 picks a free one)",
    )
    parser.add_argument("--state-dir", type=Path, default=None, help="where ca.pem, secrets and config go")
    parser.add_argument(
        "--replication-delay", type=float, default=0.0, metavar="SECONDS", help="delay before new secrets work"
    )
    parser.add_argument("--no-seed", action="store_true", help="start empty: no tenant, no apps, no config")
    return parser


def _write_private(path: Path, text: str) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")


def to_yaml(value: Any, indent: int = 0) -> str:
    """A small YAML writer (the emulator may not depend on PyYAML); scalars are JSON, which YAML reads."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{key}:")
                lines.append(to_yaml(item, indent + 2))
            else:
                lines.append(f"{pad}{key}: {json.dumps(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                nested = to_yaml(item, indent + 2).splitlines()
                lines.append(f"{pad}- {nested[0].lstrip()}")
                lines.extend(nested[1:])
            else:
                lines.append(f"{pad}- {json.dumps(item)}")
    else:
        lines.append(f"{pad}{json.dumps(value)}")
    return "\n".join(lines)


def seed(emu: Emulator, state_dir: Path) -> dict[str, Any]:
    """Seed the demo tenant and write the files; returns the config written to `config.yaml`."""
    tenant_id = emu.add_tenant()
    rotator = emu.add_rotator(tenant_id, roles=ROTATOR_GRAPH_ROLES)
    dime = emu.add_app(tenant_id, "Dime.Scheduler", owners=[rotator.object_id], redirect_uris=[DIME_REDIRECT_URI])
    dime_sp = emu.directory.sp_by_app_id(emu.directory.require_tenant(tenant_id), dime.app_id)
    assert dime_sp is not None, "add_app creates the service principal"
    for role in DIME_GRAPH_ROLES:
        emu.grant_app_role(tenant_id, dime_sp.object_id, role)
    now = emu.clock.now()
    _, hand_made = emu.add_password(
        tenant_id, dime.app_id, start=now - timedelta(days=355), end=now + timedelta(days=10)
    )
    # Dime.Scheduler uses it: Entra's sign-in report has a row for it, so retire_on: usage has data to go by.
    emu.receiver.sign_in(tenant_id, dime.app_id, hand_made)

    secret_file = state_dir / "rotator-client-secret"
    api_key_file = state_dir / "receiver-api-key"
    _write_private(secret_file, rotator.secret)
    _write_private(api_key_file, emu.receiver.api_key)
    config: dict[str, Any] = {
        "cloud": {"authority_host": emu.url, "graph_url": emu.graph_url, "ca_bundle": str(emu.ca_file)},
        "credential": {
            "type": "client_secret",
            "tenant_id": tenant_id,
            "client_id": rotator.client_id,
            "client_secret": {"file": str(secret_file)},
        },
        "state": {"backend": "file", "path": str(state_dir / "rotator-state")},
        "targets": [
            {
                "name": "dime-scheduler",
                "tenant_id": tenant_id,
                "client_id": dime.app_id,
                "sinks": [
                    {
                        "type": "keyvault",
                        "vault_url": emu.vault_url,
                        "secret_name": SECRET_NAME,
                        "verify_challenge_resource": False,
                    },
                    {"type": "dimescheduler", "url": emu.receiver_url, "api_key": {"file": str(api_key_file)}},
                ],
            }
        ],
    }
    (state_dir / "config.yaml").write_text(
        "# Written by `secret-rotator emulator`; valid while that emulator runs.\n" + to_yaml(config) + "\n",
        encoding="utf-8",
    )
    return config


def program() -> str:
    """How this process was started, to print command lines that run as printed: the console script as it was
    typed (``.venv/bin/secret-rotator``), else ``secret-rotator``, or ``<python> -m service``."""
    started = sys.argv[0] if sys.argv else ""
    if Path(started).name == "secret-rotator":
        return started
    if Path(started).name == "__main__.py" and Path(started).parent.name == "service":
        return f"{sys.executable} -m service"
    return "secret-rotator"


async def _start(emu: Emulator, host: str, port: int | None) -> None:
    """Serve on ``port``; without one, on the usual port, or on a free one when another process has it."""
    if port is not None:
        await emu.start(host, port)
        return
    try:
        await emu.start(host, DEFAULT_PORT)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        print(f"port {DEFAULT_PORT} is taken: serving on a free port instead (the config below points at it)")
        await emu.start(host, 0)


async def serve(args: argparse.Namespace, state_dir: Path) -> int:
    emu = Emulator(state_dir=state_dir)
    emu.replication_delay = timedelta(seconds=args.replication_delay)
    await _start(emu, args.host, args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        print(f"CA certificate: {emu.ca_file}")
        print(f"Entra authority host: {emu.url}")
        print(f"Graph: {emu.graph_url}")
        print(f"Key Vault: {emu.vault_url}")
        print(f"Dime.Scheduler endpoint: {emu.receiver_url}")
        print(f"Control API: {emu.url}/_emulator/health")
        if not args.no_seed:
            config = seed(emu, state_dir)
            print("cloud:")
            print(to_yaml(config["cloud"], 2))
            config_file = state_dir / "config.yaml"
            print(f"Config: {config_file}")
            command = f"{program()} --config {config_file}"
            print(f"Run:    {command} plan      # what a pass would do, changing nothing")
            print(f"        {command} run       # one pass: rotate, verify, store in Key Vault, push")
            print(f"        {command} status    # every secret of the app, and what becomes of it")
        print("emulator ready; Ctrl-C stops it", flush=True)
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await emu.stop()
    print("emulator stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.host not in LOOPBACK_HOSTS:
        print(f"error: --host must be a loopback address ({', '.join(sorted(LOOPBACK_HOSTS))})", file=sys.stderr)
        return 2
    if args.port is not None and not 0 <= args.port <= 65535:
        print("error: --port must be between 0 and 65535", file=sys.stderr)
        return 2
    temporary = args.state_dir is None
    state_dir = args.state_dir or Path(tempfile.mkdtemp(prefix="secret-rotator-emulator-"))
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        return asyncio.run(serve(args, state_dir))
    except OSError as exc:
        port = DEFAULT_PORT if args.port is None else args.port
        print(f"error: cannot serve on {args.host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    finally:
        if temporary:
            with contextlib.suppress(OSError):
                shutil.rmtree(state_dir)
