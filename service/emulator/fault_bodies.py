"""Answers a fault writes itself: a hostile endpoint's echo, a malformed answer, a redirect, a flood.

A ``respond`` fault answers its ``status`` with ``body`` and ``headers`` filled from a template over what
the client sent and, for an ``after`` fault, what the emulator was about to answer. ``{{name|filter...}}``
stands for one of:

- ``request.body``: the request's body as text; ``request.field:NAME``: a top-level field of its JSON;
  ``request.headers``: its headers as a JSON object; ``request.header:NAME``: one header's value;
- ``response.body``: the answer the fault replaces; ``response.field:NAME``: a top-level field of it
  (a string as it is, anything else as JSON);

each passed through the filters named after it: ``json`` (escaped for a JSON string), ``base64``,
``base64url``, ``unicode`` (every character as ``\\uXXXX``), ``url`` (percent-encoded).

A ``flood`` fault answers its ``status`` with ``body`` followed by filler up to ``size`` bytes, streamed
without a Content-Length, and counts in ``sent`` what it wrote before the client hung up.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from service.emulator.faults import Fault

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z.]+)(?::([^|}\s]+))?\s*((?:\|\s*[a-z0-9]+\s*)*)\}\}")
_CHUNK = 64 * 1024

FILTERS: dict[str, Callable[[str], str]] = {
    "json": lambda text: json.dumps(text)[1:-1],
    "base64": lambda text: base64.b64encode(text.encode()).decode(),
    "base64url": lambda text: base64.urlsafe_b64encode(text.encode()).decode().rstrip("="),
    "unicode": lambda text: "".join(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else c for c in text),
    "url": lambda text: "".join(f"%{byte:02X}" for byte in text.encode()),
}
NAMES = ("request.body", "request.field", "request.headers", "request.header", "response.body", "response.field")
_NAMED = ("request.field", "request.header", "response.field")


def check_template(template: str) -> None:
    """ValueError naming what is wrong with a template, before the fault is armed."""
    for match in _PLACEHOLDER.finditer(template):
        name, argument, filters = match.groups()
        if name not in NAMES:
            raise ValueError(f"unknown placeholder {name!r}; one of {', '.join(NAMES)}")
        if (name in _NAMED) != (argument is not None):
            raise ValueError(f"{name} {'needs' if argument is None else 'takes no'} a :NAME")
        for item in _filters(filters):
            if item not in FILTERS:
                raise ValueError(f"unknown filter {item!r}; one of {', '.join(FILTERS)}")


def _filters(spec: str) -> list[str]:
    return [item.strip() for item in spec.split("|") if item.strip()]


def _field(body: bytes, name: str) -> str:
    try:
        document = json.loads(body)
    except ValueError:
        return ""
    value = document.get(name) if isinstance(document, dict) else None
    return value if isinstance(value, str) else json.dumps(value)


async def fill(template: str, request: web.Request, answer: web.StreamResponse | None) -> str:
    """``template`` with its placeholders replaced (see the module's docstring)."""
    raw_request = await request.read()
    request_body = raw_request.decode("utf-8", errors="replace")
    answer_body = answer.body if isinstance(answer, web.Response) and isinstance(answer.body, bytes) else b""

    def value(match: re.Match[str]) -> str:
        name, argument, filters = match.groups()
        if name == "request.body":
            text = request_body
        elif name == "request.field":
            text = _field(raw_request, argument)
        elif name == "request.headers":
            text = json.dumps(dict(request.headers))
        elif name == "request.header":
            text = request.headers.get(argument, "")
        elif name == "response.body":
            text = answer_body.decode("utf-8", errors="replace")
        else:
            text = _field(answer_body, argument)
        for item in _filters(filters):
            text = FILTERS[item](text)
        return text

    return _PLACEHOLDER.sub(value, template)


async def respond(fault: Fault, request: web.Request, answer: web.StreamResponse | None) -> web.Response:
    """The ``respond`` fault's answer."""
    headers = {name: await fill(value, request, answer) for name, value in fault.headers.items()}
    body = await fill(fault.body or "", request, answer)
    response = web.Response(status=fault.status, text=body, headers=headers)
    response.content_type = fault.content_type
    return response


async def flood(fault: Fault, request: web.Request) -> web.StreamResponse:
    """The ``flood`` fault's answer: written until ``size`` bytes or until the client hangs up."""
    response = web.StreamResponse(status=fault.status)
    response.content_type = fault.content_type
    response.enable_chunked_encoding()
    await response.prepare(request)
    head = (await fill(fault.body or "", request, None)).encode()
    filler = b"x" * _CHUNK
    try:
        if head:
            piece = head[: fault.size]
            await response.write(piece)
            fault.sent += len(piece)
        while fault.sent < fault.size:
            piece = filler[: fault.size - fault.sent]
            await response.write(piece)
            fault.sent += len(piece)
        await response.write_eof()
    except (ConnectionError, OSError):
        pass  # the client hung up: what it did not read was never produced
    return response
