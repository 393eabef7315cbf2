"""The probes' HTTP server on its own, over real sockets on loopback: its limits and what it never says.

The flood as a whole (a real daemon process with few descriptors) is tests/reliability/test_flood.py;
these pin each limit down: the connection cap and whom it drops, the head timeout and size, malformed
requests, and the headers every answer carries.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from service import logs
from service.daemon import raise_open_files_limit
from service.http_endpoints import HttpServer, Limits, Reply

ATTACKER = "127.0.0.2"  # another loopback address: a second peer, as another pod would be


def broken() -> Reply:
    raise RuntimeError("a bug in a probe")


ROUTES = {
    "/readyz": lambda: Reply(200, "application/json", b'{"status": "ready"}'),
    "/broken": broken,
}

StartServer = Callable[..., Awaitable[HttpServer]]


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    started: list[HttpServer] = []

    async def start(**limits: Any) -> HttpServer:
        server = HttpServer(ROUTES, "127.0.0.1", 0, Limits(**limits))
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


async def exchange(server: HttpServer, request: bytes, source: str = "127.0.0.1") -> bytes:
    """Send ``request`` and read the whole answer (the server closes every connection after it)."""
    reader, writer = await asyncio.open_connection(*server.address, local_addr=(source, 0))
    try:
        writer.write(request)
        async with asyncio.timeout(5):
            return await reader.read()
    finally:
        writer.close()


async def slow_connection(server: HttpServer, source: str = ATTACKER) -> tuple[asyncio.StreamReader, Any]:
    """A connection that has sent half a request head."""
    reader, writer = await asyncio.open_connection(*server.address, local_addr=(source, 0))
    writer.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\n")
    await writer.drain()
    return reader, writer


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    try:
        async with asyncio.timeout(within):
            return await reader.read() == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def headers_of(answer: bytes) -> dict[str, str]:
    head = answer.split(b"\r\n\r\n", 1)[0].decode()
    return {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in head.split("\r\n")[1:])}


# --- what an answer says -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        pytest.param(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n", 200, id="a probe gets its answer"),
        pytest.param(b"GET /readyz?verbose=1 HTTP/1.0\r\n\r\n", 200, id="a query string does not change the path"),
        pytest.param(b"GET /nothing HTTP/1.1\r\n\r\n", 404, id="an unknown path is not found"),
        pytest.param(b"GET /broken HTTP/1.1\r\n\r\n", 500, id="a probe that fails answers 500, the server stays"),
        pytest.param(b"POST /readyz HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405, id="only GET and HEAD are served"),
        pytest.param(
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, id="TLS on the plain port is refused"
        ),
        pytest.param(b"GET http://elsewhere/readyz HTTP/1.1\r\n\r\n", 400, id="an absolute URI is refused"),
    ],
)
async def test_each_request_gets_one_answer_and_the_connection_closes(
    start_server: StartServer, request_bytes: bytes, status: int
) -> None:
    server = await start_server()

    answer = await exchange(server, request_bytes)

    assert status_of(answer) == status
    headers = headers_of(answer)
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(answer.split(b"\r\n\r\n", 1)[1])
    assert server.connections == 0


async def test_no_answer_names_the_software_behind_it(start_server: StartServer) -> None:
    server = await start_server()

    answers = [await exchange(server, r) for r in (b"GET /readyz HTTP/1.1\r\n\r\n", b"BAD\r\n\r\n")]

    for answer in answers:
        assert "server" not in headers_of(answer)
        assert b"aiohttp" not in answer
        assert b"Python" not in answer


async def test_a_head_request_gets_the_headers_without_the_body(start_server: StartServer) -> None:
    server = await start_server()

    answer = await exchange(server, b"HEAD /readyz HTTP/1.1\r\n\r\n")

    _, _, body = answer.partition(b"\r\n\r\n")
    assert status_of(answer) == 200
    assert body == b""
    assert int(headers_of(answer)["content-length"]) == len(b'{"status": "ready"}')


# --- limits --------------------------------------------------------------------------------------


async def test_a_request_head_that_never_ends_is_cut_off_after_the_head_timeout(start_server: StartServer) -> None:
    server = await start_server(head_timeout=0.3)
    reader, writer = await slow_connection(server)
    try:
        assert await closed_by_server(reader, within=3)
        assert server.connections == 0
    finally:
        writer.close()


async def test_a_request_head_larger_than_the_limit_is_refused(start_server: StartServer) -> None:
    server = await start_server(max_head_bytes=1024)

    answer = await exchange(server, b"GET /readyz HTTP/1.1\r\n" + b"X-Filler: " + b"a" * 4000 + b"\r\n\r\n")

    assert status_of(answer) == 431


async def test_at_the_cap_a_new_connection_closes_the_oldest_of_the_peer_holding_the_most(
    start_server: StartServer,
) -> None:
    server = await start_server(max_connections=4)
    slow = [await slow_connection(server) for _ in range(4)]
    await asyncio.sleep(0.1)
    assert server.connections == 4
    try:
        answer = await exchange(server, b"GET /readyz HTTP/1.1\r\n\r\n", source="127.0.0.1")

        assert status_of(answer) == 200
        oldest_reader, _ = slow[0]
        assert await closed_by_server(oldest_reader, within=2), "the flooder's oldest connection made room"
        for reader, _ in slow[1:]:
            assert not await closed_by_server(reader, within=0.05), "the others stay until their head timeout"
    finally:
        for _, writer in slow:
            writer.close()


async def test_a_flood_of_connections_never_holds_more_than_the_cap(start_server: StartServer) -> None:
    server = await start_server(max_connections=8, backlog=8)
    seen: list[int] = []
    slow = []
    try:
        for _ in range(40):
            slow.append(await slow_connection(server))
            await asyncio.sleep(0)
            seen.append(server.connections)
        await asyncio.sleep(0.1)
        settled = server.connections
        answer = await exchange(server, b"GET /readyz HTTP/1.1\r\n\r\n", source="127.0.0.1")
    finally:
        for _, writer in slow:
            writer.close()

    assert max(seen) <= 8
    assert settled == 8, "the cap is reached and held, not undercut"
    assert status_of(answer) == 200


async def test_a_malformed_request_is_never_quoted_in_the_log(start_server: StartServer) -> None:
    stream = io.StringIO()
    logs.configure(stream, json=True, level="debug")
    server = await start_server()
    junk = b"\x00EVIL-" + b"Z" * 8000

    for _ in range(20):
        answer = await exchange(server, junk + b"\r\n\r\n")
        assert status_of(answer) == 400

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert "EVIL" not in stream.getvalue()
    refused = [line for line in lines if line["event"] == "http.bad_request"]
    assert 1 <= len(refused) <= 5, "rate-limited"
    assert refused[0]["problem"] == "not an HTTP/1.x request line"


# --- the descriptor budget -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("open_files", "connections"),
    [
        pytest.param(1 << 20, 64, id="a large budget keeps the default cap"),
        pytest.param(1024, 64, id="the common default of 1024 too"),
        pytest.param(256, 32, id="a small budget gives the server an eighth for connections"),
        pytest.param(16, 4, id="a tiny one still serves a few probes"),
    ],
)
def test_the_server_takes_a_bounded_share_of_the_descriptors(open_files: int, connections: int) -> None:
    limits = Limits.for_open_files(open_files)

    assert limits.max_connections == connections
    assert limits.max_connections + limits.backlog <= max(8, open_files // 4)


def test_the_daemon_raises_its_soft_open_files_limit_to_the_hard_one() -> None:
    script = (
        "import resource; from service.daemon import raise_open_files_limit;"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, 512));"
        "print(raise_open_files_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)

    assert done.stdout.split() == ["512", "512"]
    assert raise_open_files_limit() >= 64  # in this process too, harmlessly


# --- repeated lines ------------------------------------------------------------------------------


def test_repeated_lines_are_limited_and_the_next_one_written_counts_the_held_back() -> None:
    now = [0.0]
    limiter = logs.RepeatLimiter(burst=3, interval=60, clock=lambda: now[0])

    first = [limiter.admit("accept") for _ in range(10)]
    other = limiter.admit("something else")
    now[0] = 61.0
    after = limiter.admit("accept")

    assert first == [0, 0, 0, None, None, None, None, None, None, None]
    assert other == 0, "each kind has its own budget"
    assert after == 7, "the first line of the next minute says how many were held back"


def test_a_flood_of_identical_stdlib_lines_costs_a_few_lines_with_a_count() -> None:
    stream = io.StringIO()
    logs.configure(stream, json=True, level="info")
    asyncio_log = logging.getLogger("asyncio")

    for fd in range(1000):
        # What asyncio writes for every failed accept when the process has no descriptors left.
        asyncio_log.error(f"socket.accept() out of system resource\nsocket: <TransportSocket fd={fd}>")
    logging.getLogger("service.test").error("a different line")

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    accepts = [line for line in lines if line["event"].startswith("socket.accept()")]
    assert len(accepts) == 5
    assert [line["event"] for line in lines if line["logger"] == "service.test"] == ["a different line"]
