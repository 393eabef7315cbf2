"""Push receipts and intents in a directory: JSON files per target, written atomically, locked per target.

Layout: ``<path>/receipts/<target>.json`` (``{sink id: receipt}``), ``<path>/intents/<target>.json``
(``{"intents": [...]}``, the credentials the engine set out to create) and ``<path>/locks/<target>.lock``.
A write goes to a temporary file that is fsynced and renamed over the old one, then the directory is
fsynced: a crash leaves either the old document or the new one, never half of one. Intents have a file
of their own so that a version of this service from before them reads its receipts as it always did.

A file that cannot be read (truncated by a full disk, edited by hand, replaced by something else) is
:class:`~service.errors.StateCorrupt` for its target only, and is never overwritten.

Writes run in a thread (the loop's default executor): their two fsyncs take milliseconds of disk, and on
the event loop they stalled every other target of the pass for that long (a fifth of the wall time of a
pass that rotates every target). Reads stay on the loop: a small file read costs less than the hand-over
to a thread, and a healthy pass makes two a target.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from service.errors import ConfigError, FailureReason, ServiceError, StateCorrupt
from service.local_files import MIB, FileProblem, read_limited
from service.model import Intent
from service.ports import MAX_INTENTS, Receipt

_T = TypeVar("_T")
_LOCK_POLL = 0.1  # seconds between tries for a lock another pass holds
# One target's receipts: a few sinks, each with at most 50 key ids of history, are a few KB.
MAX_RECEIPTS_BYTES = 1 * MIB


def encode_receipt(receipt: Receipt) -> dict[str, Any]:
    """A receipt's JSON form (the inverse of :func:`decode_receipt`)."""
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
    key_id, status, since, history = (
        data.get("key_id"),
        data.get("status", "held"),
        data.get("since"),
        data.get("history", []),
    )
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


def _json(text: bytes | str) -> Any:
    try:
        return json.loads(text)
    except UnicodeDecodeError:
        raise ValueError("it is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        # The position only: the decoder's message never quotes the text, and neither does this.
        raise ValueError(f"it is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None


def decode_document(text: bytes | str) -> dict[str, Receipt]:
    """A target's ``{sink id: receipt}`` document; ValueError, naming what is wrong, if it is not one."""
    data = _json(text)
    if not isinstance(data, dict):
        raise ValueError("it is not a JSON object of sink id -> receipt")
    return {str(sink): decode_receipt(entry) for sink, entry in data.items()}


def _decode_intent(data: Any) -> Intent:
    if not isinstance(data, dict):
        raise ValueError("an intent is not a JSON object")
    name, at, reason, key_id = data.get("name"), data.get("at"), data.get("reason"), data.get("key_id")
    if not isinstance(name, str) or not name or not isinstance(reason, str):
        raise ValueError("an intent has no name or no reason")
    if key_id is not None and (not isinstance(key_id, str) or not key_id):
        raise ValueError("an intent's key_id is not a key id")
    refused = data.get("refused", False)
    if not isinstance(refused, bool):
        raise ValueError("an intent's refused is neither true nor false")
    try:
        when = datetime.fromisoformat(at) if isinstance(at, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise ValueError("an intent's at is not a date and time with its UTC offset")
    return Intent(name=name, at=when.astimezone(UTC), reason=reason, key_id=key_id, refused=refused)


def decode_intents(text: bytes | str) -> tuple[Intent, ...]:
    """A target's intents document; ValueError, naming what is wrong, if it is not one."""
    data = _json(text)
    entries = data.get("intents") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError('it is not a JSON object with a list "intents"')
    return tuple(_decode_intent(entry) for entry in entries)


def encode_intents(intents: tuple[Intent, ...]) -> str:
    """A target's intents document, the inverse of :func:`decode_intents`."""
    entries = [
        {
            "name": i.name,
            "at": i.at.isoformat(),
            "reason": i.reason,
            **({"key_id": i.key_id} if i.key_id else {}),
            **({"refused": True} if i.refused else {}),
        }
        for i in intents
    ]
    return json.dumps({"intents": entries}, indent=2)


def with_intent(intents: tuple[Intent, ...], intent: Intent) -> tuple[Intent, ...]:
    """``intents`` with ``intent`` in place of the one with its name and time (its key id, or its refusal,
    now known), else last; at most MAX_INTENTS of them. Two intents may share a name (two rotations within
    one second)."""
    same = [i for i in intents if (i.name, i.at) == (intent.name, intent.at)]
    if same:
        return tuple(intent if i is same[0] else i for i in intents)
    return (*intents, intent)[-MAX_INTENTS:]


def recovery_hint(document: str) -> str:
    """What happens to a receipts or intents document that cannot be read, and what is left to do."""
    return (
        f"the next `secret-rotator run` moves {document} aside (renamed to <name>.corrupt-<UTC time>, kept for a "
        "look) and carries on as when the state is lost: the target's push sinks count as holding an unknown "
        "secret, a Key Vault sink of the target re-sends its secret to them (else the pass rotates and pushes a "
        "new one), and nothing is retired until every push sink is known to hold a new secret. Nothing to do "
        "unless it happens again (`plan` and `status` change nothing)"
    )


class FileStateStore:
    """:class:`service.ports.StateStore` in a local directory (a volume in a container)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._receipts = path / "receipts"
        self._intents = path / "intents"
        self._locks = path / "locks"

    def check(self) -> None:
        """Create the directories, or say why they cannot be (before any network call)."""
        try:
            for directory in (self._receipts, self._intents, self._locks):
                directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"state.path {self._path}: cannot create it ({exc.strerror}); mount a writable volume there "
                "or set state.path"
            ) from None
        if not os.access(self._receipts, os.W_OK):
            raise ConfigError(f"state.path {self._path}: not writable by this user; fix its owner or mode")

    async def close(self) -> None:
        """Nothing to release: every file is closed after each read or write, every lock after its pass."""

    def _file(self, target: str) -> Path:
        return self._receipts / f"{target}.json"

    def _intents_file(self, target: str) -> Path:
        return self._intents / f"{target}.json"

    def _load(self, target: str, path: Path, decode: Callable[[bytes], _T], empty: _T, what: str) -> _T:
        try:
            raw = read_limited(path, MAX_RECEIPTS_BYTES, follow_symlinks=False)
            return decode(raw)
        except FileNotFoundError:
            return empty
        except (FileProblem, ValueError) as exc:
            raise StateCorrupt(target, str(path), str(exc), hint=recovery_hint(str(path)), what=what) from None
        except OSError as exc:
            raise self._unusable(path, "read", exc) from None

    def _read(self, target: str) -> dict[str, Receipt]:
        return self._load(target, self._file(target), decode_document, {}, "push receipts")

    def _read_intents(self, target: str) -> tuple[Intent, ...]:
        return self._load(target, self._intents_file(target), decode_intents, (), "intents")

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
        await asyncio.to_thread(self._put, target, sink, receipt)

    def _put(self, target: str, sink: str, receipt: Receipt) -> None:
        data = {sink_id: encode_receipt(r) for sink_id, r in self._read(target).items()}
        data[sink] = encode_receipt(receipt)
        path = self._file(target)
        try:
            self._write(path, json.dumps(data, indent=2, sort_keys=True))
        except OSError as exc:
            raise self._unusable(path, "write", exc) from None

    async def intents(self, target: str) -> tuple[Intent, ...]:
        """The target's intents, oldest first; () if none; StateCorrupt if its intents file cannot be read."""
        return self._read_intents(target)

    async def add_intent(self, target: str, intent: Intent) -> None:
        """Durable when it returns; StateCorrupt (and nothing written) if the intents file cannot be read."""
        await asyncio.to_thread(self._add_intent, target, intent)

    def _add_intent(self, target: str, intent: Intent) -> None:
        path = self._intents_file(target)
        try:
            self._write(path, encode_intents(with_intent(self._read_intents(target), intent)))
        except OSError as exc:
            raise self._unusable(path, "write", exc) from None

    async def set_aside(self, target: str, now: datetime) -> str | None:
        """Move each of the target's files that cannot be read out of the way (to ``<name>.corrupt-<UTC
        time>``, kept for a person); where they went, or None if none had to. Readable ones stay."""
        moved = []
        for path, read in ((self._file(target), self._read), (self._intents_file(target), self._read_intents)):
            try:
                read(target)
                continue
            except StateCorrupt:
                pass
            aside = path.with_name(f"{path.name}.corrupt-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}")
            try:
                os.rename(path, aside)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise self._unusable(path, "move", exc) from None
            moved.append(str(aside))
        return "; ".join(moved) or None

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
        """An exclusive flock on ``locks/<target>.lock``: it excludes every pass over the target by any process
        on this host that uses the same state directory (another store object, another `run`, a daemon);
        released when the pass ends or its process dies. (Over NFS, flock is only as good as the server.)"""
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
