"""Small helpers shared by the emulated services: timestamps in each service's format, JSON answers."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

# The tenant a request was for, as each service learns it (the path for Entra, the token for Graph and
# Key Vault); the request log and the fault hooks read it.
TENANT_ID = web.RequestKey("tenant_id", str)
# The body of a request inside a Graph `$batch` (which has no body of its own on the wire).
INNER_BODY = web.RequestKey("inner_body", bytes)


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with `Z`, as Graph writes dates (microseconds only when there are any)."""
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    """Parse an ISO 8601 timestamp; naive ones are taken as UTC, as Graph does."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    # Graph and .NET clients send up to 7 fractional digits; Python takes at most 6.
    if "." in value:
        head, _, rest = value.partition(".")
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        value = f"{head}.{digits[:6].ljust(6, '0')}{rest}"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def unix(moment: datetime) -> int:
    """Unix seconds, as Key Vault writes its attributes."""
    return int(moment.timestamp())


def new_request_id() -> str:
    return str(uuid.uuid4())


def json_response(
    body: Any, *, status: int = 200, headers: dict[str, str] | None = None, content_type: str | None = None
) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        headers=headers,
        content_type=content_type or "application/json",
        charset="utf-8",
    )


async def read_json(request: web.Request) -> Any:
    """The JSON body, or None for an empty body; raises ValueError on malformed JSON."""
    raw = request[INNER_BODY] if INNER_BODY in request else await request.read()
    if not raw.strip():
        return None
    return json.loads(raw)
