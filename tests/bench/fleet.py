"""Fleet benchmark: one `run` pass over N targets in T tenants against the emulator with injected latency.

    .venv/bin/python tests/bench/fleet.py [--targets 1000] [--tenants 10] [--latency-ms 20] [--due 0.1]

The emulator runs in a child process (so the numbers are the rotator's alone); this process runs the
real engine (service.runner.run_pass) and prints, per pass: wall time, this process's CPU per target,
Graph and Key Vault HTTP requests per target (the requests inside Graph batches counted apart, when the
emulator counts them), and this process's peak RSS. Passes:
  1. first pass, every target due (no sink holds anything yet);
  2. all healthy;
  3. `--due` of the targets due for renewal (their policy gives them a 30-day lifetime; the clock of
     both sides is moved 21 days, which makes exactly those due).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import ssl
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def serve_emulator(args: argparse.Namespace, workdir: str, ready: Any) -> None:
    """Child process: seed the fleet, then serve until killed."""
    from service.emulator import Emulator

    emu = Emulator(state_dir=Path(workdir) / "emulator")
    emu.start_in_thread()
    tenants = [emu.add_tenant() for _ in range(args.tenants)]
    home = tenants[0]
    rotator = emu.add_rotator(home, roles=("Application.ReadWrite.OwnedBy",))
    owners = {home: rotator.object_id}
    for tenant in tenants[1:]:
        # The rotator is one multi-tenant app consented in every tenant: same appId, a service principal
        # in each, the same secret.
        emu.add_app(tenant, "secret-rotator", app_id=rotator.client_id, service_principal=False)
        sp = emu.add_service_principal(tenant, rotator.client_id)
        emu.grant_app_role(tenant, sp.object_id, "Application.ReadWrite.OwnedBy")
        emu.add_password(tenant, rotator.client_id, secret=rotator.secret, display_name="rotator")
        owners[tenant] = sp.object_id
    apps = []
    for i in range(args.targets):
        tenant = tenants[i % len(tenants)]
        app = emu.add_app(tenant, f"Dime.Scheduler {i}", owners=[owners[tenant]])
        apps.append((tenant, app.app_id))
    secret_file = Path(workdir) / "rotator-secret"
    secret_file.write_text(rotator.secret)
    key_file = Path(workdir) / "api-key"
    key_file.write_text(emu.receiver.api_key)
    ready.send({"url": emu.url, "graph_url": emu.graph_url, "ca": str(emu.ca_file), "home": home,
                "client_id": rotator.client_id, "apps": apps, "receiver": emu.receiver_url})
    while True:
        time.sleep(3600)


def control(url: str, ca: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    context = ssl.create_default_context(cafile=ca)
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{url}/_emulator/{path}", data=data, method=method,  # noqa: S310
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, context=context, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())


def config_text(info: dict[str, Any], workdir: Path, due: int) -> str:
    import yaml

    targets = []
    for i, (tenant, app_id) in enumerate(info["apps"]):
        target: dict[str, Any] = {
            "name": f"app-{i:05d}",
            "tenant_id": tenant,
            "client_id": app_id,
            "sinks": [
                {"type": "keyvault", "vault_url": info["url"], "secret_name": f"app-{i:05d}",
                 "verify_challenge_resource": False},
                {"type": "dimescheduler", "url": info["receiver"], "api_key": {"file": str(workdir / "api-key")}},
            ],
        }
        if i < due:
            target["lifetime"] = "30d"
        targets.append(target)
    return yaml.safe_dump({
        "cloud": {"authority_host": info["url"], "graph_url": info["graph_url"], "ca_bundle": info["ca"]},
        "credential": {"type": "client_secret", "tenant_id": info["home"], "client_id": info["client_id"],
                       "client_secret": {"file": str(workdir / "rotator-secret")}},
        "defaults": {"lifetime": "90d", "verify_timeout": "2m"},
        "state": {"backend": "file", "path": str(workdir / "state")},
        "targets": targets,
    })


class OffsetClock:
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def monotonic(self) -> float:
        return time.monotonic()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def measure(name: str, config: Any, clock: OffsetClock, info: dict[str, Any], targets: int) -> None:
    from service import logs
    from service.metrics import Metrics
    from service.runner import run_pass

    logs.configure(open("/dev/null", "w"), json=True, level="warning")  # noqa: SIM115, ASYNC230
    control(info["url"], info["ca"], "DELETE", "requests")
    started, cpu = time.monotonic(), time.process_time()
    results = await run_pass(config, clock=clock, metrics=Metrics())
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu
    answered = control(info["url"], info["ca"], "GET", "requests")
    counts, inner = answered["by_service"], answered.get("inner_by_service", {})
    outcomes: dict[str, int] = {}
    for result in results:
        outcomes[result.outcome.value] = outcomes.get(result.outcome.value, 0) + 1
    # HTTP requests per target per service; "+n" the requests carried inside Graph batches, counted apart.
    print(f"{name:<30} {seconds:7.2f} s  CPU/target {cpu / targets * 1000:5.2f} ms  "
          f"graph/target {counts.get('graph', 0) / targets:5.3f} (+{inner.get('graph', 0) / targets:5.3f} in "
          f"batches)  keyvault/target {counts.get('keyvault', 0) / targets:5.3f}  entra {counts.get('entra', 0):5d}  "
          f"peak RSS {peak_rss_mb():4.0f} MB  {outcomes}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--due", type=float, default=0.1, help="fraction of targets due in the third pass")
    parser.add_argument("--profile", action="store_true", help="print where the healthy pass spends its CPU")
    args = parser.parse_args()

    from service.config.loading import parse_config

    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        workdir = Path(tmp)
        receive, send = multiprocessing.get_context("spawn").Pipe(duplex=False)
        child = multiprocessing.get_context("spawn").Process(target=serve_emulator, args=(args, tmp, send),
                                                              daemon=True)
        child.start()
        try:
            if not receive.poll(600):
                print("the emulator did not start", file=sys.stderr)
                return 1
            info = receive.recv()
            control(info["url"], info["ca"], "POST", "settings", {"default_latency_seconds": args.latency_ms / 1000})
            due = int(args.targets * args.due)
            config = parse_config(config_text(info, workdir, due), "fleet.yaml")
            clock = OffsetClock()
            print(f"{args.targets} targets in {args.tenants} tenants, {args.latency_ms:g} ms per request, "
                  f"{due} due in pass 3; start-up peak RSS {peak_rss_mb():.0f} MB", flush=True)
            asyncio.run(measure("pass 1: first rotation of all", config, clock, info, args.targets))
            healthy = measure("pass 2: all healthy", config, clock, info, args.targets)
            if args.profile:
                import cProfile
                import pstats

                with cProfile.Profile() as profile:
                    asyncio.run(healthy)
                stats = pstats.Stats(profile)
                stats.sort_stats("tottime").print_stats(20)
                stats.sort_stats("cumulative").print_stats(40)
            else:
                asyncio.run(healthy)
            clock.offset += timedelta(days=21)
            control(info["url"], info["ca"], "POST", "clock/advance", {"seconds": 21 * 86400})
            asyncio.run(measure(f"pass 3: {args.due:.0%} due", config, clock, info, args.targets))
        finally:
            child.kill()
            child.join(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
