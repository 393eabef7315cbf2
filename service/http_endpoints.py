"""The daemon's HTTP side: ``/healthz`` (liveness), ``/readyz`` (readiness) and ``/metrics``.

The probes answer from what the daemon already knows (no remote call per probe: a kubelet asking every
few seconds must not turn into Graph traffic); ``/metrics`` renders the Metrics registry. Bodies never
hold a secret: counts, times, target names and failure reasons only.

The server is a small HTTP/1.1 responder of its own rather than a web framework, because its job is to
stay up when someone floods the port (the listen address is every interface, for the kubelet):

- at most ``max_connections`` at once; a new connection beyond that closes the oldest one of the peer
  holding the most, so one flooding address cannot lock the kubelet or Prometheus out;
- the request head must arrive whole within ``head_timeout`` and within ``max_head_bytes``; every
  answer closes the connection (no keep-alive, so no idle connections to hold);
- the listen backlog, and with it how many sockets are accepted in one go, is bounded too: together
  the server never holds more than about ``max_connections + backlog`` descriptors, and the pass keeps
  the rest of the process's budget for its own connections (see :func:`Limits.for_open_files`);
- nothing a client sent is logged (a malformed request is counted, not quoted), repeated lines are
  rate-limited, and no ``Server`` header names the software or its version.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol, cast

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from service import logs, redact
from service.catalogue import Event


class StatusSource(Protocol):
    """What the probe endpoints ask: the daemon, as :class:`service.daemon.Daemon` answers."""

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


# --- what is served ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """An answer: status, content type and body."""

    status: int
    content_type: str
    body: bytes


Routes = Mapping[str, Callable[[], Reply]]


def _json(body: dict[str, Any], status: int = 200) -> Reply:
    return Reply(status, "application/json", redact.scrub(json.dumps(body, indent=2)).encode())


def make_routes(status: StatusSource, registry: CollectorRegistry) -> dict[str, Callable[[], Reply]]:
    """Path -> what ``GET`` answers there."""

    def readyz() -> Reply:
        ready, body = status.readiness()
        return _json(body, 200 if ready else 503)

    return {
        "/healthz": lambda: _json(status.liveness()),
        "/readyz": readyz,
        "/metrics": lambda: Reply(200, CONTENT_TYPE_LATEST, generate_latest(registry)),
    }


# --- the server ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """What one client, or many, may take from the server."""

    max_connections: int = 64
    backlog: int = 64  # the listen queue, and how many sockets asyncio accepts in one turn of the loop
    head_timeout: float = 5.0  # seconds from the connection to the end of the request head
    write_timeout: float = 10.0  # seconds to hand the answer over and close
    max_head_bytes: int = 8192  # request line and headers; a probe sends about 200

    @classmethod
    def for_open_files(cls, open_files: int) -> Limits:
        """The server's share of a process allowed ``open_files`` descriptors: at most about a quarter
        (connections plus the backlog accepted in one go), never more than the defaults."""
        share = max(4, min(cls.max_connections, open_files // 8))
        return cls(max_connections=share, backlog=share)


# Origin-form only ("GET /readyz HTTP/1.1"): nothing here needs absolute URIs, CONNECT or OPTIONS *.
_REQUEST_LINE = re.compile(rb"([A-Z]{1,16}) (/[\x21-\x7e]*) HTTP/1\.[01]")
_SEPARATOR = b"\r\n\r\n"


class HttpServer:
    """``await start()`` binds and serves (port 0 picks a free one: see ``address``); ``await stop()``."""

    def __init__(self, routes: Routes, host: str, port: int, limits: Limits | None = None) -> None:
        self._routes = routes
        self._host = host
        self._port = port
        self.limits = limits or Limits()
        self.address: tuple[str, int] = (host, port)
        self._server: asyncio.Server | None = None
        # peer address -> its open connections, oldest first
        self._peers: dict[str, OrderedDict[asyncio.Transport, None]] = {}
        self._open = 0
        self._log = logs.get_logger()
        self._limiter = logs.RepeatLimiter()

    @property
    def connections(self) -> int:
        """How many connections are open now."""
        return self._open

    async def start(self) -> None:
        """Listen on the host and port; :attr:`address` is where it listens (port 0: the one it got)."""
        self._server = await asyncio.start_server(
            self._serve,
            self._host,
            self._port,
            limit=self.limits.max_head_bytes,
            backlog=self.limits.backlog,
        )
        bound = self._server.sockets[0].getsockname()
        self.address = (str(bound[0]), int(bound[1]))

    async def stop(self) -> None:
        """Stop listening and drop every open connection."""
        if self._server is None:
            return
        self._server.close()
        for connections in list(self._peers.values()):
            for transport in list(connections):
                transport.abort()
        await self._server.wait_closed()
        self._server = None

    @property
    def url(self) -> str:
        """Where a client on this host reaches the server (a wildcard address is reached on loopback)."""
        host, port = self.address
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104 - compared, not bound
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    # --- connections ---------------------------------------------------------------------------

    def _admit(self, peer: str, transport: asyncio.Transport) -> None:
        if self._open >= self.limits.max_connections:
            hog = max(self._peers, key=lambda p: len(self._peers[p]))
            victim = next(iter(self._peers[hog]))
            self._release(hog, victim)
            victim.abort()
            self._warn(
                Event.HTTP_CONNECTIONS_FULL,
                "a connection was closed to make room for a new one",
                max_connections=self.limits.max_connections,
                closed_peer=hog,
                hint="someone holds many connections open: check who may reach this port (deploy/'s NetworkPolicy)",
            )
        self._peers.setdefault(peer, OrderedDict())[transport] = None
        self._open += 1

    def _release(self, peer: str, transport: asyncio.Transport) -> None:
        connections = self._peers.get(peer)
        if connections is None or transport not in connections:
            return  # already closed to make room
        del connections[transport]
        self._open -= 1
        if not connections:
            del self._peers[peer]

    def _warn(self, event: Event, message: str, **fields: Any) -> None:
        suppressed = self._limiter.admit(event)
        if suppressed is not None:
            self._log.warning(event, message=message, suppressed=suppressed, **fields)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        transport = cast(asyncio.Transport, writer.transport)  # a TCP connection's, whatever typeshed says
        peername = writer.get_extra_info("peername")
        peer = str(peername[0]) if isinstance(peername, tuple) else "unknown"
        self._admit(peer, transport)
        try:
            try:
                reply, head_only = await self._read_and_answer(reader, peer)
            except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
                raise
            except Exception as error:  # noqa: BLE001 - a probe's bug answers 500 and is logged, never kills the server
                self._warn(Event.HTTP_FAILED, "answering a request failed", error=type(error).__name__)
                reply, head_only = _plain(HTTPStatus.INTERNAL_SERVER_ERROR), False
            await self._send(writer, reply, head_only=head_only)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the client went away, was too slow, or was closed to make room: nothing to answer
        finally:
            self._release(peer, transport)
            transport.abort()

    async def _read_and_answer(self, reader: asyncio.StreamReader, peer: str) -> tuple[Reply, bool]:
        """The answer, and whether to send its head only (a HEAD request)."""
        try:
            async with asyncio.timeout(self.limits.head_timeout):
                head = await reader.readuntil(_SEPARATOR)
        except asyncio.LimitOverrunError:
            self._refused(peer, "request head too large")
            return _plain(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE), False
        match = _REQUEST_LINE.fullmatch(head.split(b"\r\n", 1)[0])
        if match is None:
            self._refused(peer, "not an HTTP/1.x request line")
            return _plain(HTTPStatus.BAD_REQUEST), False
        method, target = match.group(1), match.group(2)
        if method not in (b"GET", b"HEAD"):
            return _plain(HTTPStatus.METHOD_NOT_ALLOWED), False
        route = self._routes.get(target.split(b"?", 1)[0].decode("ascii"))
        return (route() if route else _plain(HTTPStatus.NOT_FOUND)), method == b"HEAD"

    def _refused(self, peer: str, problem: str) -> None:
        # What the client sent is never logged: it may be anything, of any size.
        suppressed = self._limiter.admit(Event.HTTP_BAD_REQUEST)
        if suppressed is not None:
            self._log.debug(Event.HTTP_BAD_REQUEST, peer=peer, problem=problem, suppressed=suppressed)

    async def _send(self, writer: asyncio.StreamWriter, reply: Reply, *, head_only: bool) -> None:
        phrase = HTTPStatus(reply.status).phrase
        headers = [
            f"HTTP/1.1 {reply.status} {phrase}",
            f"Content-Type: {reply.content_type}",
            f"Content-Length: {len(reply.body)}",
            "Cache-Control: no-store",
            "Connection: close",
        ]
        if reply.status == HTTPStatus.METHOD_NOT_ALLOWED:
            headers.append("Allow: GET, HEAD")
        writer.write(("\r\n".join(headers) + "\r\n\r\n").encode("ascii"))
        if not head_only:
            writer.write(reply.body)
        async with asyncio.timeout(self.limits.write_timeout):
            await writer.drain()
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def _plain(status: HTTPStatus) -> Reply:
    return Reply(status.value, "text/plain; charset=utf-8", f"{status.value} {status.phrase}\n".encode())
