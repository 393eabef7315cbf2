"""A stand-in for Dime.Scheduler's configuration endpoint that receives pushed client secrets.

Contract (DESIGN.md, "Push sink"): `POST` with `X-API-KEY`, `Content-Type: application/json`, an
`Idempotency-Key`, and `{"tenantId", "clientId", "clientSecret", "expiresOn"}` plus any extra fields.
A replay of the same key and body is answered 200 without a second delivery. Like the real connector
would, it can try the received secret against the emulated Entra (on the model, honouring replication
delay) and records whether that sign-in worked; a sign-in that worked is in Entra's sign-in activity
report, so that the rotator sees the consumer switch to the secret it pushed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from service.emulator.directory import Directory, SecretCheck, register_issued
from service.emulator.wire import TENANT_ID, json_response

REQUIRED_FIELDS = ("tenantId", "clientId", "clientSecret", "expiresOn")


@dataclass(frozen=True)
class Delivery:
    """One accepted push. The secret is kept out of `repr` and read only through :meth:`reveal`."""

    received_at: datetime
    idempotency_key: str | None
    tenant_id: str
    client_id: str
    expires_on: str
    signin_ok: bool | None
    extra: dict[str, Any] = field(default_factory=dict)
    _secret: str = field(default="", repr=False)

    def reveal(self) -> str:
        """The pushed secret text, for assertions that must compare it."""
        return self._secret

    def public(self) -> dict[str, Any]:
        """Everything but the secret (the control API's view)."""
        return {
            "received_at": self.received_at.isoformat(),
            "idempotency_key": self.idempotency_key,
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "expires_on": self.expires_on,
            "signin_ok": self.signin_ok,
            "extra": dict(self.extra),
            "secret_hint": self._secret[:3],
        }


class Receiver:
    """The push endpoint's state: its API key and what it received."""

    def __init__(self, directory: Directory, api_key: str | None = None, *, verify_signin: bool = True) -> None:
        self.directory = directory
        self.api_key = api_key or secrets.token_urlsafe(32)
        register_issued(self.api_key)
        self.verify_signin = verify_signin
        self.deliveries: list[Delivery] = []
        self._seen: dict[str, str] = {}
        self._lock = threading.Lock()

    def _judge(self, tenant_id: str, client_id: str, secret: str, *, record: bool) -> bool:
        with self.directory.lock:
            tenant = self.directory.tenant(tenant_id)
            if tenant is None:
                return False
            app = self.directory.app_by_app_id(tenant, client_id)
            if app is None or self.directory.sp_by_app_id(tenant, client_id) is None:
                return False
            check = self.directory.sign_in(tenant, app, secret) if record else self.directory.check_secret(app, secret)
            return check is SecretCheck.OK

    def signs_in(self, tenant_id: str, client_id: str, secret: str) -> bool:
        """Whether the secret authenticates now, as the token endpoint would judge it (no sign-in recorded)."""
        return self._judge(tenant_id, client_id, secret, record=False)

    def sign_in(self, tenant_id: str, client_id: str, secret: str) -> bool:
        """Sign in with the secret, as Dime.Scheduler does once it has it: Entra records the sign-in."""
        return self._judge(tenant_id, client_id, secret, record=True)

    def sign_in_with_latest(self) -> bool:
        """Dime.Scheduler's next sign-in, with the secret pushed to it last, as it makes them all day: Entra
        records it (False: nothing was pushed yet, or the secret no longer gets a token)."""
        with self._lock:
            latest = self.deliveries[-1] if self.deliveries else None
        if latest is None:
            return False
        return self.sign_in(latest.tenant_id, latest.client_id, latest.reveal())

    def current_key_authenticates(self) -> bool:
        """Whether the most recently delivered secret signs in now (invariant I1 for the push sink)."""
        with self._lock:
            latest = self.deliveries[-1] if self.deliveries else None
        if latest is None:
            return False
        return self.signs_in(latest.tenant_id, latest.client_id, latest.reveal())

    def clear(self) -> None:
        with self._lock:
            self.deliveries.clear()
            self._seen.clear()

    async def handle(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            return json_response({"error": "method_not_allowed"}, status=405, headers={"Allow": "POST"})
        presented = request.headers.get("X-API-KEY", "")
        if not hmac.compare_digest(presented.encode(), self.api_key.encode()):
            return json_response({"error": "unauthorized", "message": "Missing or invalid X-API-KEY."}, status=401)
        if request.content_type != "application/json":
            return json_response(
                {"error": "unsupported_media_type", "message": "Content-Type must be application/json."}, status=415
            )
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            return json_response({"error": "bad_request", "message": "The body is not valid JSON."}, status=400)
        if not isinstance(body, dict):
            return json_response({"error": "bad_request", "message": "The body must be a JSON object."}, status=400)
        missing = [name for name in REQUIRED_FIELDS if not isinstance(body.get(name), str) or not body.get(name)]
        if missing:
            return json_response(
                {"error": "bad_request", "message": f"Missing or empty fields: {', '.join(missing)}."}, status=400
            )
        request[TENANT_ID] = body["tenantId"]
        key = request.headers.get("Idempotency-Key")
        digest = hashlib.sha256(raw).hexdigest()
        with self._lock:
            if key is not None and key in self._seen:
                if self._seen[key] == digest:
                    return json_response({"status": "duplicate"}, status=200)
                return json_response(
                    {"error": "idempotency_conflict", "message": "Idempotency-Key reused with a different body."},
                    status=422,
                )
        secret = body["clientSecret"]
        signin_ok = self.sign_in(body["tenantId"], body["clientId"], secret) if self.verify_signin else None
        delivery = Delivery(
            received_at=self.directory.clock.now(),
            idempotency_key=key,
            tenant_id=body["tenantId"],
            client_id=body["clientId"],
            expires_on=body["expiresOn"],
            signin_ok=signin_ok,
            extra={k: v for k, v in body.items() if k not in REQUIRED_FIELDS},
            _secret=secret,
        )
        with self._lock:
            if key is not None:
                self._seen[key] = digest
            self.deliveries.append(delivery)
        return json_response({"status": "stored"}, status=200)
