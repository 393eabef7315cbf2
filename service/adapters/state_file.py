"""Push receipts in a directory: one JSON file per target, written atomically, locked per target.

Layout: ``<path>/receipts/<target>.json`` (``{sink id: receipt}``) and ``<path>/locks/<target>.lock``.
A write goes to a temporary file that is fsynced and renamed over the old one, then the directory is
fsynced: a crash leaves either the old receipt or the new one, never half of one.

A receipts file that cannot be read (truncated by a full disk, edited by hand, replaced by something
else) is :class:`~service.errors.StateCorrupt` for its target only, and is never overwritten.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.errors import ConfigError, FailureReason, ServiceError, StateCorrupt
from service.local_files import MIB, FileProblem, read_limited
from service.ports import Receipt

_LOCK_POLL = 0.1  # seconds between tries for a lock another pass holds
# One target's receipts: a few sinks, each with at most 50 key ids of history, are a few KB.
MAX_RECEIPTS_BYTES = 1 * MIB


def encode_receipt(receipt: Receipt) -> dict[str, Any]:
    return {
        "key_id": receipt.key_id,
        "status": receipt.status,
        "since": receipt.since.isoformat(),
        "history": list(receipt.history),
    }


def decode_receipt(data: Any) -> Receipt:
    """A receipt from its JSON form; ValueError, naming what is wrong, if it is not one."""
    if not isinstance(data, dict):
        raise ValueError("a receipt is not a JSON object")
    key_id, status, since, history = data.get("key_id"), data.get("status", "held"), data.get("since"), \
        data.get("history", [])
    if not isinstance(key_id, str) or not key_id:
        raise ValueError("a receipt has no key_id")
    if status not in ("pending", "held"):
        raise ValueError("a receipt's status is neither pending nor held")
    if not isinstance(history, list) or not all(isinstance(k, str) for k in history):
        raise ValueError("a receipt's history is not a list of key ids")
    try:
        when = datetime.fromisoformat(since) if isinstance(since, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise ValueError("a receipt's since is not a date and time with its UTC offset")
    return Receipt(key_id=key_id, status=status, since=when.astimezone(UTC), history=tuple(history))


def decode_document(text: bytes | str) -> dict[str, Receipt]:
    """A target's ``{sink id: receipt}`` document; ValueError, naming what is wrong, if it is not one."""
    try:
        data = json.loads(text)
    except UnicodeDecodeError:
        raise ValueError("it is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        # The position only: the decoder's message never quotes the text, and neither does this.
        raise ValueError(f"it is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ValueError("it is not a JSON object of sink id -> receipt")
    return {str(sink): decode_receipt(entry) for sink, entry in data.items()}


def recovery_hint(document: str) -> str:
    """What to do about a receipts document that cannot be read, and what happens then."""
    return (
        f"move {document} aside (keep it for a look) and run again: this target's push sinks then count as "
        "holding an unknown secret, as when receipts are lost: the pass re-pushes the current secret from Key "
        "Vault if a Key Vault sink of the target holds it, else rotates and pushes a new one, and no "
        "credential counts as an orphan while a push sink has no receipt"
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

    def _read(self, target: str) -> dict[str, Receipt]:
        path = self._file(target)
        try:
            raw = read_limited(path, MAX_RECEIPTS_BYTES, follow_symlinks=False)
            return decode_document(raw)
        except FileNotFoundError:
            return {}
        except (FileProblem, ValueError) as exc:
            raise StateCorrupt(target, str(path), str(exc), hint=recovery_hint(str(path))) from None
        except OSError as exc:
            raise self._unusable(path, "read", exc) from None

    def _unusable(self, path: Path, doing: str, exc: OSError) -> ServiceError:
        denied = exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
        return ServiceError(
            f"state file {path}: cannot {doing} it ({exc.strerror or exc})",
            reason=FailureReason.PERMISSION_DENIED if denied else FailureReason.SINK_FAILED,
            hint=f"state.path {self._path} must be a writable volume with free space, owned by the rotator's user",
        )

    async def get(self, target: str, sink: str) -> Receipt | None:
        """The receipt, or None if none was recorded; StateCorrupt if the target's file cannot be read."""
        return self._read(target).get(sink)

    async def put(self, target: str, sink: str, receipt: Receipt) -> None:
        """Durable when it returns; StateCorrupt (and nothing written) if the target's file cannot be read."""
        data = {sink_id: encode_receipt(r) for sink_id, r in self._read(target).items()}
        data[sink] = encode_receipt(receipt)
        path = self._file(target)
        try:
            self._write(path, json.dumps(data, indent=2, sort_keys=True))
        except OSError as exc:
            raise self._unusable(path, "write", exc) from None

    async def set_aside(self, target: str, now: datetime) -> str | None:
        """Move the target's receipts file out of the way (to ``<name>.corrupt-<UTC time>``, kept for a
        person); where it went, or None if there was none. Afterwards the target has no receipts."""
        path = self._file(target)
        aside = path.with_name(f"{path.name}.corrupt-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._unusable(path, "move", exc) from None
        return str(aside)

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
