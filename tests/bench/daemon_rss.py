"""Idle memory of `secret-rotator daemon`: run it against the emulator, wait for its first pass, sample VmRSS.

    .venv/bin/python tests/bench/daemon_rss.py [--seconds 5]

The emulator serves from a thread of this process (seeded as `secret-rotator emulator` seeds it); the
daemon is a real subprocess, so its resident set holds the SDKs, the scheduler and the HTTP server,
and nothing of the emulator.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from service.emulator import Emulator
from service.emulator.standalone import seed


def status_kib(pid: int, field: str = "VmRSS") -> int:
    """A memory line of /proc/<pid>/status (VmRSS now, VmHWM the peak so far), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} line")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to sample once idle")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="daemon-rss-") as tmp:
        state = Path(tmp)
        emu = Emulator(state_dir=state / "emulator")
        emu.start_in_thread()
        seed(emu, state)
        daemon = subprocess.Popen(
            [sys.executable, "-m", "service", "daemon", "--config", str(state / "config.yaml"),
             "--listen", "127.0.0.1:0", "--log-format", "json"],
            stdout=subprocess.PIPE, text=True,
        )
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
            print(f"first pass finished {time.monotonic() - began:.1f}s after start "
                  f"({events['run.finished'].get('changed')} changed, {events['run.finished'].get('failed')} failed)")
            time.sleep(1.0)  # let the pass's clients close
            samples = []
            deadline = time.monotonic() + args.seconds
            while time.monotonic() < deadline:
                samples.append(status_kib(daemon.pid))
                time.sleep(0.5)
            listen = str(events["daemon.started"]["listen"])
            with urllib.request.urlopen(f"http://{listen}/metrics", timeout=10) as response:
                metrics = response.read().decode()
            reported = next((float(line.split()[1]) for line in metrics.splitlines()
                             if line.startswith("process_resident_memory_bytes ")), None)
            print(f"idle VmRSS over {args.seconds:g}s: min {min(samples) / 1024:.1f} MiB, "
                  f"max {max(samples) / 1024:.1f} MiB, last {samples[-1] / 1024:.1f} MiB ({len(samples)} samples)")
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
