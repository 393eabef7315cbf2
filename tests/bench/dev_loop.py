"""What the developer's loop costs: wall time and peak RSS of each step of `./dev.sh test`.

    python tests/bench/dev_loop.py [--repo DIR] [--no-pytest]

Runs, in DIR (default: this checkout) with this interpreter's tools: ruff; mypy with an empty cache (a
fresh machine, as CI always is) and again with that cache (the next local run); pytest on everything but
the container tests, with the Hypothesis profile the environment gives (the quick one unless
HYPOTHESIS_PROFILE=ci). Prints one line per step and the load average around them: the figures are only
comparable with another run on the same machine under the same load, so run before and after back to back
(before: `--repo` a checkout of the older commit, with this same interpreter).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def measure(name: str, argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MB (the step's process tree, as wait4 reports it) and the exit code."""
    started = time.monotonic()
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - started
    megabytes = usage.ru_maxrss / 1024  # KiB on Linux
    print(f"{name:<28} {seconds:8.1f} s {megabytes:9.0f} MB   exit {process.returncode}", flush=True)
    return seconds, megabytes, process.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[2])
    parser.add_argument("--no-pytest", action="store_true", help="only ruff and mypy")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "SECRET_ROTATOR_CONFIG"}
    print(
        f"repo {args.repo}, load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}, "
        f"HYPOTHESIS_PROFILE={env.get('HYPOTHESIS_PROFILE', '(unset)')}",
        flush=True,
    )
    total = 0.0
    with tempfile.TemporaryDirectory(prefix="dev-loop-mypy-") as cache:
        steps = [
            ("ruff check", [str(BIN / "ruff"), "check", "service", "tests"]),
            ("mypy, empty cache", [sys.executable, "-m", "mypy", "--cache-dir", cache]),
            ("mypy, warm cache", [sys.executable, "-m", "mypy", "--cache-dir", cache]),
        ]
        if not args.no_pytest:
            steps.append(
                (
                    "pytest -m 'not container'",
                    [sys.executable, "-m", "pytest", "-m", "not container", "-q", "-p", "no:cacheprovider"],
                )
            )
        for name, argv in steps:
            seconds, _, _ = measure(name, argv, args.repo, env)
            if name != "mypy, warm cache":
                total += seconds
    print(
        f"{'a fresh ./dev.sh test':<28} {total:8.1f} s   (ruff + cold mypy + pytest), load average "
        f"{os.getloadavg()[0]:.2f}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
