"""Microsoft Graph for one tenant: :class:`service.ports.Directory`, reads and writes apart.

Reads (the app, or many apps in batches) go over the pass's aiohttp session (graph_reads.py); writes
(addPassword, removePassword, the tenant's lifetime policy) through msgraph-sdk (graph_sdk.py), which is
imported only when the first write of a pass happens: a healthy pass never loads msgraph-sdk, kiota or
httpx. Both spend one request budget per tenant (budget.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from service.adapters.graph_reads import GraphReads
from service.errors import RemoteError
from service.model import App, Credential
from service.secret import Secret

if TYPE_CHECKING:
    from service.adapters.graph_sdk import GraphWrites


class GraphDirectory:
    """:class:`service.ports.Directory`: ``reads`` now, the writes built by ``writes()`` on first use."""

    def __init__(self, reads: GraphReads, writes: Callable[[], GraphWrites]) -> None:
        self.reads = reads
        self._build_writes = writes
        self._writes: GraphWrites | None = None

    def _writer(self) -> GraphWrites:
        if self._writes is None:
            self._writes = self._build_writes()
        return self._writes

    async def read_app(self, client_id: str) -> App:
        """:meth:`service.ports.Directory.read_app`, over the pass's aiohttp session (graph_reads.py)."""
        return await self.reads.read_app(client_id)

    async def read_apps(self, client_ids: Iterable[str]) -> dict[str, App | RemoteError]:
        """:meth:`service.ports.Directory.read_apps`: in Graph batches (graph_reads.py)."""
        return await self.reads.read_apps(client_ids)

    async def add_password(self, object_id: str, display_name: str, end: datetime) -> tuple[Credential, Secret]:
        """:meth:`service.ports.Directory.add_password`, through msgraph-sdk (graph_sdk.py)."""
        return await self._writer().add_password(object_id, display_name, end)

    async def remove_password(self, object_id: str, key_id: str) -> None:
        """:meth:`service.ports.Directory.remove_password`, through msgraph-sdk."""
        await self._writer().remove_password(object_id, key_id)

    async def password_lifetime_limit(self, object_id: str) -> timedelta | None:
        """:meth:`service.ports.Directory.password_lifetime_limit`, through msgraph-sdk."""
        return await self._writer().password_lifetime_limit(object_id)
