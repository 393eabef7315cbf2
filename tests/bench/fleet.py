"""Fleet benchmark: real `secret-rotator run` passes over N targets in T tenants, the emulator in a process
of its own answering every request after --latency-ms.

    .venv/bin/python tests/bench/fleet.py [--targets 10000] [--tenants 100] [--latency-ms 20]
        [--workers N] [--due 0.1] [--throttle RATE] [--cold-start] [--daemon-rss]
        [--root CHECKOUT --python PYTHON]

Passes, each a `run` subprocess of CHECKOUT (default: this one), so process start and config load count:
  1. first pass, every target due (no sink holds anything yet);
  2. every target healthy;
  3. --due of the targets due for renewal (the emulator moves their secrets 61 days into the past: the
     rotator keeps the system clock);
  4. with --throttle RATE, another healthy pass while the emulator lets RATE requests a second through for
     each tenant (Graph) and for the vault (Key Vault), over a sliding 10 s window, and answers the rest 429
     with Retry-After, as the services do. It must slow down, complete, and fail nothing.
Per pass: wall, CPU per target (the run and its workers), requests per target to Graph, Key Vault and the
push endpoint, Entra token requests, the emulator's own CPU, the peak RSS of the largest process and the
peak memory (summed PSS) of the run's process tree, and the run's own counts from `run.finished`.
--cold-start: `run` of one healthy target against the bare import of the SDKs, median of 5.
--daemon-rss: tests/bench/daemon_rss.py on the same checkout.

Before/after: `--root /work/wt/base --python /work/wt/base/.venv/bin/python` measures the checkout before
the change with the same emulator (this checkout's). A checkout without `run --workers` runs in one
process (--workers is left out). Bytecode goes to a temporary folder (PYTHONPYCACHEPREFIX): the checkout
measured is left as it was.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import multiprocessing
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.processes import Measured, cpu_seconds, measure  # noqa: E402 - after the path set-up

# What a pass's imports are measured against: the SDKs and HTTP stacks a pass uses.
SDKS = ("msgraph", "msgraph_core", "azure.identity.aio", "azure.keyvault.secrets.aio", "aiohttp")
AGE_DAYS = 61  # secrets of a 90-day lifetime made this long ago are due (renewal at a third left)


# --- the emulator, in a process of its own ---------------------------------------------------------


def serve_emulator(targets: int, tenants: int, workdir: str, ready: Any, commands: Any, profile: bool) -> None:
    """Child process: seed the fleet, then serve on this process's main thread until killed. ``commands``:
    ("age", count, days) ages the first apps' secrets; ("profile",) answers where the emulator's CPU went."""
    import cProfile

    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    asyncio.run(_serve(targets, tenants, Path(workdir), ready, commands, profiler))


async def _serve(targets: int, tenants: int, workdir: Path, ready: Any, commands: Any, profiler: Any) -> None:
    from service.emulator import Emulator

    async with Emulator(state_dir=workdir / "emulator") as emu:
        began = time.monotonic()
        ids = [emu.add_tenant() for _ in range(tenants)]
        rotator = emu.add_rotator(ids[0], roles=("Application.ReadWrite.OwnedBy",))
        owners = {ids[0]: rotator.object_id}
        for tenant in ids[1:]:
            # One multi-tenant rotator consented in every tenant: the same appId and secret, a principal in each.
            emu.add_app(tenant, "secret-rotator", app_id=rotator.client_id, service_principal=False)
            principal = emu.add_service_principal(tenant, rotator.client_id)
            emu.grant_app_role(tenant, principal.object_id, "Application.ReadWrite.OwnedBy")
            emu.add_password(tenant, rotator.client_id, secret=rotator.secret, display_name="rotator")
            owners[tenant] = principal.object_id
        apps = []
        for i in range(targets):
            tenant = ids[i % tenants]
            apps.append((tenant, emu.add_app(tenant, f"Dime.Scheduler {i}", owners=[owners[tenant]]).app_id))
        (workdir / "rotator-secret").write_text(rotator.secret)
        (workdir / "api-key").write_text(emu.receiver.api_key)
        ready.send(
            {
                "url": emu.url,
                "graph_url": emu.graph_url,
                "ca": str(emu.ca_file),
                "home": ids[0],
                "receiver": emu.receiver_url,
                "client_id": rotator.client_id,
                "apps": apps,
                "seconds": time.monotonic() - began,
            }
        )
        loop = asyncio.get_running_loop()
        while True:
            command = await loop.run_in_executor(None, commands.recv)
            if command[0] == "age":
                commands.send(age(emu, apps[: command[1]], timedelta(days=command[2])))
            elif command[0] == "profile":
                commands.send(_profile(profiler))


def _profile(profiler: Any) -> str:
    import io
    import pstats

    if profiler is None:
        return "(the emulator was not profiled: --profile-emulator)"
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    profiler.clear()
    profiler.enable()
    return out.getvalue()


def age(emu: Any, apps: list[tuple[str, str]], by: timedelta) -> int:
    """Move the start and end of these apps' secrets ``by`` into the past, as if made that long ago: what makes
    a pass find them due when the rotator keeps the system clock. The number of secrets moved."""
    moved = 0
    with emu.directory.lock:
        for tenant, app_id in apps:
            app = emu.directory.app_by_app_id(emu.directory.require_tenant(tenant), app_id)
            app.passwords = [dataclasses.replace(p, start=p.start - by, end=p.end - by) for p in app.passwords]
            moved += len(app.passwords)
    return moved


class Emulator:
    """The emulator's process and its control API."""

    def __init__(self, targets: int, tenants: int, workdir: Path, *, profile: bool = False) -> None:
        context = multiprocessing.get_context("spawn")
        receive, send = context.Pipe(duplex=False)
        self._commands, theirs = context.Pipe()
        self.process = context.Process(
            target=serve_emulator, daemon=True, args=(targets, tenants, str(workdir), send, theirs, profile)
        )
        self.process.start()
        if not receive.poll(1800):
            raise SystemExit("the emulator did not start")
        self.info: dict[str, Any] = receive.recv()
        self._ssl = ssl.create_default_context(cafile=self.info["ca"])
        self.profiled = profile

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        url = f"{self.info['url']}/_emulator/{path}"  # the emulator's https control API
        request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})  # noqa: S310
        with urllib.request.urlopen(request, context=self._ssl, timeout=60) as response:  # noqa: S310
            return json.loads(response.read())

    def age(self, count: int, days: float) -> int:
        """Make the first ``count`` apps' secrets ``days`` older; how many secrets were moved."""
        self._commands.send(("age", count, days))
        moved: int = self._commands.recv()
        return moved

    def profile(self) -> str:
        """Where the emulator's CPU went since the last call (with --profile-emulator)."""
        self._commands.send(("profile",))
        text: str = self._commands.recv()
        return text

    def stop(self) -> None:
        self.process.kill()
        self.process.join(10)


class Throttle:
    """The emulator's own service-side throttling (a sliding 10 s window per tenant for Graph, per vault for Key
    Vault) at RATE requests a second, answering the rest 429 with the Retry-After that says when the window has
    room: what Graph and Key Vault do, at a rate below the rotator's own budgets so that it meets them."""

    def __init__(self, emulator: Emulator, rate: int) -> None:
        self._emulator, self._rate = emulator, rate

    def __enter__(self) -> Throttle:
        limit = self._rate * 10
        self._emulator.control(
            "POST", "settings", {"graph_throttle": limit, "vault_throttle": limit, "throttle_window_seconds": 10}
        )
        return self

    def __exit__(self, *_: object) -> None:
        self._emulator.control("POST", "settings", {"graph_throttle": None, "vault_throttle": None})


# --- the checkout measured -------------------------------------------------------------------------


class Checkout:
    """A checkout and its interpreter, run with a bytecode cache of their own."""

    def __init__(self, root: Path, python: str, cache: Path) -> None:
        self.root, self.python = root, python
        left_out = ("SECRET_ROTATOR_CONFIG", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "JOB_COMPLETION_INDEX")
        self.env = {k: v for k, v in os.environ.items() if k not in left_out}
        self.env["PYTHONPYCACHEPREFIX"] = str(cache)
        help_text = subprocess.run(
            [python, "-m", "service", "run", "--help"],
            cwd=root,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        self.has_workers = "--workers" in help_text
        revision = subprocess.run(
            ["git", "-C", str(root), "log", "-1", "--format=%h %s"], capture_output=True, text=True, check=False
        ).stdout.strip()
        self.describe = f"{root} ({revision[:70]})"

    def run(self, config: Path, workers: int | None, folder: Path, name: str) -> tuple[Measured, list[dict[str, Any]]]:
        argv = [self.python, "-m", "service", "run", "--config", str(config), "--log-format", "json"]
        if workers is not None and self.has_workers:
            argv += ["--workers", str(workers)]
        out, err = folder / f"{name}.out", folder / f"{name}.err"
        measured = measure(argv, cwd=self.root, env=self.env, stdout=out, stderr=err)
        lines = []
        for line in out.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
        if measured.code not in (0, 1):
            sys.exit(f"`run` exited {measured.code}:\n{err.read_text(errors='replace')[-3000:]}")
        return measured, lines

    def wall(self, argv: list[str], runs: int = 5) -> float:
        """The median wall time of ``argv`` run ``runs`` times (after one run to warm the bytecode cache)."""
        times = []
        for _ in range(runs + 1):
            began = time.perf_counter()
            subprocess.run(argv, cwd=self.root, env=self.env, capture_output=True, check=True)
            times.append(time.perf_counter() - began)
        return statistics.median(times[1:])


# --- configs ---------------------------------------------------------------------------------------


def write_config(info: dict[str, Any], workdir: Path, path: Path, *, only: int | None = None) -> Path:
    import yaml

    targets = []
    for i, (tenant, app_id) in enumerate(info["apps"][:only]):
        target: dict[str, Any] = {
            "name": f"app-{i:05d}",
            "tenant_id": tenant,
            "client_id": app_id,
            "sinks": [
                {
                    "type": "keyvault",
                    "vault_url": info["url"],
                    "secret_name": f"app-{i:05d}",
                    "verify_challenge_resource": False,
                },
                {"type": "dimescheduler", "url": info["receiver"], "api_key": {"file": str(workdir / "api-key")}},
            ],
        }
        targets.append(target)
    path.write_text(
        yaml.safe_dump(
            {
                "cloud": {"authority_host": info["url"], "graph_url": info["graph_url"], "ca_bundle": info["ca"]},
                "credential": {
                    "type": "client_secret",
                    "tenant_id": info["home"],
                    "client_id": info["client_id"],
                    "client_secret": {"file": str(workdir / "rotator-secret")},
                },
                "defaults": {"lifetime": "90d", "verify_timeout": "2m"},
                "state": {"backend": "file", "path": str(workdir / "state")},
                "targets": targets,
            }
        )
    )
    return path


# --- one pass --------------------------------------------------------------------------------------

HEADER = (
    f"{'pass':<26}{'wall s':>8}{'cpu ms/t':>9}{'graph/t':>8}{'kv/t':>7}{'push/t':>7}{'entra':>7}"
    f"{'429s':>6}{'emu cpu s':>10}{'rss MiB':>8}{'tree MiB':>9}{'procs':>6}  outcome"
)


def one_pass(
    name: str, checkout: Checkout, emulator: Emulator, config: Path, targets: int, workers: int | None, folder: Path
) -> dict[str, Any]:
    emulator.control("DELETE", "requests")
    emulator_cpu = cpu_seconds(emulator.pid)
    measured, lines = checkout.run(config, workers, folder, name.split(":")[0].replace(" ", "-"))
    emulator_cpu = cpu_seconds(emulator.pid) - emulator_cpu
    counts = emulator.control("GET", "requests")
    by_service = Counter(counts.get("by_service", {}))
    throttled = sum(n for key, n in counts.get("counts", {}).items() if key.endswith(" 429"))
    finished = next((e for e in lines if e.get("event") == "run.finished"), {})
    outcome = {k: finished.get(k) for k in ("healthy", "changed", "failed")}
    reasons = Counter(e.get("reason") for e in lines if e.get("event") == "rotation.failed")
    extra = {k: v for k, v in counts.items() if k not in ("total", "by_service", "counts")}
    print(
        f"{name:<26}{measured.wall:>8.1f}{measured.cpu * 1000 / targets:>9.2f}"
        f"{by_service['graph'] / targets:>8.3f}{by_service['keyvault'] / targets:>7.3f}"
        f"{by_service['receiver'] / targets:>7.3f}{by_service['entra']:>7d}{throttled:>6d}{emulator_cpu:>10.1f}"
        f"{measured.largest_rss_mib:>8.0f}{measured.tree_pss_mib:>9.0f}{measured.processes:>6d}  {outcome}"
        + (f" exit {measured.code}" if measured.code else "")
        + (f" failures {dict(reasons)}" if reasons else "")
        + (f"  {extra}" if extra else ""),
        flush=True,
    )
    if emulator.profiled:
        print(emulator.profile(), flush=True)
    workers_done = [e for e in lines if e.get("event") == "worker.finished"]
    if workers_done:
        print(
            "  workers: "
            + ", ".join(
                f"#{e.get('worker')} {e.get('targets')} targets {e.get('seconds')}s cpu {e.get('cpu_seconds')}s"
                for e in workers_done
            ),
            flush=True,
        )
    return {"measured": measured, "outcome": outcome}


def cold_start(checkout: Checkout, config: Path) -> None:
    imports = checkout.wall([checkout.python, "-c", "import " + ", ".join(SDKS)])
    run = checkout.wall([checkout.python, "-m", "service", "run", "--config", str(config), "--log-format", "json"])
    print(
        f"cold start: `run` of 1 healthy target {run:.2f}s, bare import of {', '.join(SDKS)} {imports:.2f}s: "
        f"{run / imports:.2f}x (median of 5)",
        flush=True,
    )


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, default=10000)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--due", type=float, default=0.1, help="fraction of targets due in pass 3")
    parser.add_argument("--workers", type=int, help="run --workers N (default: the run's own default)")
    parser.add_argument(
        "--throttle",
        type=int,
        default=0,
        metavar="RATE",
        help="also a healthy pass with Graph (per tenant) and Key Vault (per vault) throttled to RATE a second",
    )
    parser.add_argument("--cold-start", action="store_true", help="also `run` of one target against bare SDK imports")
    parser.add_argument("--daemon-rss", action="store_true", help="also tests/bench/daemon_rss.py")
    parser.add_argument("--profile-emulator", action="store_true", help="print where the emulator's CPU went")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="copy the passes' logs and configs here")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to run (default: this one)")
    parser.add_argument("--python", default=sys.executable, help="its interpreter (default: this one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        workdir = Path(tmp)
        checkout = Checkout(args.root, args.python, workdir / "pycache")
        emulator = Emulator(args.targets, args.tenants, workdir, profile=args.profile_emulator)
        try:
            emulator.control("POST", "settings", {"default_latency_seconds": args.latency_ms / 1000})
            fleet = write_config(emulator.info, workdir, workdir / "fleet.yaml")
            workers = args.workers if checkout.has_workers else None
            print(
                f"{checkout.describe}\n{args.targets} targets in {args.tenants} tenants, {args.latency_ms:g} ms a "
                f"request; workers: {workers if workers else ('default' if checkout.has_workers else 'none')}; "
                f"emulator seeded in {emulator.info['seconds']:.0f}s; load average {load_average()}",
                flush=True,
            )
            print(HEADER, flush=True)
            one_pass("1: first, all due", checkout, emulator, fleet, args.targets, workers, workdir)
            one_pass("2: all healthy", checkout, emulator, fleet, args.targets, workers, workdir)
            emulator.age(int(args.targets * args.due), AGE_DAYS)
            one_pass(f"3: {args.due:.0%} due", checkout, emulator, fleet, args.targets, workers, workdir)
            if args.throttle:
                with Throttle(emulator, args.throttle):
                    label = f"4: healthy, {args.throttle}/s allowed"
                    one_pass(label, checkout, emulator, fleet, args.targets, workers, workdir)
            if args.cold_start:
                cold_start(checkout, write_config(emulator.info, workdir, workdir / "one.yaml", only=1))
            print(f"load average {load_average()}", flush=True)
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                for kept in [*workdir.glob("*.out"), *workdir.glob("*.err"), *workdir.glob("*.yaml")]:
                    shutil.copy(kept, args.keep / kept.name)
        finally:
            emulator.stop()
    if args.daemon_rss:
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "tests" / "bench" / "daemon_rss.py"),
                "--root",
                str(args.root),
                "--python",
                args.python,
            ],
            check=False,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
