"""Stand-ins for a Teams and a Slack incoming webhook: they take a message as the real ones do and keep it.

``POST /hooks/teams/<token>`` takes what a Teams webhook takes (a Workflows "When a Teams webhook request is
received" trigger, or the older connector): ``{"type": "message", "attachments": [{"contentType":
"application/vnd.microsoft.card.adaptive", "content": {"type": "AdaptiveCard", ...}}]}``, answered 202.
``POST /hooks/slack/<token>`` takes ``{"text": ...}`` and answers ``ok``, or 400 ``invalid_payload`` /
``no_text`` as Slack does. A wrong token is a 404. The token makes the URL a secret, as the real ones are:
it is registered with the canary, so a URL that reaches a log fails the test that wrote it.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from service.emulator.directory import register_issued

HOOKS_PATH = "/hooks"
ADAPTIVE = "application/vnd.microsoft.card.adaptive"


@dataclass(frozen=True)
class HookMessage:
    """One message a webhook took: ``teams`` or ``slack``, and its JSON body."""

    kind: str
    body: dict[str, Any]

    def text(self) -> str:
        """Every text of the message in one string: Slack's text, or each Teams card's text blocks and facts."""
        if self.kind == "slack":
            return str(self.body.get("text", ""))
        words: list[str] = []
        for attachment in self.body.get("attachments", []):
            for element in attachment.get("content", {}).get("body", []):
                words.append(str(element.get("text", "")))
                words += [f"{f.get('title')}: {f.get('value')}" for f in element.get("facts", [])]
        return "\n".join(words)


class Hooks:
    """The webhooks' state: their token and the messages they took."""

    def __init__(self) -> None:
        self.token = secrets.token_urlsafe(24)
        register_issued(self.token)
        self.messages: list[HookMessage] = []
        self._lock = threading.Lock()

    def of(self, kind: str) -> list[HookMessage]:
        """The messages the ``kind`` webhook took, in order."""
        with self._lock:
            return [m for m in self.messages if m.kind == kind]

    async def handle(self, request: web.Request, segments: list[str]) -> web.Response:
        """One request to ``/hooks/<kind>/<token>``."""
        if len(segments) != 2 or segments[0] not in ("teams", "slack") or segments[1] != self.token:
            return web.Response(status=404, text="no_service")
        if request.method != "POST":
            return web.Response(status=405, headers={"Allow": "POST"})
        kind = segments[0]
        try:
            body = json.loads(await request.read())
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(body, dict):
            return web.Response(status=400, text="invalid_payload")
        if kind == "slack":
            if not isinstance(body.get("text"), str) or not body["text"]:
                return web.Response(status=400, text="no_text")
        elif not _teams_message(body):
            return web.json_response({"error": {"code": "InvalidRequest", "message": "not a message"}}, status=400)
        with self._lock:
            self.messages.append(HookMessage(kind, body))
        return web.Response(status=200, text="ok") if kind == "slack" else web.Response(status=202)


def _teams_message(body: dict[str, Any]) -> bool:
    attachments = body.get("attachments")
    return (
        body.get("type") == "message"
        and isinstance(attachments, list)
        and bool(attachments)
        and all(
            isinstance(a, dict)
            and a.get("contentType") == ADAPTIVE
            and isinstance(a.get("content"), dict)
            and a["content"].get("type") == "AdaptiveCard"
            for a in attachments
        )
    )
