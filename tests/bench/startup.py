"""Start-up benchmark: wall time and peak RSS of `--help`, `config schema` and `config check FILE`.

    .venv/bin/python tests/bench/startup.py [--runs 9] [--root CHECKOUT --python PYTHON]

Each command runs as ``PYTHON -m service ...`` with CHECKOUT as the working directory (default: this
checkout and the interpreter running the script), once to warm the bytecode cache, then --runs times.
The bytecode cache is a temporary folder (PYTHONPYCACHEPREFIX), so a checkout measured is left as it was
and every checkout is measured alike.
Prints per command the median, lowest and highest wall time and the median peak RSS of the child
(os.wait4). To measure the code before a change, point --root and --python at a checkout of it and its
own virtualenv. The config checked is written to a temporary directory: one target with a Key Vault sink
and a Dime.Scheduler push sink whose API key comes from the environment.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """\
state: {backend: file, path: /tmp}
targets:
  - name: dime-exchange
    tenant_id: 00000000-0000-0000-0000-000000000000
    client_id: 11111111-1111-1111-1111-111111111111
    sinks:
      - {type: keyvault, vault_url: 'https://my-vault.vault.azure.net', secret_name: dime-exchange-client-secret}
      - {type: dimescheduler, url: 'https://example.invalid/exchange-settings', api_key: {env: DIME_API_KEY}}
"""


def once(python: str, root: Path, argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one run; exits if the command fails."""
    began = time.perf_counter()
    child = subprocess.Popen(
        [python, "-m", "service", *argv], cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - began
    if os.waitstatus_to_exitcode(status) != 0:
        assert child.stderr is not None
        sys.exit(f"{' '.join(argv)} failed: {child.stderr.read().decode(errors='replace')}")
    return seconds, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to run (default: this one)")
    parser.add_argument("--python", default=sys.executable, help="its interpreter (default: this one)")
    args = parser.parse_args()
    left_out = ("SECRET_ROTATOR_CONFIG", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE")  # the cache must be written
    env = {k: v for k, v in os.environ.items() if k not in left_out}
    env["DIME_API_KEY"] = "bench-api-key"
    with tempfile.TemporaryDirectory() as folder:
        env["PYTHONPYCACHEPREFIX"] = str(Path(folder) / "pycache")
        config = Path(folder) / "config.yaml"
        config.write_text(CONFIG, encoding="utf-8")
        commands = {
            "--help": ["--help"],
            "config schema": ["config", "schema"],
            "config check FILE": ["config", "check", str(config)],
        }
        print(f"{args.root} ({args.python}), {args.runs} runs each")
        print(f"{'command':<20} {'wall median':>12} {'min':>8} {'max':>8} {'peak RSS median':>16}")
        for name, argv in commands.items():
            once(args.python, args.root, argv, env)  # warms the bytecode cache
            runs = [once(args.python, args.root, argv, env) for _ in range(args.runs)]
            walls = [wall for wall, _ in runs]
            rss = statistics.median(kib for _, kib in runs) / 1024
            print(
                f"{name:<20} {statistics.median(walls):>11.3f}s {min(walls):>7.3f}s {max(walls):>7.3f}s "
                f"{rss:>13.1f} MiB"
            )


if __name__ == "__main__":
    main()
