"""Graph's JSON batching: `POST /v1.0/$batch` with up to 20 requests, each answered on its own.

As Graph does: ids are unique regardless of case; `dependsOn` orders requests, and one whose dependency
failed answers 424; every request answers its own status, headers and body, and the `responses` come in
an order of the service's choosing (here: the last asked first, so that a client pairing answers by
position fails every time). Each request inside counts against the tenant's throttle on its own.

Faults whose path matches a request inside the batch act on that request: latency and hooks as on any
request, a status or throttle fault as that request's answer (a 429 carries its Retry-After in the
request's own headers), a drop as the whole batch's connection dropped. ``respond`` and ``flood`` act on
whole HTTP answers only: aimed at the `$batch` path they replace the batch's answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from yarl import URL

from service.emulator.fault_responses import GRAPH_CODES
from service.emulator.faults import Fault, FaultSet, RequestInfo
from service.emulator.graph import GraphError, GraphService, error_response
from service.emulator.wire import INNER_BODY, TENANT_ID, json_response, new_request_id

MAX_REQUESTS = 20
# Headers of an inner answer that describe the HTTP message, not the request's outcome.
_HOP_HEADERS = frozenset({"content-length", "date", "server", "connection", "transfer-encoding"})

Recorder = Callable[[web.Request, str, int], None]


class BatchError(Exception):
    """The batch as a whole is refused (400), before any request in it runs."""


class Dropped(Exception):
    """A fault dropped the connection the batch came on."""


def _requests(body: Any) -> list[dict[str, Any]]:
    """The batch's requests, checked as Graph checks them; BatchError saying what is wrong."""
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise BatchError("Invalid batch payload format.")
    items: list[dict[str, Any]] = body["requests"]
    if not items:
        raise BatchError("Invalid batch payload format.")
    if len(items) > MAX_REQUESTS:
        raise BatchError("Number of requests inside batch exceeds the limit.")
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict):
            raise BatchError("Invalid batch payload format.")
        rid, method, url = item.get("id"), item.get("method"), item.get("url")
        if not isinstance(rid, str) or not rid:
            raise BatchError("Each request in a batch must have an id.")
        if rid.lower() in seen:
            raise BatchError(f"Batch request ids must be unique. Duplicate id: '{rid}'.")
        seen.add(rid.lower())
        if not isinstance(method, str) or not method:
            raise BatchError(f"Request '{rid}' has no method.")
        if not isinstance(url, str) or not url or "://" in url:
            raise BatchError(f"Request '{rid}' has an invalid request URL: it must be relative, like /users.")
        if item.get("body") is not None and not any(
            str(k).lower() == "content-type" for k in (item.get("headers") or {})
        ):
            raise BatchError(f"Request '{rid}' has a body but no Content-Type header.")
    for item in items:
        for dependency in item.get("dependsOn") or []:
            if not isinstance(dependency, str) or dependency.lower() not in seen:
                raise BatchError(f"Request '{item['id']}' depends on an id that is not in the batch.")
    return items


class GraphBatch:
    """Serves `POST /v1.0/$batch` by running each request through :class:`GraphService`."""

    def __init__(self, graph: GraphService, faults: FaultSet, record: Recorder) -> None:
        self.graph = graph
        self.faults = faults
        self.record = record

    async def handle(self, request: web.Request) -> web.StreamResponse:
        request_id = new_request_id()
        now_text = self.graph.directory.clock.now().strftime("%Y-%m-%dT%H:%M:%S")
        client_request_id = request.headers.get("client-request-id", request_id)
        try:
            # The batch is one request: its token is checked once (the requests inside carry it too).
            request[TENANT_ID] = self.graph.authenticate(request).tenant_id
        except GraphError as exc:
            return error_response(
                exc.status,
                exc.code,
                exc.message,
                request_id=request_id,
                client_request_id=client_request_id,
                now_text=now_text,
            )
        # aiohttp clones a request only before its body is read: the requests inside are clones of this one.
        unread = request.clone()
        try:
            try:
                body = json.loads(await request.read() or b"null")
            except ValueError:
                raise BatchError("Invalid batch payload format.") from None
            items = _requests(body)
        except BatchError as exc:
            return error_response(
                400,
                "BadRequest",
                str(exc),
                request_id=request_id,
                client_request_id=client_request_id,
                now_text=now_text,
            )
        answers: dict[str, dict[str, Any]] = {}
        by_id = {str(item["id"]).lower(): item for item in items}
        pending = dict(by_id)
        try:
            while pending:
                ready = [
                    key
                    for key, item in pending.items()
                    if all(str(d).lower() in answers for d in item.get("dependsOn") or [])
                ]
                if not ready:  # a cycle: none of them can ever run
                    for key in pending:
                        answers[key] = _failed(by_id[key], 424, "FailedDependency", "A dependency cycle.")
                    break
                results = await asyncio.gather(*(self._one(unread, by_id[key], answers) for key in ready))
                for key, answer in zip(ready, results, strict=True):
                    answers[key] = answer
                    del pending[key]
        except Dropped:
            transport = request.transport
            if transport is not None:
                transport.abort()
            return web.Response(status=599)
        ordered = [answers[str(item["id"]).lower()] for item in reversed(items)]
        return json_response({"responses": ordered})

    async def _one(
        self, outer: web.Request, item: dict[str, Any], answers: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        for dependency in item.get("dependsOn") or []:
            if answers[str(dependency).lower()]["status"] >= 400:
                return _failed(item, 424, "FailedDependency", "Failed dependency.")
        method = str(item["method"]).upper()
        url = URL("/v1.0/" + str(item["url"]).lstrip("/"))
        headers = {
            **{k: v for k, v in outer.headers.items() if k.lower() != "content-type"},
            **{str(k): str(v) for k, v in (item.get("headers") or {}).items()},
        }
        inner = outer.clone(method=method, rel_url=url, headers=headers)
        inner[INNER_BODY] = json.dumps(item["body"]).encode() if item.get("body") is not None else b""
        firing = self.faults.take(method, url.path)
        answer: dict[str, Any] | None = None
        for fault in (f for f in firing if not f.after):
            answer = await self._before(inner, item, fault)
            if answer is not None:
                break
        if answer is None:
            answer = _answer(item, await self.graph.handle(inner, [s for s in url.path.split("/")[2:] if s]))
            for fault in (f for f in firing if f.after):
                answer = self._after(inner, item, fault, answer)
        self.record(inner, "graph", int(answer["status"]))
        return answer

    async def _before(self, inner: web.Request, item: dict[str, Any], fault: Fault) -> dict[str, Any] | None:
        if fault.kind == "latency":
            await asyncio.sleep(fault.delay)
        elif fault.kind == "hook":
            assert fault.hook is not None
            if fault.delay:
                await asyncio.sleep(fault.delay)
            fault.hook(_info(inner, "before"))
        elif fault.kind == "drop":
            raise Dropped
        elif fault.kind in ("status", "throttle"):
            return _fault_answer(item, fault)
        return None

    def _after(self, inner: web.Request, item: dict[str, Any], fault: Fault, answer: dict[str, Any]) -> dict[str, Any]:
        if fault.kind == "hook":
            assert fault.hook is not None
            fault.hook(_info(inner, "after", int(answer["status"])))
            return answer
        if fault.kind == "drop":
            raise Dropped
        if fault.kind in ("status", "throttle"):
            return _fault_answer(item, fault)
        return answer


def _info(inner: web.Request, phase: str, status: int | None = None) -> RequestInfo:
    return RequestInfo(
        service="graph",
        method=inner.method,
        path=inner.path,
        query=inner.query_string,
        tenant_id=inner.get(TENANT_ID),
        phase="after" if phase == "after" else "before",
        status=status,
    )


def _answer(item: dict[str, Any], response: web.StreamResponse) -> dict[str, Any]:
    """One request's answer as a batch carries it: id, status, headers and the JSON body (if any)."""
    headers = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_HEADERS}
    answer: dict[str, Any] = {"id": item["id"], "status": response.status, "headers": headers}
    raw = response.body if isinstance(response, web.Response) else None
    if isinstance(raw, bytes) and raw:
        answer["body"] = json.loads(raw)
    return answer


def _failed(
    item: dict[str, Any], status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    request_id = new_request_id()
    inner = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": request_id,
    }
    return {
        "id": item["id"],
        "status": status,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "body": {"error": {"code": code, "message": message, "innerError": inner}},
    }


def _fault_answer(item: dict[str, Any], fault: Fault) -> dict[str, Any]:
    code, message = GRAPH_CODES.get(fault.status, ("UnknownError", "An error occurred."))
    retry = {"Retry-After": str(fault.retry_after)} if fault.status in (429, 503) else {}
    return _failed(item, fault.status, code, message, retry)
