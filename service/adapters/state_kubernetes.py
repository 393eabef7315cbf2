"""Push receipts in a Kubernetes ConfigMap, for pods without a persistent volume.

The ConfigMap ``<name>`` in ``<namespace>`` holds one key per target (``<target>.json``, the same
``{sink id: receipt}`` document the file backend writes). Updates are optimistic: a PUT carries the
``resourceVersion`` it read and is redone on 409 Conflict, so two writers never lose each other's
receipts. The pod's service account needs get, create and update on that one ConfigMap.

The in-process lock serialises passes inside one process; across pods, the CronJob's
``concurrencyPolicy: Forbid`` and the daemon's single replica keep one writer at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from service.adapters.state_file import decode_receipt, encode_receipt
from service.errors import ConfigError, FailureReason, RemoteError
from service.ports import Receipt

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_CONFLICT_RETRIES = 5


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
                namespace = (SERVICE_ACCOUNT / "namespace").read_text().strip()
            except OSError:
                raise ConfigError("state.namespace: not given and the pod's namespace file is missing") from None
        self._base = f"{api_url or f'https://{host}:{port}'}/api/v1/namespaces/{namespace}/configmaps"
        self._name = name
        self._token_file = token_file
        self._ca_file = ca_file
        self._locks: dict[str, asyncio.Lock] = {}
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            context = ssl.create_default_context(cafile=str(self._ca_file)) if self._ca_file else None
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context or True))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _headers(self) -> dict[str, str]:
        # Read on every call: the projected token is rotated by the kubelet.
        token = self._token_file.read_text().strip()
        return {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def _error(self, status: int, text: str, operation: str) -> RemoteError:
        reason = FailureReason.PERMISSION_DENIED if status in (401, 403) else FailureReason.UNEXPECTED
        return RemoteError(
            f"{operation} answered {status}: {text[:200]}", service="kubernetes", target=f"configmap {self._name}",
            reason=reason, transient=status >= 500 or status == 429, status=status,
            hint="give the service account get, create and update on this ConfigMap (deploy/ has the Role)",
        )

    async def _read(self) -> tuple[dict[str, Any] | None, dict[str, str]]:
        async with self._client().get(f"{self._base}/{self._name}", headers=self._headers()) as response:
            if response.status == 404:
                return None, {}
            if response.status != 200:
                raise self._error(response.status, await response.text(), "reading the state ConfigMap")
            body = await response.json()
            return body, dict(body.get("data") or {})

    async def get(self, target: str, sink: str) -> Receipt | None:
        _, data = await self._read()
        entry = json.loads(data.get(f"{target}.json", "{}")).get(sink)
        return decode_receipt(entry) if isinstance(entry, dict) else None

    async def put(self, target: str, sink: str, receipt: Receipt) -> None:
        for _ in range(_CONFLICT_RETRIES):
            body, data = await self._read()
            document = json.loads(data.get(f"{target}.json", "{}"))
            document[sink] = encode_receipt(receipt)
            data[f"{target}.json"] = json.dumps(document, indent=2, sort_keys=True)
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
                    return
                if response.status != 409:  # 409: someone wrote in between; read again and redo
                    raise self._error(response.status, await response.text(), "writing the state ConfigMap")
        raise self._error(409, "conflicts did not stop", "writing the state ConfigMap")

    @contextlib.asynccontextmanager
    async def lock(self, target: str) -> AsyncIterator[None]:
        async with self._locks.setdefault(target, asyncio.Lock()):
            yield
