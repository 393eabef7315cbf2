"""A sink type written as a module of service/sinks/ would be, to show that one module is all a new type takes.

``type: file`` writes each new secret into a local JSON file (mode 0600), with its key id and when it was
written, and reads its holding back from it. It is not a product feature: the tests register it for a
while (in process), or copy this file into a copy of the package (as a new module of service/sinks/).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from service.config.references import SecretRef
from service.model import App, Credential, Holding
from service.ports import Clock, Sink
from service.secret import Secret
from service.sinks.registry import PassClients, SinkSettings, SinkTarget, register


@register
class FileSinkSettings(SinkSettings):
    """A local file that holds the secret (for a consumer on the same host)."""

    type: Literal["file"]
    path: Path

    def sink_id(self) -> str:
        return f"file:{self.path}"

    def references(self) -> Iterator[tuple[str, SecretRef]]:
        return iter(())

    def build(self, target: SinkTarget, clients: PassClients) -> Sink:
        return FileSink(self.sink_id(), self.path, clients.clock)


class FileSink:
    """The engine's side: every version written is kept, newest last, as ``{key_id, since, value}``."""

    readable = True

    def __init__(self, sink_id: str, path: Path, clock: Clock) -> None:
        self.id = sink_id
        self._path = path
        self._clock = clock

    def _versions(self) -> list[dict[str, Any]]:
        if not self._path.exists():
            return []
        versions: list[dict[str, Any]] = json.loads(self._path.read_text(encoding="utf-8"))
        return versions

    async def read(self, app: App, *, history: bool = True) -> Holding:
        versions = self._versions()
        recorded = frozenset(v["key_id"] for v in versions)
        if not versions:
            return Holding(self.id, None, None, readable=True)
        latest = versions[-1]
        return Holding(
            self.id, latest["key_id"], datetime.fromisoformat(latest["since"]), readable=True, recorded=recorded
        )

    async def write(self, credential: Credential, secret: Secret, supersedes: frozenset[str] = frozenset()) -> None:
        # Read back like Key Vault: every version records its own key id, so `supersedes` is of no use here.
        versions = [
            *self._versions(),
            {"key_id": credential.key_id, "since": self._clock.now().isoformat(), "value": secret.reveal()},
        ]
        partial = self._path.with_suffix(".partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(versions, handle)
        partial.replace(self._path)

    async def read_secret(self, key_id: str) -> Secret:
        return Secret(next(v["value"] for v in reversed(self._versions()) if v["key_id"] == key_id))
