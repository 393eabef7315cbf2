"""The control API under `/_emulator/`: drive a standalone emulator from another process.

JSON in, JSON out, loopback callers only, no auth (it is a test fixture). It mirrors the in-process API
except hooks, which cannot cross a process boundary. Pushed secrets are never returned; seeded
identities' secrets are, since a separate test process has no other way to sign in with them.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from service.emulator.wire import iso, json_response, read_json

if TYPE_CHECKING:
    from service.emulator.server import Emulator


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _is_loopback(remote: str | None) -> bool:
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _seconds(body: dict[str, Any], key: str) -> timedelta | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float):
        raise ControlError(400, f"'{key}' must be a number of seconds")
    return timedelta(seconds=value)


def _req(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ControlError(400, f"'{key}' must be a non-empty string")
    return value


def _opt(body: dict[str, Any], key: str) -> str | None:
    return None if body.get(key) is None else _req(body, key)


async def handle_control(emu: Emulator, request: web.Request, segments: list[str]) -> web.Response:
    if not _is_loopback(request.remote):
        return json_response({"error": "the control API answers loopback callers only"}, status=403)
    try:
        body: dict[str, Any] = {}
        if request.method in ("POST", "PUT", "PATCH"):
            raw = await read_json(request)
            if raw is not None and not isinstance(raw, dict):
                raise ControlError(400, "the body must be a JSON object")
            body = raw or {}
        return _route(emu, request, [s for s in segments if s], body)
    except ValueError as exc:
        return json_response({"error": f"bad request: {exc}"}, status=400)
    except KeyError as exc:
        return json_response({"error": f"not found: {exc}"}, status=404)
    except ControlError as exc:
        return json_response({"error": str(exc)}, status=exc.status)


def _route(emu: Emulator, request: web.Request, path: list[str], body: dict[str, Any]) -> web.Response:
    method = request.method
    if path == ["health"] and method == "GET":
        return json_response({"status": "ok", "url": emu.url, "now": iso(emu.clock.now())})
    if path == ["faults"]:
        if method == "GET":
            return json_response({"faults": [f.describe() for f in emu.faults.active()]})
        if method == "POST":
            if body.get("kind") == "hook":
                raise ControlError(400, "hook faults exist only in process")
            fault_id = emu.faults.add(
                path=str(body.get("path", ".*")),
                method=body.get("method"),
                kind=body.get("kind", "status"),
                delay=float(body.get("delay", 0.0)),
                status=int(body.get("status", 503)),
                retry_after=int(body.get("retry_after", 1)),
                count=body.get("count"),
                skip=int(body.get("skip", 0)),
                after=bool(body.get("after", False)),
                body=_opt(body, "body"),
                headers={str(k): str(v) for k, v in (body.get("headers") or {}).items()},
                content_type=str(body.get("content_type", "application/json")),
                size=int(body.get("size", 0)),
            )
            return json_response({"id": fault_id}, status=201)
        if method == "DELETE":
            emu.faults.clear()
            return json_response({"cleared": True})
    if len(path) == 2 and path[0] == "faults" and method == "DELETE":
        emu.faults.remove(int(path[1]))
        return json_response({"removed": int(path[1])})
    if path == ["clock"] and method == "GET":
        return json_response({"now": iso(emu.clock.now()), "offset_seconds": emu.clock.offset.total_seconds()})
    if path == ["clock", "advance"] and method == "POST":
        delta = _seconds(body, "seconds")
        if delta is None:
            raise ControlError(400, "'seconds' is required")
        emu.clock.advance(delta)
        return json_response({"now": iso(emu.clock.now()), "offset_seconds": emu.clock.offset.total_seconds()})
    if path == ["settings"] and method == "POST":
        delay = _seconds(body, "replication_delay_seconds")
        if delay is not None:
            emu.replication_delay = delay
        latency = _seconds(body, "default_latency_seconds")
        if latency is not None:
            emu.default_latency = latency
        if "password_cap" in body:
            emu.password_cap = int(body["password_cap"])
        if "graph_throttle" in body or "vault_throttle" in body:
            emu.throttle(
                graph=_count(body, "graph_throttle"),
                vault=_count(body, "vault_throttle"),
                window=float(body.get("throttle_window_seconds", 10.0)),
            )
        if "vault_page_limit" in body:
            limit = body["vault_page_limit"]
            emu.vault_page_limit = None if limit is None else int(limit)
        return json_response(_settings(emu))
    if path == ["settings"] and method == "GET":
        return json_response(_settings(emu))
    if path == ["password-max-lifetime"] and method == "POST":
        tenant_id = _req(body, "tenant_id")
        emu.set_password_max_lifetime(tenant_id, _seconds(body, "seconds"), app_object_id=_opt(body, "app_object_id"))
        return json_response({"ok": True})
    if path == ["device-sign-in"] and method == "POST":
        tenant_id, user_object_id = _req(body, "tenant_id"), _req(body, "user_object_id")
        emu.sign_in_device_codes_as(tenant_id, user_object_id)
        return json_response({"tenant_id": tenant_id, "user_object_id": user_object_id})
    if path == ["kv-scope-to-secrets"] and method == "POST":
        object_id = _req(body, "object_id")
        emu.kv_scope_to_secrets(object_id)
        return json_response({"scoped_to_secrets": object_id})
    if path == ["kv-deny"] and method == "POST":
        object_id = _req(body, "object_id")
        emu.kv_deny(object_id)
        return json_response({"denied": object_id})
    if path and path[0] == "seed" and method == "POST":
        return _seed(emu, path[1:], body)
    if path == ["passwords"] and method == "GET":
        items = emu.passwords(request.query["tenant_id"], request.query["app_id"])
        return json_response(
            {
                "value": [
                    {
                        "key_id": p.key_id,
                        "display_name": p.display_name,
                        "hint": p.hint,
                        "start": iso(p.start),
                        "end": iso(p.end),
                        "created_at": iso(p.created_at),
                    }
                    for p in items
                ]
            }
        )
    if path == ["deliveries"]:
        if method == "GET":
            return json_response({"value": [d.public() for d in emu.receiver.deliveries]})
        if method == "DELETE":
            emu.receiver.clear()
            return json_response({"cleared": True})
    if path == ["requests"]:
        if method == "GET":
            sent = [r for r in emu.requests if r.service != "control" and not r.inner]
            counts = Counter(f"{r.service} {r.method} {r.status}" for r in sent)
            by_service = Counter(r.service for r in sent)
            # The requests inside Graph batches, each counted apart from the batch that carried it.
            inner = Counter(r.service for r in emu.requests if r.inner)
            return json_response(
                {
                    "total": sum(by_service.values()),
                    "by_service": dict(by_service),
                    "counts": dict(counts),
                    "inner_by_service": dict(inner),
                    "throttled": emu.throttled,
                }
            )
        if method == "DELETE":
            emu.reset_requests()
            return json_response({"cleared": True})
    raise ControlError(404, f"no control endpoint {method} /_emulator/{'/'.join(path)}")


def _settings(emu: Emulator) -> dict[str, Any]:
    return {
        "replication_delay_seconds": emu.replication_delay.total_seconds(),
        "default_latency_seconds": emu.default_latency.total_seconds(),
        "password_cap": emu.password_cap,
        "vault_page_limit": emu.vault_page_limit,
        "graph_throttle": emu.graph.throttle.limit,
        "vault_throttle": emu.keyvault.throttle.limit,
        "throttle_window_seconds": emu.graph.throttle.window,
    }


def _count(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or value < 1:
        raise ControlError(400, f"'{key}' must be a whole number of requests (at least 1) or null")
    return value


def _seed(emu: Emulator, path: list[str], body: dict[str, Any]) -> web.Response:
    if path == ["tenant"]:
        tenant_id = emu.add_tenant(_opt(body, "tenant_id"), vault=bool(body.get("vault", True)))
        return json_response({"tenant_id": tenant_id}, status=201)
    tenant_id = _req(body, "tenant_id")
    if path == ["app"]:
        name = _req(body, "display_name")
        app = emu.add_app(
            tenant_id,
            name,
            app_id=_opt(body, "app_id"),
            owners=tuple(body.get("owners", ())),
            required_resource_access=body.get("required_resource_access"),
        )
        return json_response(
            {"object_id": app.object_id, "app_id": app.app_id, "display_name": app.display_name}, status=201
        )
    if path == ["rotator"]:
        identity = emu.add_rotator(
            tenant_id,
            roles=tuple(body.get("roles", ("Application.ReadWrite.OwnedBy",))),
            display_name=str(body.get("display_name", "secret-rotator")),
        )
        return json_response(
            {
                "tenant_id": identity.tenant_id,
                "client_id": identity.client_id,
                "client_secret": identity.secret,
                "object_id": identity.object_id,
                "app_object_id": identity.app_object_id,
            },
            status=201,
        )
    if path == ["owner"]:
        app_object_id, principal = _req(body, "app_object_id"), _req(body, "principal_object_id")
        emu.add_owner(tenant_id, app_object_id, principal)
        return json_response({"ok": True}, status=201)
    if path == ["password"]:
        app_id = _req(body, "app_id")
        lifetime = _seconds(body, "lifetime_seconds")
        now = emu.clock.now()
        key_id, secret = emu.add_password(
            tenant_id,
            app_id,
            display_name=_opt(body, "display_name"),
            start=now,
            end=now + lifetime if lifetime is not None else None,
        )
        return json_response({"key_id": key_id, "secret": secret}, status=201)
    if path == ["user"]:
        upn = _req(body, "upn")
        roles = tuple(body.get("roles", ("Global Administrator",)))
        user_id = emu.add_user(tenant_id, upn, roles, device_sign_in=bool(body.get("device_sign_in", False)))
        return json_response({"object_id": user_id}, status=201)
    raise ControlError(404, f"no seed endpoint {'/'.join(path)}")
