"""The apps of a pass, read in bulk: one ``read_apps`` per directory (a tenant's Graph client), shared by its
targets, each of which awaits its own app.

A tenant's apps go to Graph in batches (service/adapters/graph_reads.py) instead of one GET per target;
an app that could not be read raises, for its target, exactly the error a read of it alone would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping

from service.errors import RemoteError
from service.model import App
from service.ports import Directory


class BulkApps:
    """``await bulk.app(directory, client_id)``: the first asker of a directory starts the read of all of its
    apps this pass needs; everyone gets their own app from it."""

    def __init__(self, wanted: Iterable[tuple[Directory, str]]) -> None:
        self._wanted: dict[int, tuple[Directory, list[str]]] = {}
        for directory, client_id in wanted:
            self._wanted.setdefault(id(directory), (directory, []))[1].append(client_id)
        self._reads: dict[int, asyncio.Future[Mapping[str, App | RemoteError]]] = {}

    async def app(self, directory: Directory, client_id: str) -> App:
        """The app; RemoteError as ``directory.read_app(client_id)`` would raise it."""
        key = id(directory)
        read = self._reads.get(key)
        if read is None:
            read = self._reads[key] = asyncio.ensure_future(self._read(*self._wanted[key]))
        # Shielded: a target cancelled while waiting must not cancel the read the others wait for.
        found = (await asyncio.shield(read)).get(client_id)
        if found is None:  # asked for an app it was not told about: read it alone
            return await directory.read_app(client_id)
        if isinstance(found, RemoteError):
            raise found.about(found.target)  # one error object per target: each gets its own traceback
        return found

    @staticmethod
    async def _read(directory: Directory, client_ids: list[str]) -> Mapping[str, App | RemoteError]:
        unique = list(dict.fromkeys(client_ids))
        if len(unique) > 1:
            return await directory.read_apps(unique)
        # One app of this tenant in the pass: one GET is the whole read.
        try:
            return {unique[0]: await directory.read_app(unique[0])}
        except RemoteError as error:
            return {unique[0]: error}

    async def close(self) -> None:
        """Cancel a read nobody waits for any more (a pass that ended early)."""
        for read in self._reads.values():
            if not read.done():
                read.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await read
