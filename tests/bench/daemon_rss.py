"""Idle memory of `secret-rotator daemon`: run it against the emulator, wait for its first pass, sample VmRSS.

    .venv/bin/python tests/bench/daemon_rss.py [--seconds 5] [--workers N] [--root CHECKOUT --python PYTHON]

The emulator serves from a thread of this process (seeded as `secret-rotator emulator` seeds it); the
daemon is a real subprocess, so its resident set holds what its passes left (the SDKs, the scheduler, the
HTTP server), and nothing of the emulator. With --workers N (where the checkout has it) its passes run in
worker processes that end with the pass; the samples also count any process the daemon still has.
--root/--python: another checkout (before a change) and its interpreter, with a temporary bytecode cache.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from service.emulator import Emulator  # noqa: E402 - after the path set-up
from service.emulator.standalone import seed  # noqa: E402
from tests.bench.processes import descendants  # noqa: E402


def status_kib(pid: int, field: str = "VmRSS") -> int:
    """A memory line of /proc/<pid>/status (VmRSS now, VmHWM the peak so far), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} line")


def add_tenant(emu: Emulator, config: dict[str, Any]) -> None:
    """Another tenant where the seeded rotator (one multi-tenant app) is consented and owns an app, and its target."""
    home = config["credential"]["tenant_id"]
    rotator = config["credential"]["client_id"]
    secret = Path(config["credential"]["client_secret"]["file"]).read_text().strip()
    tenant = emu.add_tenant()
    emu.add_app(tenant, "secret-rotator", app_id=rotator, service_principal=False)
    principal = emu.add_service_principal(tenant, rotator)
    emu.grant_app_role(tenant, principal.object_id, "Application.ReadWrite.OwnedBy")
    emu.add_password(tenant, rotator, secret=secret, display_name="rotator")
    app = emu.add_app(tenant, "Dime.Scheduler", owners=[principal.object_id])
    first = config["targets"][0]
    index = len(config["targets"])
    sinks = [dict(sink) for sink in first["sinks"]]
    sinks[0]["secret_name"] = f"{sinks[0]['secret_name']}-{index}"
    config["targets"].append(
        {"name": f"{first['name']}-{index}", "tenant_id": tenant, "client_id": app.app_id, "sinks": sinks}
    )
    assert home != tenant


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to sample once idle")
    parser.add_argument("--workers", type=int, help="daemon --workers N (left out where the checkout lacks it)")
    parser.add_argument(
        "--tenants",
        type=int,
        default=1,
        help="targets in this many tenants (the first as `secret-rotator emulator` seeds it, each "
        "other with one app the rotator owns)",
    )
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to run (default: this one)")
    parser.add_argument("--python", default=sys.executable, help="its interpreter (default: this one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="daemon-rss-") as tmp:
        state = Path(tmp)
        emu = Emulator(state_dir=state / "emulator")
        emu.start_in_thread()
        config = seed(emu, state)
        for _ in range(args.tenants - 1):
            add_tenant(emu, config)
        (state / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k not in ("SECRET_ROTATOR_CONFIG", "PYTHONPATH")}
        env["PYTHONPYCACHEPREFIX"] = str(state / "pycache")
        argv = [
            args.python,
            "-m",
            "service",
            "daemon",
            "--config",
            str(state / "config.yaml"),
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ]
        help_text = subprocess.run(
            [args.python, "-m", "service", "daemon", "--help"],
            cwd=args.root,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if args.workers is not None and "--workers" in help_text:
            argv += ["--workers", str(args.workers)]
        print(f"{args.root}: {' '.join(argv[1:])}")
        daemon = subprocess.Popen(argv, cwd=args.root, env=env, stdout=subprocess.PIPE, text=True)
        events: dict[str, dict[str, object]] = {}
        first_pass = threading.Event()

        def read() -> None:  # keeps the pipe drained for as long as the daemon runs
            assert daemon.stdout is not None
            for line in daemon.stdout:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                events.setdefault(str(event.get("event")), event)
                if event.get("event") == "run.finished":
                    first_pass.set()

        threading.Thread(target=read, daemon=True).start()
        try:
            began = time.monotonic()
            if not first_pass.wait(120):
                print("the first pass did not finish within 120 s", file=sys.stderr)
                return 1
            print(
                f"first pass finished {time.monotonic() - began:.1f}s after start "
                f"({events['run.finished'].get('changed')} changed, {events['run.finished'].get('failed')} failed)"
            )
            time.sleep(1.0)  # let the pass's clients close
            samples, trees = [], []
            deadline = time.monotonic() + args.seconds
            while time.monotonic() < deadline:
                samples.append(status_kib(daemon.pid))
                trees.append(len(descendants(daemon.pid)))
                time.sleep(0.5)
            listen = str(events["daemon.started"]["listen"])
            with urllib.request.urlopen(f"http://{listen}/metrics", timeout=10) as response:
                metrics = response.read().decode()
            reported = next(
                (
                    float(line.split()[1])
                    for line in metrics.splitlines()
                    if line.startswith("process_resident_memory_bytes ")
                ),
                None,
            )
            print(
                f"idle VmRSS over {args.seconds:g}s: min {min(samples) / 1024:.1f} MiB, "
                f"max {max(samples) / 1024:.1f} MiB, last {samples[-1] / 1024:.1f} MiB ({len(samples)} samples; "
                f"processes: {max(trees)} at most)"
            )
            peak = status_kib(daemon.pid, "VmHWM")
            print(f"peak VmHWM (start-up and the first pass included): {peak / 1024:.1f} MiB")
            if reported is not None:
                print(f"process_resident_memory_bytes on /metrics: {reported / 2**20:.1f} MiB")
            return 0
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                code = daemon.wait(30)
                print(f"daemon exited {code} after SIGTERM")
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
                print("daemon did not stop within 30 s of SIGTERM: killed", file=sys.stderr)
            emu.stop_thread()


if __name__ == "__main__":
    raise SystemExit(main())
