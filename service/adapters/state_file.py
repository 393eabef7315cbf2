"""Push receipts in a directory: one JSON file per target, written atomically, locked per target.

Layout: ``<path>/receipts/<target>.json`` (``{sink id: receipt}``) and ``<path>/locks/<target>.lock``.
A write goes to a temporary file that is fsynced and renamed over the old one, then the directory is
fsynced: a crash leaves either the old receipt or the new one, never half of one.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

from service.errors import ConfigError
from service.ports import Receipt

_LOCK_POLL = 0.1  # seconds between tries for a lock another pass holds


def encode_receipt(receipt: Receipt) -> dict[str, Any]:
    return {
        "key_id": receipt.key_id,
        "status": receipt.status,
        "since": receipt.since.isoformat(),
        "history": list(receipt.history),
    }


def decode_receipt(data: dict[str, Any]) -> Receipt:
    return Receipt(
        key_id=str(data["key_id"]),
        status="pending" if data.get("status") == "pending" else "held",
        since=datetime.fromisoformat(data["since"]),
        history=tuple(str(k) for k in data.get("history", ())),
    )


class FileStateStore:
    """:class:`service.ports.StateStore` in a local directory (a volume in a container)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._receipts = path / "receipts"
        self._locks = path / "locks"

    def check(self) -> None:
        """Create the directories, or say why they cannot be (before any network call)."""
        try:
            self._receipts.mkdir(parents=True, exist_ok=True)
            self._locks.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"state.path {self._path}: cannot create it ({exc.strerror}); mount a writable volume there "
                "or set state.path"
            ) from None
        if not os.access(self._receipts, os.W_OK):
            raise ConfigError(f"state.path {self._path}: not writable by this user; fix its owner or mode")

    def _file(self, target: str) -> Path:
        return self._receipts / f"{target}.json"

    def _read(self, target: str) -> dict[str, Any]:
        try:
            data = json.loads(self._file(target).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return data if isinstance(data, dict) else {}

    async def get(self, target: str, sink: str) -> Receipt | None:
        entry = self._read(target).get(sink)
        return decode_receipt(entry) if isinstance(entry, dict) else None

    async def put(self, target: str, sink: str, receipt: Receipt) -> None:
        data = self._read(target)
        data[sink] = encode_receipt(receipt)
        self._write(self._file(target), json.dumps(data, indent=2, sort_keys=True))

    def _write(self, path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    @contextlib.asynccontextmanager
    async def lock(self, target: str) -> AsyncIterator[None]:
        self._locks.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._locks / f"{target}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            # Polled, not blocking in a thread: a SIGTERM must be able to cancel the wait.
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(_LOCK_POLL)
            yield
        finally:
            os.close(fd)  # closing releases the lock
