"""Builds a pass's adapters from the config: the one place that knows every concrete class.

Clients are created once per pass and shared by all targets: one aiohttp session, one rotator
credential per identity, one Graph client per (identity, tenant), one Key Vault client per
(identity, vault), so connections, Key Vault challenges and tokens are paid once, not per target.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any

from service.adapters.entra import EntraVerifier, SingleFlightCredential, rotator_credential
from service.adapters.graph import GraphDirectory, graph_service_client
from service.adapters.keyvault import KeyVault, secret_client
from service.adapters.push import HttpPusher, PushRequest
from service.adapters.state_file import FileStateStore
from service.adapters.transport import aiohttp_session, tls_context
from service.config import (
    PUSH_FIELDS,
    Config,
    DimeSchedulerSink,
    IdentityConfig,
    KeyVaultSink,
    StateConfig,
    Target,
    WebhookSink,
    sink_id,
)
from service.errors import ConfigError
from service.metrics import Metrics
from service.ports import Clock, Sink, StateStore
from service.reconcile import TargetContext
from service.retry import RetryPolicy
from service.sinks import PushSink, VaultSink


def build_store(state: StateConfig) -> StateStore:
    if state.backend == "kubernetes":
        from service.adapters.state_kubernetes import KubernetesStateStore

        return KubernetesStateStore(state.namespace, state.name)
    store = FileStateStore(state.path)
    store.check()
    return store


class PassResources:
    """``async with PassResources(config, ...) as res:`` then ``res.context(target)`` per target."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock,
        metrics: Metrics,
        retry: RetryPolicy | None = None,
        environ: Mapping[str, str] | None = None,
        store: StateStore | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.metrics = metrics
        self.retry = retry or RetryPolicy()
        self._environ = os.environ if environ is None else environ
        self._endpoints = config.cloud.endpoints()
        self._own_store = store is None
        self.store = store or build_store(config.state)
        self._closers: list[Callable[[], Awaitable[Any]]] = []
        self._credentials: dict[str, SingleFlightCredential] = {}
        self._directories: dict[tuple[str, str], GraphDirectory] = {}
        self._vaults: dict[tuple[str, str], KeyVault] = {}

    async def __aenter__(self) -> PassResources:
        self._tls = tls_context(self._endpoints.ca_bundle)
        self._session = aiohttp_session(self._tls)
        self._closers.append(self._session.close)
        close_store = getattr(self.store, "close", None)
        if self._own_store and close_store is not None:
            self._closers.append(close_store)
        self.verifier = EntraVerifier(self._endpoints, self._session)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Last opened, first closed: clients before the credentials and the session they use.
        for close in reversed(self._closers):
            # Closing must not hide the pass's own outcome.
            with contextlib.suppress(Exception):
                await close()

    def _credential(self, identity: IdentityConfig, tenant_id: str) -> tuple[str, SingleFlightCredential]:
        key = identity.model_dump_json()
        if key not in self._credentials:
            credential = SingleFlightCredential(rotator_credential(identity, self._endpoints, self._session, tenant_id))
            self._credentials[key] = credential
            self._closers.append(credential.close)
        return key, self._credentials[key]

    def _directory(self, identity: IdentityConfig, tenant_id: str) -> GraphDirectory:
        key, credential = self._credential(identity, tenant_id)
        if (key, tenant_id) not in self._directories:
            endpoints = self._endpoints
            client, http = graph_service_client(
                credential, tenant_id, endpoints.graph_url, endpoints.graph_scope, self._tls
            )
            self._closers.append(http.aclose)
            self._directories[(key, tenant_id)] = GraphDirectory(client, tenant_id, self.retry, self.metrics)
        return self._directories[(key, tenant_id)]

    def _vault(self, identity: IdentityConfig, tenant_id: str, sink: KeyVaultSink) -> KeyVault:
        key, credential = self._credential(identity, tenant_id)
        if (key, sink.vault_url) not in self._vaults:
            client = secret_client(
                sink.vault_url, credential, self._session, verify_challenge_resource=sink.verify_challenge_resource
            )
            self._closers.append(client.close)
            self._vaults[(key, sink.vault_url)] = KeyVault(client, sink.vault_url, self.retry, self.metrics)
        return self._vaults[(key, sink.vault_url)]

    def _sink(self, target: Target, identity: IdentityConfig, sink: Any) -> Sink:
        policy = self.config.policy(target)
        if isinstance(sink, KeyVaultSink):
            vault = self._vault(identity, target.tenant_id, sink)
            return VaultSink(vault, sink.vault_url, sink.secret_name, target.client_id, policy.marker)
        names = {name: sink.fields.get(name, name) for name in PUSH_FIELDS}
        if isinstance(sink, DimeSchedulerSink):
            headers: dict[str, Any] = {}
            secret_headers = {"X-API-KEY": sink.api_key.resolve(self._environ)}
        elif isinstance(sink, WebhookSink):
            headers = dict(sink.headers)
            secret_headers = {h: ref.resolve(self._environ) for h, ref in sink.secret_headers.items()}
        else:  # pragma: no cover - the config's discriminated union has no other member
            raise ConfigError(f"unknown sink type {sink.type}")
        request = PushRequest(
            url=sink.url,
            secret_field=names["clientSecret"],
            headers=headers,
            secret_headers=secret_headers,
            query={name: ref.resolve(self._environ) for name, ref in sink.query.items()},
            timeout=sink.timeout.total_seconds(),
        )
        fields: dict[str, object] = {
            **sink.static,
            names["tenantId"]: target.tenant_id,
            names["clientId"]: target.client_id,
        }
        pusher = HttpPusher(self._session, request, self.retry, self.metrics)
        return PushSink(sink_id(sink), pusher, self.store, self.clock, target.name, fields, names)

    def context(self, target: Target) -> TargetContext:
        identity = self.config.identity(target)
        return TargetContext(
            name=target.name,
            tenant_id=target.tenant_id,
            client_id=target.client_id,
            policy=self.config.policy(target),
            directory=self._directory(identity, target.tenant_id),
            verifier=self.verifier,
            sinks=[self._sink(target, identity, sink) for sink in target.sinks],
        )
