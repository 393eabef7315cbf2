"""Config validation benchmark: how long `parse_config` and `config check` take on large and hostile configs.

    .venv/bin/python tests/bench/config_load.py [--count 20000] [--root CHECKOUT --python PYTHON]

Cases (each written as a YAML file, then parsed and validated as `config check` would):
  - a fleet: COUNT/2 targets in 100 tenants, each with a Key Vault sink and a Dime.Scheduler push whose
    API key is one file, a tenth with a policy of their own (what tests/bench/fleet.py runs);
  - one target with COUNT sinks that are one YAML alias repeated (the duplicate-sink check's worst case);
  - one target with COUNT distinct sinks;
  - COUNT/2 targets with distinct names;
  - COUNT/2 targets that all have the same name (the duplicate-name check's worst case).
Prints for each: the YAML's size, `parse_config` in the checkout's interpreter (best of --repeat, wall and
CPU), and for the fleet the wall time of a whole `secret-rotator config check FILE` (median of --repeat,
process start included). --root/--python measure another checkout (before a change) with its own venv;
its bytecode goes to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TENANT = "00000000-0000-0000-0000-000000000001"
CLIENT = "00000000-0000-0000-0000-000000000002"
HEAD = "credential: {type: default}\n"
# Runs in the measured checkout: its parse_config, wherever that checkout keeps it.
PROBE = """\
import gc, json, sys, time
try:
    from service.config.loading import parse_config
except ImportError:
    from service.config import parse_config
text, repeat = open(sys.argv[1], encoding="utf-8").read(), int(sys.argv[2])
walls, cpus = [], []
for _ in range(repeat):
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        parse_config(text, "bench.yaml")
    except Exception:  # the duplicate cases are refused, which is what is timed
        pass
    walls.append(time.perf_counter() - wall)
    cpus.append(time.process_time() - cpu)
print(json.dumps({"wall": min(walls), "cpu": min(cpus)}))
"""


def fleet(count: int, folder: Path) -> str:
    key = folder / "api-key"
    key.write_text("bench-api-key")
    tenants = [str(uuid.UUID(int=i + 1)) for i in range(100)]
    lines = [HEAD, "targets:"]
    for i in range(count):
        override = ", lifetime: 30d" if i % 10 == 0 else ""
        lines.append(
            f"  - {{name: app-{i:05d}, tenant_id: {tenants[i % 100]}, client_id: {uuid.UUID(int=10**6 + i)}{override},"
            f" sinks: [{{type: keyvault, vault_url: 'https://v.vault.azure.net', secret_name: app-{i:05d}}},"
            f" {{type: dimescheduler, url: 'https://dime.example.com/settings', api_key: {{file: {key}}}}}]}}"
        )
    return "\n".join(lines) + "\n"


def aliased_sinks(count: int) -> str:
    sink = "{type: keyvault, vault_url: 'https://v.vault.azure.net', secret_name: s}"
    sinks = "\n".join(["      - &s " + sink] + ["      - *s"] * (count - 1))
    return f"{HEAD}targets:\n  - name: t\n    tenant_id: {TENANT}\n    client_id: {CLIENT}\n    sinks:\n{sinks}\n"


def distinct_sinks(count: int) -> str:
    sinks = "\n".join(
        f"      - {{type: keyvault, vault_url: 'https://v.vault.azure.net', secret_name: s{i}}}" for i in range(count)
    )
    return f"{HEAD}targets:\n  - name: t\n    tenant_id: {TENANT}\n    client_id: {CLIENT}\n    sinks:\n{sinks}\n"


def targets(count: int, *, same_name: bool) -> str:
    entries = "\n".join(
        f"  - {{name: {'t' if same_name else f't{i}'}, tenant_id: {TENANT}, client_id: {CLIENT}, "
        f"sinks: [{{type: keyvault, vault_url: 'https://v.vault.azure.net', secret_name: s{i}}}]}}"
        for i in range(count)
    )
    return f"{HEAD}targets:\n{entries}\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to run (default: this one)")
    parser.add_argument("--python", default=sys.executable, help="its interpreter (default: this one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="config-bench-") as tmp:
        folder = Path(tmp)
        env = {k: v for k, v in os.environ.items() if k not in ("SECRET_ROTATOR_CONFIG", "PYTHONPATH")}
        env["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
        cases: dict[str, Callable[[], str]] = {
            f"fleet: {args.count // 2} targets, 100 tenants, 2 sinks": lambda: fleet(args.count // 2, folder),
            f"one target, {args.count} aliased (identical) sinks": lambda: aliased_sinks(args.count),
            f"one target, {args.count} distinct sinks": lambda: distinct_sinks(args.count),
            f"{args.count // 2} targets, distinct names": lambda: targets(args.count // 2, same_name=False),
            f"{args.count // 2} targets, all the same name": lambda: targets(args.count // 2, same_name=True),
        }
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        print(f"{args.root} ({args.python}); load average {load}")
        print(f"{'case':<45}{'MB':>6}{'parse wall':>12}{'parse cpu':>11}{'config check':>14}")
        for index, (name, build) in enumerate(cases.items()):
            path = folder / f"case-{index}.yaml"
            path.write_text(build(), encoding="utf-8")
            done = subprocess.run(
                [args.python, "-c", PROBE, str(path), str(args.repeat)],
                cwd=args.root,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            parsed = json.loads(done.stdout)
            check = ""
            if index == 0:
                walls = []
                for _ in range(args.repeat):
                    began = time.perf_counter()
                    subprocess.run(
                        [args.python, "-m", "service", "config", "check", str(path)],
                        cwd=args.root,
                        env=env,
                        capture_output=True,
                        check=True,
                    )
                    walls.append(time.perf_counter() - began)
                check = f"{statistics.median(walls):.3f} s"
            print(
                f"{name:<45}{path.stat().st_size / 1e6:>6.2f}{parsed['wall']:>10.3f} s{parsed['cpu']:>9.3f} s"
                f"{check:>14}",
                flush=True,
            )


if __name__ == "__main__":
    main()
