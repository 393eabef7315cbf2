"""The daemon's HTTP side: ``/healthz`` (liveness), ``/readyz`` (readiness) and ``/metrics``.

The probes answer from what the daemon already knows (no remote call per probe: a kubelet asking every
few seconds must not turn into Graph traffic); ``/metrics`` renders the Metrics registry. Bodies never
hold a secret: counts, times, target names and failure reasons only.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from service import redact


class StatusSource(Protocol):
    def liveness(self) -> dict[str, Any]:
        """The body of ``/healthz``; answering at all is what proves the event loop runs."""
        ...

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether the daemon is ready, and the body of ``/readyz`` saying why (not)."""
        ...


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port``, ``:port`` (all IPv4 interfaces) -> (host, port); ValueError if not."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"{text!r} is not HOST:PORT (e.g. 0.0.0.0:8080, 127.0.0.1:9000, [::1]:8080)")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is not between 0 and 65535")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"{text!r}: an IPv6 address goes in brackets, e.g. [::1]:8080")
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: put an IPv6 address in brackets, e.g. [::]:8080")
    return host or "0.0.0.0", port  # noqa: S104 - listening on every interface is what ":8080" asks for


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(status=status, text=redact.scrub(json.dumps(body, indent=2)), content_type="application/json",
                        headers={"Cache-Control": "no-store"})


def make_app(status: StatusSource, registry: CollectorRegistry) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return _json(status.liveness())

    async def readyz(_: web.Request) -> web.Response:
        ready, body = status.readiness()
        return _json(body, 200 if ready else 503)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


class HttpServer:
    """``await start()`` binds and serves (port 0 picks a free one: see ``address``); ``await stop()``."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self._host = host
        self._port = port
        self.address: tuple[str, int] = (host, port)

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            raise
        bound = self._runner.addresses[0]
        self.address = (str(bound[0]), int(bound[1]))

    async def stop(self) -> None:
        await self._runner.cleanup()

    @property
    def url(self) -> str:
        """Where a client on this host reaches the server (a wildcard address is reached on loopback)."""
        host, port = self.address
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104 - compared, not bound
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
