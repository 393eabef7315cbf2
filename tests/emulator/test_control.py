"""The control API drives an emulator from another process (loopback only, no hooks, no pushed secrets)."""

from __future__ import annotations

from typing import Any

import aiohttp

from service.emulator import Emulator
from service.emulator.control import _is_loopback


async def control(
    http: aiohttp.ClientSession, emu: Emulator, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    response = await http.request(method, f"{emu.url}/_emulator/{path}", json=body)
    return response.status, await response.json()


async def test_seed_sign_in_and_expire_through_the_control_api(emu: Emulator, http: aiohttp.ClientSession) -> None:
    status, tenant = await control(http, emu, "POST", "seed/tenant", {})
    assert status == 201
    tid = tenant["tenant_id"]
    status, rotator = await control(http, emu, "POST", "seed/rotator", {"tenant_id": tid})
    assert status == 201
    status, app = await control(http, emu, "POST", "seed/app", {"tenant_id": tid, "display_name": "Dime.Scheduler"})
    assert status == 201
    status, password = await control(
        http, emu, "POST", "seed/password", {"tenant_id": tid, "app_id": app["app_id"], "lifetime_seconds": 60}
    )
    assert status == 201
    form = {
        "grant_type": "client_credentials",
        "client_id": app["app_id"],
        "client_secret": password["secret"],
        "scope": "https://graph.microsoft.com/.default",
    }
    token_url = f"{emu.url}/{tid}/oauth2/v2.0/token"
    assert (await http.post(token_url, data=form)).status == 200
    status, clock = await control(http, emu, "POST", "clock/advance", {"seconds": 120})
    assert status == 200
    assert clock["offset_seconds"] == 120
    expired = await http.post(token_url, data=form)
    assert (await expired.json())["error_codes"] == [7000222]
    status, listed = await control(http, emu, "GET", f"passwords?tenant_id={tid}&app_id={app['app_id']}")
    assert [p["key_id"] for p in listed["value"]] == [password["key_id"]]
    assert password["secret"] not in str(listed)
    assert rotator["client_id"]


async def test_faults_settings_and_request_counts(emu: Emulator, tenant_id: str, http: aiohttp.ClientSession) -> None:
    status, fault = await control(
        http, emu, "POST", "faults", {"path": "openid-configuration", "kind": "throttle", "retry_after": 3, "count": 1}
    )
    assert status == 201
    url = f"{emu.url}/{tenant_id}/v2.0/.well-known/openid-configuration"
    response = await http.get(url)
    assert (response.status, response.headers["Retry-After"]) == (429, "3")
    assert (await control(http, emu, "POST", "faults", {"kind": "hook"}))[0] == 400
    assert (await control(http, emu, "DELETE", "faults"))[0] == 200
    assert emu.faults.active() == []
    status, settings = await control(
        http, emu, "POST", "settings", {"replication_delay_seconds": 30, "password_cap": 4, "vault_page_limit": 3}
    )
    assert settings["replication_delay_seconds"] == 30
    assert emu.password_cap == 4
    assert (settings["vault_page_limit"], emu.vault_page_limit) == (3, 3)
    status, counts = await control(http, emu, "GET", "requests")
    assert counts["by_service"] == {"entra": 1}
    assert counts["counts"] == {"entra GET 429": 1}
    assert fault["id"] >= 1


async def test_deliveries_are_listed_without_secrets(
    emu: Emulator, tenant_id: str, http: aiohttp.ClientSession
) -> None:
    app = emu.add_app(tenant_id, "Dime.Scheduler")
    _, secret = emu.add_password(tenant_id, app.app_id)
    body = {"tenantId": tenant_id, "clientId": app.app_id, "clientSecret": secret, "expiresOn": "2030-01-01T00:00:00Z"}
    headers = {"X-API-KEY": emu.receiver.api_key, "Idempotency-Key": "k"}
    assert (await http.post(emu.receiver_url, json=body, headers=headers)).status == 200
    status, listed = await control(http, emu, "GET", "deliveries")
    assert status == 200
    assert listed["value"][0]["signin_ok"] is True
    assert secret not in str(listed)


def test_only_loopback_callers_are_answered() -> None:
    assert _is_loopback("127.0.0.1")
    assert _is_loopback("::1")
    assert not _is_loopback("192.0.2.10")
    assert not _is_loopback(None)


async def test_seed_who_signs_in_by_device_code_and_what_an_app_requests(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    tid = (await control(http, emu, "POST", "seed/tenant", {}))[1]["tenant_id"]
    tenant = emu.directory.require_tenant(tid)
    first = (await control(http, emu, "POST", "seed/user", {"tenant_id": tid, "upn": "admin@contoso.example"}))[1]
    body = {"tenant_id": tid, "upn": "appadmin@contoso.example", "device_sign_in": True}
    status, chosen = await control(http, emu, "POST", "seed/user", body)
    assert status == 201
    assert emu.directory.device_sign_in_user(tenant).object_id == chosen["object_id"]  # type: ignore[union-attr]
    body = {"tenant_id": tid, "user_object_id": first["object_id"]}
    assert (await control(http, emu, "POST", "device-sign-in", body))[0] == 200
    assert emu.directory.device_sign_in_user(tenant).object_id == first["object_id"]  # type: ignore[union-attr]
    body = {"tenant_id": tid, "user_object_id": "00000000-0000-0000-0000-000000000001"}
    assert (await control(http, emu, "POST", "device-sign-in", body))[0] == 404

    requested = [
        {
            "resourceAppId": "00000003-0000-0000-c000-000000000000",
            "resourceAccess": [{"id": "df021288-bdef-4463-88db-98f22de89214", "type": "Role"}],
        }
    ]
    body = {"tenant_id": tid, "display_name": "Dime.Scheduler", "required_resource_access": requested}
    status, app = await control(http, emu, "POST", "seed/app", body)
    assert status == 201
    assert tenant.apps[app["object_id"]].required_resource_access == requested
    body["required_resource_access"] = [{"resourceAppId": "00000003-0000-0000-c000-000000000000"}]
    assert (await control(http, emu, "POST", "seed/app", body))[0] == 400


async def test_respond_and_flood_faults_through_the_control_api(
    emu: Emulator, tenant_id: str, http: aiohttp.ClientSession
) -> None:
    url = f"{emu.url}/{tenant_id}/v2.0/.well-known/openid-configuration"
    status, _ = await control(
        http,
        emu,
        "POST",
        "faults",
        {
            "path": "openid-configuration",
            "kind": "respond",
            "status": 418,
            "count": 1,
            "body": '{"echo": "{{request.header:X-Probe|base64}}"}',
            "headers": {"X-Echo": "{{request.header:X-Probe}}"},
        },
    )
    assert status == 201
    response = await http.get(url, headers={"X-Probe": "hi"})
    assert (response.status, response.headers["X-Echo"], await response.json()) == (418, "hi", {"echo": "aGk="})

    status, fault = await control(
        http, emu, "POST", "faults", {"path": "openid-configuration", "kind": "flood", "status": 200, "size": 1000}
    )
    assert status == 201
    assert len(await (await http.get(url)).read()) == 1000
    _, listed = await control(http, emu, "GET", "faults")
    assert [f["sent"] for f in listed["faults"] if f["id"] == fault["id"]] == [1000]
    assert (await control(http, emu, "POST", "faults", {"kind": "respond", "body": "{{nothing}}"}))[0] == 400
