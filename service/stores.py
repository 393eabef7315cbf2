"""The state store the config names: one directory or ConfigMap, or one per shard of the tenants.

With ``state.shards: N`` (a fleet spread over the pods of an Indexed Job, `run --shards N`), each
shard keeps its receipts and intents in a store of its own: the directory ``<path>/shard-I-of-N``, or
the ConfigMap ``<name>-I-of-N``. A target's store follows from its tenant id alone (service.shards),
so `run` of one shard, `run --target`, `plan` and `status` from anywhere all find the same receipts.
Part of the composition root (service.wiring), kept apart so that the daemon, which only forks the
workers that run its passes, can check its store without importing the SDKs the passes use.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime

from service.adapters.state_file import FileStateStore
from service.config.document import StateConfig, Target
from service.errors import ServiceError
from service.model import Intent
from service.ports import Receipt, StateStore
from service.shards import shard_of, tenant_key


def shard_suffix(index: int, count: int) -> str:
    """What a shard's store adds to the configured name: ``-I-of-N``. N is part of it, so that a changed
    number of shards starts on stores of its own instead of meeting the old layout's receipts."""
    return f"-{index}-of-{count}"


def build_store(state: StateConfig, targets: Iterable[Target] = ()) -> StateStore:
    """The store of ``state`` (checked: a directory that cannot be made is a ConfigError, exit 2);
    with ``state.shards`` above 1, one per shard behind a router that needs ``targets``' tenants."""
    if state.shards == 1:
        return _one(state)
    stores = [_one(_of_shard(state, index)) for index in range(state.shards)]
    return ShardedStore(stores, {t.name: t.tenant_id for t in targets})


def _of_shard(state: StateConfig, index: int) -> StateConfig:
    suffix = shard_suffix(index, state.shards)
    return state.model_copy(
        update={"path": state.path / f"shard{suffix}", "name": f"{state.name}{suffix}", "shards": 1}
    )


def _one(state: StateConfig) -> StateStore:
    if state.backend == "kubernetes":
        from service.adapters.state_kubernetes import KubernetesStateStore  # aiohttp, for this backend only

        return KubernetesStateStore(state.namespace, state.name)
    store = FileStateStore(state.path)
    store.check()
    return store


class ShardedStore:
    """:class:`service.ports.StateStore` over one store per shard: a target's calls go to its tenant's."""

    def __init__(self, stores: list[StateStore], tenants: Mapping[str, str]) -> None:
        self._stores = stores
        self._tenants = {name: tenant_key(tenant) for name, tenant in tenants.items()}

    def store_of(self, target: str) -> StateStore:
        """The store of ``target``'s tenant's shard; ServiceError for a target not in the config."""
        tenant = self._tenants.get(target)
        if tenant is None:
            raise ServiceError(f"the state store has no tenant for target {target}: it is not in the config")
        return self._stores[shard_of(tenant, len(self._stores))]

    async def get(self, target: str, sink: str) -> Receipt | None:
        """:meth:`service.ports.StateStore.get`, in the target's shard's store."""
        return await self.store_of(target).get(target, sink)

    async def put(self, target: str, sink: str, receipt: Receipt) -> None:
        """:meth:`service.ports.StateStore.put`, in the target's shard's store."""
        await self.store_of(target).put(target, sink, receipt)

    async def intents(self, target: str) -> tuple[Intent, ...]:
        """:meth:`service.ports.StateStore.intents`, from the target's shard's store."""
        return await self.store_of(target).intents(target)

    async def add_intent(self, target: str, intent: Intent) -> None:
        """:meth:`service.ports.StateStore.add_intent`, in the target's shard's store."""
        await self.store_of(target).add_intent(target, intent)

    async def set_aside(self, target: str, now: datetime) -> str | None:
        """:meth:`service.ports.StateStore.set_aside`, in the target's shard's store."""
        return await self.store_of(target).set_aside(target, now)

    def lock(self, target: str) -> AbstractAsyncContextManager[None]:
        """:meth:`service.ports.StateStore.lock` of the target's shard's store."""
        return self.store_of(target).lock(target)

    async def close(self) -> None:
        """Close every shard's store; one that fails to close does not keep the others open."""
        for store in self._stores:
            close = getattr(store, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()
