"""Push receipts and intents in a Kubernetes ConfigMap, for pods without a persistent volume.

The ConfigMap ``<name>`` in ``<namespace>`` holds two keys per target: ``<target>.json``, the same
``{sink id: receipt}`` document the file backend writes, and ``<target>.intents``, its intents document
(one ends in ``.json``, the other in ``.intents``: whatever the target names, no two keys meet).
Updates are optimistic: a PUT carries the ``resourceVersion`` it read and is redone on 409 Conflict, so
two writers never lose each other's receipts. The writes waiting in one process (a pass's concurrent
targets) are committed together, one PUT for all, so only other processes' writes (workers of `run
--workers`, shards sharing the ConfigMap) can conflict, and a conflict is redone after a random wait.
Reads in flight at once share one GET when no write of this process came between. The pod's service
account needs get and update on that one ConfigMap, which deploy/components/kubernetes-state ships
together with its Role (a ConfigMap that does not exist yet is created with a POST, which that Role
does not allow: re-applying the component makes it).

What :meth:`KubernetesStateStore.lock` promises is exactly this: passes over one target through the same store
object take turns (an asyncio lock per target). It reaches no other store object, so no other process or pod:
across them, the CronJob's ``concurrencyPolicy: Forbid``, the daemon's single replica and shards and workers
of a pass that never share a target (a tenant's targets stay in one) keep one pass per target, and the
rotation protocol survives two at once anyway (DESIGN.md, I6). A lease in the ConfigMap would make it reach
further, at a price not worth paying here: every take and release would rewrite the whole ConfigMap that every
pod (and every shard) rewrites for its receipts, turning its writes into 409 retries at fleet scale; the lease
would need renewing through a pass as long as ``verify_timeout`` and an expiry after a killed pod, and an
expired lease excludes nothing without fencing of the writes it guards. Receipts and intents are never lost to
a concurrent writer either way: every write is optimistic (above).

A target's key that cannot be read is :class:`~service.errors.StateCorrupt` for that target only,
and is never overwritten. Answers are read up to a limit (a ConfigMap holds at most
1 MiB), and an error answer is reduced to the API's reason and a capped message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import ssl
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from service.adapters.state_file import (
    MAX_RECEIPTS_BYTES,
    decode_document,
    decode_intents,
    encode_intents,
    encode_receipt,
    recovery_hint,
    with_intent,
)
from service.errors import ConfigError, FailureReason, RemoteError, StateCorrupt
from service.local_files import KIB, MIB, FileProblem, read_limited
from service.model import Intent
from service.ports import Receipt

_T = TypeVar("_T")
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_CONFLICT_RETRIES = 12
_CONFLICT_WAIT = 0.05  # seconds before the first redo; doubled each time, up to 2 s
# A ConfigMap's data is at most 1 MiB; its JSON form with metadata (managedFields) stays well under this.
_MAX_BODY = 4 * MIB
_MAX_ERROR_BODY = 16 * KIB
_MAX_TOKEN = 64 * KIB  # a projected service account token is about 1 KB


class _TooLarge(Exception):
    pass


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.content.iter_chunked(64 * KIB):
        total += len(chunk)
        if total > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _read_small(path: Path) -> str:
    try:
        return read_limited(path, _MAX_TOKEN).decode("utf-8").strip()
    except (FileProblem, UnicodeDecodeError) as exc:
        raise OSError(f"{path}: {exc}") from None


class KubernetesStateStore:
    """:class:`service.ports.StateStore` in a ConfigMap, through the Kubernetes API."""

    def __init__(
        self,
        namespace: str | None,
        name: str,
        *,
        api_url: str | None = None,
        token_file: Path = SERVICE_ACCOUNT / "token",
        ca_file: Path | None = SERVICE_ACCOUNT / "ca.crt",
    ) -> None:
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if api_url is None and not host:
            raise ConfigError(
                "state.backend kubernetes: not running in a cluster (KUBERNETES_SERVICE_HOST is not set); "
                "use state.backend file outside Kubernetes"
            )
        if namespace is None:
            try:
                namespace = _read_small(SERVICE_ACCOUNT / "namespace")
            except OSError:
                raise ConfigError("state.namespace: not given and the pod's namespace file is missing") from None
        self._where = f"ConfigMap {namespace}/{name}"
        self._base = f"{api_url or f'https://{host}:{port}'}/api/v1/namespaces/{namespace}/configmaps"
        self._name = name
        self._token_file = token_file
        self._ca_file = ca_file
        self._locks: dict[str, asyncio.Lock] = {}
        self._session: aiohttp.ClientSession | None = None
        # Writes waiting to be committed together, and the one writer at a time that commits them.
        self._waiting: list[tuple[Callable[[dict[str, str]], None], asyncio.Future[None]]] = []
        self._writing = asyncio.Lock()
        self._written = 0  # writes this process made: a shared read must have begun after the last one
        self._reading: tuple[int, asyncio.Future[tuple[dict[str, Any] | None, dict[str, str]]]] | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            context = ssl.create_default_context(cafile=str(self._ca_file)) if self._ca_file else None
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context or True))
        return self._session

    async def close(self) -> None:
        """Close the HTTP session to the API server (a later call opens a new one)."""
        if self._session is not None:
            await self._session.close()

    def _headers(self) -> dict[str, str]:
        # Read on every call: the projected token is rotated by the kubelet.
        try:
            token = _read_small(self._token_file)
        except OSError as exc:
            raise RemoteError(
                f"cannot read the service account token ({exc.strerror or exc})",
                service="kubernetes",
                target=self._where,
                reason=FailureReason.PERMISSION_DENIED,
                transient=False,
                hint="mount the service account token (automountServiceAccountToken) for the kubernetes backend",
            ) from None
        return {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    async def _error(self, response: aiohttp.ClientResponse, operation: str) -> RemoteError:
        status = response.status
        # The API's own Status reason and message, capped: never the raw answer (a proxy may echo anything).
        detail = ""
        with contextlib.suppress(_TooLarge, ValueError, aiohttp.ClientError):
            body = json.loads(await _read_capped(response, _MAX_ERROR_BODY))
            if isinstance(body, dict):
                detail = " ".join(str(body.get(k) or "") for k in ("reason", "message")).strip()[:200]
        reason = FailureReason.PERMISSION_DENIED if status in (401, 403) else FailureReason.UNEXPECTED
        return self._failure(f"{operation} answered {status}" + (f": {detail}" if detail else ""), status, reason)

    def _failure(
        self,
        message: str,
        status: int | None,
        reason: FailureReason = FailureReason.UNEXPECTED,
    ) -> RemoteError:
        return RemoteError(
            message,
            service="kubernetes",
            target=f"configmap {self._name}",
            reason=reason,
            transient=status is not None and (status >= 500 or status == 429),
            status=status,
            hint=(
                "the service account needs get and update on this ConfigMap, and the ConfigMap must exist: "
                "deploy/components/kubernetes-state ships both (the ConfigMap and a Role with get and update on "
                "it); re-apply the component, or your overlay that includes it"
            ),
        )

    async def _read(self, *, fresh: bool = False) -> tuple[dict[str, Any] | None, dict[str, str]]:
        """The ConfigMap and its data, to read only. Reads in flight together share one GET, as long as it began
        after this process's last write (a read never misses what this process wrote); ``fresh``: a GET of its
        own, whose data the caller may change."""
        if fresh:
            return await self._get()
        shared = self._reading
        if shared is None or shared[0] != self._written or shared[1].done():
            shared = (self._written, asyncio.ensure_future(self._get()))
            self._reading = shared
        return await asyncio.shield(shared[1])

    async def _get(self) -> tuple[dict[str, Any] | None, dict[str, str]]:
        async with self._client().get(f"{self._base}/{self._name}", headers=self._headers()) as response:
            if response.status == 404:
                return None, {}
            if response.status != 200:
                raise await self._error(response, "reading the state ConfigMap")
            try:
                body = json.loads(await _read_capped(response, _MAX_BODY))
            except _TooLarge:
                raise self._failure(
                    f"reading the state ConfigMap: the answer is larger than {_MAX_BODY} bytes", 200
                ) from None
            except ValueError:
                raise self._failure("reading the state ConfigMap: the answer is not JSON", 200) from None
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(body, dict) or not isinstance(data, dict | None):
                raise self._failure("reading the state ConfigMap: the answer is not a ConfigMap", 200)
            return body, {str(k): str(v) for k, v in (data or {}).items()}

    def _decoded(
        self, data: dict[str, str], target: str, key: str, decode: Callable[[str], _T], empty: _T, what: str
    ) -> _T:
        text = data.get(key)
        if text is None:
            return empty
        where = f"key {key} of {self._where}"
        try:
            if len(text) > MAX_RECEIPTS_BYTES:
                raise ValueError(f"it is more than the {MAX_RECEIPTS_BYTES} bytes allowed")
            return decode(text)
        except ValueError as exc:
            raise StateCorrupt(target, where, str(exc), hint=recovery_hint(where), what=what) from None

    def _document(self, data: dict[str, str], target: str) -> dict[str, Receipt]:
        return self._decoded(data, target, f"{target}.json", decode_document, {}, "push receipts")

    def _intents(self, data: dict[str, str], target: str) -> tuple[Intent, ...]:
        return self._decoded(data, target, f"{target}.intents", decode_intents, (), "intents")

    async def get(self, target: str, sink: str) -> Receipt | None:
        """The receipt, or None if none was recorded; StateCorrupt if the target's key cannot be read."""
        _, data = await self._read()
        return self._document(data, target).get(sink)

    async def put(self, target: str, sink: str, receipt: Receipt) -> None:
        """Written when it returns; StateCorrupt (and nothing written) if the target's key cannot be read."""

        def change(data: dict[str, str]) -> None:
            document = {k: encode_receipt(r) for k, r in self._document(data, target).items()}
            document[sink] = encode_receipt(receipt)
            data[f"{target}.json"] = json.dumps(document, indent=2, sort_keys=True)

        await self._update(change)

    async def intents(self, target: str) -> tuple[Intent, ...]:
        """The target's intents, oldest first; () if none; StateCorrupt if its intents key cannot be read."""
        _, data = await self._read()
        return self._intents(data, target)

    async def add_intent(self, target: str, intent: Intent) -> None:
        """Written when it returns; StateCorrupt (and nothing written) if the intents key cannot be read."""

        def change(data: dict[str, str]) -> None:
            data[f"{target}.intents"] = encode_intents(with_intent(self._intents(data, target), intent))

        await self._update(change)

    def _unreadable(self, data: dict[str, str], target: str) -> list[str]:
        keys = []
        for key, read in ((f"{target}.json", self._document), (f"{target}.intents", self._intents)):
            try:
                read(data, target)
            except StateCorrupt:
                keys.append(key)
        return keys

    async def set_aside(self, target: str, now: datetime) -> str | None:
        """Rename each of the target's keys that cannot be read to ``<key>.corrupt-<UTC time>`` (kept for a
        person); the new keys' description, or None if none had to go. Readable keys stay."""
        suffix = f".corrupt-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}"
        _, data = await self._read()
        keys = self._unreadable(data, target)
        if not keys:
            return None

        def change(data: dict[str, str]) -> None:
            for key in self._unreadable(data, target):  # read again for each try: another writer may have been
                data[key + suffix] = data.pop(key)

        await self._update(change)
        return "; ".join(f"key {key}{suffix} of {self._where}" for key in keys)

    async def _update(self, change: Callable[[dict[str, str]], None]) -> None:
        """Apply ``change`` to the ConfigMap's data; written when it returns.

        The changes waiting in this process are committed together, by one writer at a time: one read
        and one PUT for all of them, so that a pass's concurrent targets do not race each other. A PUT
        that lost a race to another process (409) waits a little and is redone on a fresh read. A change
        that raises (the target's key cannot be read) fails alone, before it changed anything.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((change, done))
        async with self._writing:
            if self._waiting:  # else an earlier writer committed this change with its own
                batch, self._waiting = self._waiting, []
                await self._commit(batch)
        await done

    async def _commit(self, batch: list[tuple[Callable[[dict[str, str]], None], asyncio.Future[None]]]) -> None:
        try:
            for attempt in range(_CONFLICT_RETRIES):
                body, data = await self._read(fresh=True)
                applied = []
                for change, done in batch:
                    if done.done():
                        continue  # failed on an earlier read
                    try:
                        change(data)
                    except Exception as error:  # noqa: BLE001 - that change's own failure, handed to its caller
                        done.set_exception(error)
                        continue
                    applied.append(done)
                if not applied:
                    return
                if await self._write(body, data):
                    for done in applied:
                        done.set_result(None)
                    return
                # Another writer got in between: a random wait, so that writers who met do not meet again.
                await asyncio.sleep(random.uniform(0.5, 1.5) * min(_CONFLICT_WAIT * 2**attempt, 2.0))  # noqa: S311
            raise self._failure("writing the state ConfigMap: conflicts did not stop", 409)
        except Exception as error:  # noqa: BLE001 - every change of the batch fails with it
            for _, done in batch:
                if not done.done():
                    done.set_exception(error)
        except BaseException:  # cancelled: so are the changes it was committing
            for _, done in batch:
                done.cancel()
            raise

    async def _write(self, body: dict[str, Any] | None, data: dict[str, str]) -> bool:
        """One create or update; False when it lost a race (409)."""
        if body is None:
            request = self._client().post(
                self._base,
                json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": self._name}, "data": data},
                headers=self._headers(),
            )
        else:
            body["data"] = data
            request = self._client().put(f"{self._base}/{self._name}", json=body, headers=self._headers())
        async with request as response:
            if response.status in (200, 201):
                self._written += 1
                return True
            if response.status != 409:  # 409: someone wrote in between; read again and redo
                raise await self._error(response, "writing the state ConfigMap")
        return False

    @contextlib.asynccontextmanager
    async def lock(self, target: str) -> AsyncIterator[None]:
        """Passes over ``target`` through this store object take turns; other store objects, processes and
        pods are not excluded (see the module's docstring for what keeps them apart, and why no lease)."""
        async with self._locks.setdefault(target, asyncio.Lock()):
            yield
