"""Config validation benchmark: how long `parse_config` takes on large and hostile configs.

    .venv/bin/python tests/bench/config_load.py [--count 20000]

Cases (each built as YAML text, then parsed and validated as `config check` would):
  - one target with COUNT sinks that are one YAML alias repeated (the duplicate-sink check's worst case);
  - one target with COUNT distinct sinks;
  - COUNT/2 targets with distinct names (a fleet);
  - COUNT/2 targets that all have the same name (the duplicate-name check's worst case).
Prints the seconds for each (best of --repeat) and the YAML's size.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from service.config.loading import parse_config  # noqa: E402 - after the path set-up above
from service.errors import ConfigError  # noqa: E402

TENANT = "00000000-0000-0000-0000-000000000001"
CLIENT = "00000000-0000-0000-0000-000000000002"
HEAD = "credential: {type: default}\n"


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


def measure(text: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        with contextlib.suppress(ConfigError):  # the duplicate cases are refused, which is what is timed
            parse_config(text, "bench.yaml", environ={})
        best = min(best, time.perf_counter() - began)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cases: dict[str, Callable[[], str]] = {
        f"one target, {args.count} aliased (identical) sinks": lambda: aliased_sinks(args.count),
        f"one target, {args.count} distinct sinks": lambda: distinct_sinks(args.count),
        f"{args.count // 2} targets, distinct names": lambda: targets(args.count // 2, same_name=False),
        f"{args.count // 2} targets, all the same name": lambda: targets(args.count // 2, same_name=True),
    }
    for name, build in cases.items():
        text = build()
        print(f"{name:45s} {len(text) / 1e6:6.2f} MB  {measure(text, args.repeat):7.3f} s")


if __name__ == "__main__":
    main()
