"""Fixtures `emu` and `world` (registered for the whole suite by tests/conftest.py): a world to rotate
in: the emulator, a tenant, a Dime.Scheduler app, a rotator identity, a config.

Everything runs in-process over real HTTPS on 127.0.0.1: the real msgraph-sdk, azure-identity and
azure-keyvault-secrets talk to the emulator; nothing in them is mocked. Time is the emulator's clock,
which the engine shares, so a test moves both by `world.clock.advance(...)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from service import logs
from service.config.document import Config
from service.config.loading import parse_config
from service.emulator import Clock, Emulator, RequestInfo
from service.metrics import Metrics
from service.model import Flags
from service.reconcile import TargetResult, VerifyBackoff
from service.retry import RetryPolicy
from service.runner import PassOptions, run_pass
from tests.conftest import assert_no_secrets

# Patient enough for the emulator's injected faults, quick enough for a test suite.
FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.05, max_delay=2.0, budget=10.0)
FAST_BACKOFF = VerifyBackoff(first=0.05, factor=1.5, longest=0.5)
SECRET_NAME = "dime-exchange-client-secret"


class LogCapture:
    """The JSON log lines of the passes a test ran, parsed."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        logs.configure(self.stream, json=True, level="debug")

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def named(self, event: str, **match: Any) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == event and all(e.get(k) == v for k, v in match.items())]


@dataclass
class World:
    emu: Emulator
    tmp: Path
    tenant: str
    app_id: str
    app_object_id: str
    rotator_client_id: str
    rotator_object_id: str
    logs: LogCapture
    metrics: Metrics = field(default_factory=Metrics)
    targets: list[dict[str, Any]] = field(default_factory=list)
    defaults: dict[str, Any] = field(default_factory=dict)
    rotator_principals: dict[str, str] = field(default_factory=dict)  # tenant -> the rotator's object id there

    @property
    def clock(self) -> Clock:
        return self.emu.clock

    def target(
        self,
        name: str = "dime-exchange",
        *,
        sinks: tuple[str, ...] = ("keyvault", "dimescheduler"),
        app_id: str | None = None,
        tenant: str | None = None,
        secret_name: str = SECRET_NAME,
        **policy: Any,
    ) -> dict[str, Any]:
        built = []
        for kind in sinks:
            if kind == "keyvault":
                built.append(
                    {
                        "type": "keyvault",
                        "vault_url": self.emu.vault_url,
                        "secret_name": secret_name,
                        "verify_challenge_resource": False,
                    }
                )
            elif kind == "dimescheduler":
                built.append(
                    {
                        "type": "dimescheduler",
                        "url": self.emu.receiver_url,
                        "api_key": {"file": str(self.tmp / "dimescheduler-api-key")},
                    }
                )
        target = {
            "name": name,
            "tenant_id": tenant or self.tenant,
            "client_id": app_id or self.app_id,
            "sinks": built,
            **policy,
        }
        self.targets.append(target)
        return target

    def config_data(self) -> dict[str, Any]:
        return {
            "cloud": cloud(self.emu),
            "credential": {
                "type": "client_secret",
                "tenant_id": self.tenant,
                "client_id": self.rotator_client_id,
                "client_secret": {"file": str(self.tmp / "rotator-secret")},
            },
            "defaults": {
                "lifetime": "90d",
                "grace_period": "1d",
                "verify_timeout": "20s",
                "in_flight_timeout": "15m",
                **self.defaults,
            },
            "state": {"backend": "file", "path": str(self.tmp / "state")},
            "targets": self.targets or [self.target()],
        }

    def config(self) -> Config:
        return parse_config(yaml.safe_dump(self.config_data()), "world.yaml", environ={})

    def config_file(self) -> Path:
        path = self.tmp / "config.yaml"
        path.write_text(yaml.safe_dump(self.config_data()))
        return path

    async def run(
        self,
        *,
        force: bool = False,
        revoke_previous: bool = False,
        only: str | None = None,
        config: Config | None = None,
        metrics: Metrics | None = None,
    ) -> list[TargetResult]:
        """A pass over the world's config (or ``config``), counted in ``metrics`` (default: the world's)."""
        options = PassOptions(
            only=only, flags=Flags(force=force, revoke_previous=revoke_previous), retry=FAST_RETRY, backoff=FAST_BACKOFF
        )
        results = await run_pass(
            config or self.config(), clock=self.clock, metrics=metrics or self.metrics, options=options
        )
        assert_no_secrets(self.logs.text, "the pass's log lines")
        return results

    def add_tenant(self) -> str:
        """Another tenant, in which the rotator (one multi-tenant app, the same secret) is consented."""
        tenant = self.emu.add_tenant()
        self.emu.add_app(tenant, "secret-rotator", app_id=self.rotator_client_id, service_principal=False)
        principal = self.emu.add_service_principal(tenant, self.rotator_client_id)
        self.emu.grant_app_role(tenant, principal.object_id, "Application.ReadWrite.OwnedBy")
        self.emu.add_password(
            tenant, self.rotator_client_id, display_name="rotator", secret=(self.tmp / "rotator-secret").read_text()
        )
        self.rotator_principals[tenant] = principal.object_id
        return tenant

    def add_app(self, tenant: str, display_name: str) -> str:
        """Another app the rotator owns, in ``tenant`` (this world's, or one of add_tenant's): its client id."""
        owner = self.rotator_principals.get(tenant, self.rotator_object_id)
        return self.emu.add_app(tenant, display_name, owners=[owner]).app_id

    # what the remote side holds now
    def passwords(self, app_id: str | None = None, tenant: str | None = None) -> list[Any]:
        return self.emu.passwords(tenant or self.tenant, app_id or self.app_id)

    def vault_key_id(self, name: str = SECRET_NAME) -> str | None:
        latest = self.emu.vault_secret(name)
        return latest.tags.get("key-id") if latest else None


@dataclass
class ReceiverWatch:
    """Whether the secret the receiver holds signs in, while passes run: after every request the emulator
    answers (the only moments anything changes) and every millisecond in between. Works for passes in
    this process and for `run` subprocesses alike, since the emulator serves from this process."""

    world: World
    samples: int = 0
    dead: list[str] = field(default_factory=list)

    def check(self, where: str) -> None:
        receiver = self.world.emu.receiver
        if receiver.deliveries:
            self.samples += 1
            if not receiver.current_key_authenticates():
                self.dead.append(where)

    def after_request(self, info: RequestInfo) -> None:
        self.check(f"after {info.method} {info.path}")

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        fault = self.world.emu.faults.add(".*", None, "hook", after=True, hook=self.after_request)

        async def tick() -> None:
            while True:
                self.check("between requests")
                await asyncio.sleep(0.001)

        ticker = asyncio.create_task(tick())
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            self.world.emu.faults.remove(fault)


def _write_secret(path: Path, value: str) -> None:
    path.write_text(value)
    path.chmod(0o600)


def emulator_in_thread() -> Iterator[Emulator]:
    """An emulator serving from a daemon thread, for an ``emu`` fixture that overrides the one below: the code
    under test runs an event loop of its own on the test's thread (``main``), or the test waits on a
    subprocess that calls the emulator."""
    emulator = Emulator()
    emulator.start_in_thread()
    try:
        yield emulator
    finally:
        emulator.stop_thread()


@pytest.fixture
async def emu(tmp_path: Path) -> AsyncIterator[Emulator]:
    async with Emulator(clock=Clock(), state_dir=tmp_path / "emulator") as emulator:
        yield emulator


@pytest.fixture
async def world(emu: Emulator, tmp_path: Path) -> World:
    tenant = emu.add_tenant()
    rotator = emu.add_rotator(tenant, roles=("Application.ReadWrite.OwnedBy",))
    app = emu.add_app(tenant, "Dime.Scheduler", owners=[rotator.object_id])
    _write_secret(tmp_path / "rotator-secret", rotator.secret)
    _write_secret(tmp_path / "dimescheduler-api-key", emu.receiver.api_key)
    return World(emu, tmp_path, tenant, app.app_id, app.object_id, rotator.client_id, rotator.object_id, LogCapture())


def cloud(emu: Emulator) -> dict[str, str]:
    """A config's ``cloud:`` block that points every client at ``emu``."""
    return {"authority_host": emu.url, "graph_url": emu.graph_url, "ca_bundle": str(emu.ca_file)}


def days(n: float) -> timedelta:
    return timedelta(days=n)
