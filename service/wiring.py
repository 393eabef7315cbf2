"""Builds the engine and the adapters from the config: the one place that knows every concrete class.

Clients are created once per pass and shared by all targets: one aiohttp session, one rotator
credential per identity, one Graph client per (identity, tenant), one Key Vault client per
(identity, vault), so connections, Key Vault challenges and tokens are paid once, not per target.
Each sink type builds its engine-side sink from them (service/sinks/registry.py: PassClients).
So are the request budgets (one per tenant for Graph, one per vault), the proxies (looked up once per
host) and the secrets references name (read once per pass, however many targets name the same file).
Graph's SDK, used only for writes, is imported when a pass first writes.
Bootstrap's clients (the admin's sign-in, Graph admin, Key Vault) are built here too; the state store
in service/stores.py (which the daemon checks without importing the SDKs).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from service.adapters.budget import GRAPH_LIMIT, VAULT_LIMIT, Budget
from service.adapters.entra import EntraVerifier, SingleFlightCredential, rotator_credential
from service.adapters.graph import GraphDirectory
from service.adapters.graph_reads import GraphReads
from service.adapters.keyvault import KeyVault, secret_client
from service.adapters.push import HttpPusher, PushRequest
from service.adapters.transport import ProxyLookup, aiohttp_session, tls_context
from service.config.clouds import Endpoints, IdentityConfig
from service.config.document import Config, Target
from service.config.references import SecretRef
from service.metrics import Metrics
from service.ports import Clock, Directory, Pusher, StateStore, Vault
from service.reconcile import Engine, TargetContext, VerifyBackoff
from service.retry import RetryPolicy
from service.secret import Secret
from service.sinks.registry import SinkTarget
from service.stores import build_store

if TYPE_CHECKING:
    from msgraph.graph_service_client import GraphServiceClient

    from service.adapters.graph_admin import GraphAdmin
    from service.adapters.graph_sdk import GraphWrites
    from service.adapters.sign_in_activity import GraphSignInReport
    from service.bootstrap import Store


@contextlib.asynccontextmanager
async def open_pass(
    config: Config,
    targets: Sequence[Target],
    *,
    clock: Clock,
    metrics: Metrics,
    retry: RetryPolicy | None = None,
    backoff: VerifyBackoff | None = None,
    store: StateStore | None = None,
    processes: int = 1,
) -> AsyncIterator[tuple[Engine, list[TargetContext]]]:
    """The engine of one pass and each target's context, on clients shared by the targets; closed after.
    ``processes``: how many processes run this pass at once (workers times shards), which share each vault's
    request budget (a tenant's stays in one process)."""
    async with PassResources(
        config, clock=clock, metrics=metrics, retry=retry, store=store, processes=processes
    ) as resources:
        engine = Engine(clock, resources.store, metrics, backoff=backoff or VerifyBackoff())
        yield engine, [resources.context(target) for target in targets]


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
        processes: int = 1,
    ) -> None:
        self.config = config
        self._vault_limit = VAULT_LIMIT.shared(processes)
        self.clock = clock
        self.metrics = metrics
        self.retry = retry or RetryPolicy()
        self.environ = os.environ if environ is None else environ
        self._endpoints = config.cloud.endpoints()
        self._own_store = store is None
        self.store = store or build_store(config.state, config.targets)
        self._closers: list[Callable[[], Awaitable[Any]]] = []
        self._credentials: dict[str, SingleFlightCredential] = {}
        self._directories: dict[tuple[str, str], GraphDirectory] = {}
        self._graph_clients: dict[tuple[str, str], GraphServiceClient] = {}
        self._reports: dict[tuple[str, str], GraphSignInReport] = {}
        self._graph_budgets: dict[tuple[str, str], Budget] = {}
        self._vaults: dict[tuple[str, str], KeyVault] = {}
        self._vault_budgets: dict[str, Budget] = {}  # Key Vault counts a vault's operations, whoever calls
        self._proxies = ProxyLookup()
        self._resolved: dict[tuple[str | None, str | None], Secret] = {}

    async def __aenter__(self) -> PassResources:
        self._tls = tls_context(self._endpoints.ca_bundle)
        self._session = aiohttp_session(self._tls)
        self._closers.append(self._session.close)
        if self._own_store:
            self._closers.append(self.store.close)
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
            # Graph's budget is the rotator app's in the tenant: reads and writes spend the same one.
            budget = self._graph_budgets[(key, tenant_id)] = Budget(GRAPH_LIMIT)
            reads = GraphReads(
                self._session,
                credential,
                tenant_id,
                endpoints.graph_url,
                endpoints.graph_scope,
                self.retry,
                self.metrics,
                budget,
            )
            self._directories[(key, tenant_id)] = GraphDirectory(reads, lambda: self._graph_writes(identity, tenant_id))
        return self._directories[(key, tenant_id)]

    def _graph_writes(self, identity: IdentityConfig, tenant_id: str) -> GraphWrites:
        # Here, not at the top: a pass that writes nothing never imports msgraph-sdk, kiota or httpx.
        from service.adapters.graph_sdk import GraphWrites

        key, _ = self._credential(identity, tenant_id)
        return GraphWrites(
            self._graph(identity, tenant_id), tenant_id, self.retry, self.metrics, self._graph_budgets[(key, tenant_id)]
        )

    def _graph(self, identity: IdentityConfig, tenant_id: str) -> GraphServiceClient:
        """The tenant's msgraph-sdk client (the writes, the sign-in report), built on first use."""
        from service.adapters.graph_sdk import graph_service_client

        key, credential = self._credential(identity, tenant_id)
        if (key, tenant_id) not in self._graph_clients:
            endpoints = self._endpoints
            client, http = graph_service_client(
                credential, tenant_id, endpoints.graph_url, endpoints.graph_scope, self._tls
            )
            self._closers.append(http.aclose)
            self._graph_clients[(key, tenant_id)] = client
        return self._graph_clients[(key, tenant_id)]

    def _sign_in_report(self, identity: IdentityConfig, tenant_id: str) -> GraphSignInReport:
        """The tenant's sign-in activity report, on the same Graph client (and token) as its writes; only a
        ``retire_on: usage`` target asks for it, so only such a pass imports msgraph-sdk to read."""
        from service.adapters.sign_in_activity import GraphSignInReport

        key, _ = self._credential(identity, tenant_id)
        if (key, tenant_id) not in self._reports:
            client = self._graph(identity, tenant_id)
            self._reports[(key, tenant_id)] = GraphSignInReport(
                client, tenant_id, self._endpoints.graph_url, self.retry, self.metrics
            )
        return self._reports[(key, tenant_id)]

    def vault(self, identity: IdentityConfig, tenant_id: str, vault_url: str, *, verify: bool) -> KeyVault:
        """The Key Vault client of ``vault_url`` as ``identity``: one per identity and vault in a pass."""
        key, credential = self._credential(identity, tenant_id)
        if (key, vault_url) not in self._vaults:
            client = secret_client(vault_url, credential, self._session, verify_challenge_resource=verify)
            budget = self._vault_budgets.setdefault(vault_url, Budget(self._vault_limit))
            vault = KeyVault(client, vault_url, self.retry, self.metrics, budget)
            self._closers.append(client.close)
            self._closers.append(vault.close)  # before the client: a listing still running stops first
            self._vaults[(key, vault_url)] = vault
        return self._vaults[(key, vault_url)]

    def pusher(self, request: PushRequest) -> HttpPusher:
        """An HTTPS push over the pass's shared session."""
        return HttpPusher(self._session, request, self.retry, self.metrics, proxy=self._proxies(request.url))

    def resolve(self, reference: SecretRef) -> Secret:
        """The secret a reference names, read once per pass (an API key file many targets share)."""
        key = (reference.env, str(reference.file) if reference.file is not None else None)
        if key not in self._resolved:
            self._resolved[key] = reference.resolve(self.environ)
        return self._resolved[key]

    def context(self, target: Target) -> TargetContext:
        """The target with the pass's clients: its directory, the verifier, its sinks built by their types."""
        identity = self.config.identity(target)
        policy = self.config.policy(target)
        clients = _TargetClients(self, identity, target.tenant_id)
        return TargetContext(
            name=target.name,
            tenant_id=target.tenant_id,
            client_id=target.client_id,
            policy=policy,
            directory=self._directory(identity, target.tenant_id),
            sign_ins=self._sign_in_report(identity, target.tenant_id) if policy.on_usage else None,
            verifier=self.verifier,
            sinks=[
                sink.build(SinkTarget(target.name, target.tenant_id, target.client_id, policy), clients)
                for sink in target.sinks
            ],
        )


class _TargetClients:
    """:class:`service.sinks.registry.PassClients` for one target: the pass's clients, as its identity."""

    def __init__(self, resources: PassResources, identity: IdentityConfig, tenant_id: str) -> None:
        self._resources = resources
        self._identity = identity
        self._tenant_id = tenant_id

    @property
    def store(self) -> StateStore:
        return self._resources.store

    @property
    def clock(self) -> Clock:
        return self._resources.clock

    def resolve(self, reference: SecretRef) -> Secret:
        return self._resources.resolve(reference)

    def vault(self, vault_url: str, *, verify_challenge_resource: bool) -> Vault:
        vault = self._resources.vault(self._identity, self._tenant_id, vault_url, verify=verify_challenge_resource)
        vault.wanted += 1  # one more target reads this vault: how the pass decides to list it
        return vault

    def pusher(
        self,
        url: str,
        *,
        secret_field: str,
        headers: Mapping[str, str],
        secret_headers: Mapping[str, Secret],
        query: Mapping[str, Secret],
        timeout: float,
    ) -> Pusher:
        request = PushRequest(url, secret_field, headers, secret_headers, query, timeout)
        return self._resources.pusher(request)


@contextlib.asynccontextmanager
async def bootstrap_clients(
    cloud: Endpoints,
    tenant_id: str,
    *,
    identity: IdentityConfig,
    device_code: bool,
    store: Store | None,
    retry: RetryPolicy,
) -> AsyncIterator[tuple[GraphAdmin, Directory, Vault | None]]:
    """Bootstrap's clients, signed in as the admin (or the config's identity): Graph admin, the Graph
    directory, and the Key Vault of ``store`` when the first secret is to be stored there."""
    # Here, not at the top: a pass never needs Graph's admin models, which take a while to import.
    from service.adapters.graph_admin import GraphAdmin, device_code_credential
    from service.adapters.graph_sdk import GraphWrites, graph_service_client

    tls = tls_context(cloud.ca_bundle)
    async with contextlib.AsyncExitStack() as stack:
        session = aiohttp_session(tls)
        stack.push_async_callback(session.close)
        if device_code:
            credential = device_code_credential(tenant_id, cloud)
        else:
            credential = rotator_credential(identity, cloud, session, tenant_id)
        stack.push_async_callback(credential.close)
        client, http = graph_service_client(credential, tenant_id, cloud.graph_url, cloud.graph_scope, tls)
        stack.push_async_callback(http.aclose)
        vault = None
        if store is not None:
            secrets = secret_client(
                store.vault_url, credential, session, verify_challenge_resource=store.verify_challenge_resource
            )
            stack.push_async_callback(secrets.close)
            vault = KeyVault(secrets, store.vault_url, retry)
        reads = GraphReads(session, credential, tenant_id, cloud.graph_url, cloud.graph_scope, retry)
        writes = GraphWrites(client, tenant_id, retry)
        yield GraphAdmin(client, tenant_id, cloud.graph_url, retry), GraphDirectory(reads, lambda: writes), vault
