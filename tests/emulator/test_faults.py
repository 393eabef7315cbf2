"""Injected faults: each kind, in each service's error shape, with skip/count/after semantics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from service.emulator import Emulator, Identity, RequestInfo

TokenGetter = Callable[..., Awaitable[str]]


async def test_throttle_on_graph_is_too_many_requests_with_retry_after(
    emu: Emulator, rotator: Identity, http: aiohttp.ClientSession, get_token: TokenGetter
) -> None:
    token = await get_token(rotator)
    emu.faults.add(path=r"^/v1\.0/applications", kind="throttle", retry_after=7, count=1)
    url = f"{emu.graph_url}/applications"
    response = await http.get(url, headers={"Authorization": f"Bearer {token}"})
    body = await response.json()
    assert response.status == 429
    assert response.headers["Retry-After"] == "7"
    assert body["error"]["code"] == "TooManyRequests"
    assert "innerError" in body["error"]
    assert (await http.get(url, headers={"Authorization": f"Bearer {token}"})).status == 200


async def test_status_faults_take_each_services_error_shape(
    emu: Emulator, rotator: Identity, http: aiohttp.ClientSession
) -> None:
    emu.faults.add(path=r"^/secrets", kind="status", status=503)
    emu.faults.add(path=r"/oauth2/v2\.0/token$", kind="status", status=503)
    vault = await http.get(f"{emu.vault_url}/secrets/x?api-version=7.5")
    assert vault.status == 503
    assert (await vault.json())["error"]["code"] == "ServiceUnavailable"
    entra = await http.post(
        f"{emu.url}/{rotator.tenant_id}/oauth2/v2.0/token", data={"grant_type": "client_credentials"}
    )
    body = await entra.json()
    assert entra.status == 503
    assert body["error"] == "temporarily_unavailable"
    assert body["error_description"].startswith("AADSTS")


async def test_skip_lets_the_first_requests_through_and_count_limits_the_fault(
    emu: Emulator, rotator: Identity, http: aiohttp.ClientSession, get_token: TokenGetter
) -> None:
    emu.faults.add(path=r"/token$", method="POST", kind="status", status=500, skip=1, count=2)
    statuses = []
    for _ in range(4):
        response = await http.post(
            f"{emu.url}/{rotator.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": rotator.client_id,
                "client_secret": rotator.secret,
                "scope": "https://graph.microsoft.com/.default",
            },
        )
        statuses.append(response.status)
    assert statuses == [200, 500, 500, 200]


async def test_after_means_the_write_happened_but_the_caller_saw_a_failure(
    emu: Emulator, rotator: Identity, http: aiohttp.ClientSession, get_token: TokenGetter
) -> None:
    app = emu.add_app(rotator.tenant_id, "Dime.Scheduler", owners=[rotator.object_id])
    token = await get_token(rotator)
    emu.faults.add(path=r"/addPassword$", kind="status", status=504, after=True, count=1)
    response = await http.post(
        f"{emu.graph_url}/applications/{app.object_id}/addPassword",
        json={},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status == 504
    assert "secretText" not in await response.text()
    assert len(emu.passwords(rotator.tenant_id, app.app_id)) == 1


async def test_drop_closes_the_connection_without_an_answer(
    emu: Emulator, tenant_id: str, http: aiohttp.ClientSession
) -> None:
    emu.faults.add(path=r"openid-configuration", kind="drop")
    with pytest.raises(aiohttp.ClientError):
        await http.get(f"{emu.url}/{tenant_id}/v2.0/.well-known/openid-configuration")
    assert emu.requests[-1].status == 599


async def test_latency_and_default_latency_delay_answers(
    emu: Emulator, tenant_id: str, http: aiohttp.ClientSession
) -> None:
    url = f"{emu.url}/{tenant_id}/v2.0/.well-known/openid-configuration"
    emu.faults.add(path=r"openid-configuration", kind="latency", delay=0.3, count=1)
    started = time.monotonic()
    assert (await http.get(url)).status == 200
    assert time.monotonic() - started >= 0.3
    emu.faults.clear()
    emu.default_latency = __import__("datetime").timedelta(milliseconds=200)
    started = time.monotonic()
    assert (await http.get(url)).status == 200
    assert time.monotonic() - started >= 0.2


async def test_hooks_see_the_request_before_and_after(
    emu: Emulator, tenant_id: str, http: aiohttp.ClientSession
) -> None:
    seen: list[RequestInfo] = []
    emu.faults.add(path=r"openid-configuration", kind="hook", hook=seen.append)
    emu.faults.add(path=r"openid-configuration", kind="hook", hook=seen.append, after=True)
    assert (await http.get(f"{emu.url}/{tenant_id}/v2.0/.well-known/openid-configuration")).status == 200
    assert [(i.phase, i.service, i.status) for i in seen] == [("before", "entra", None), ("after", "entra", 200)]
    assert seen[1].tenant_id == tenant_id


async def test_faults_never_touch_the_control_api(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.faults.add(path=r".*", kind="status", status=500)
    assert (await http.get(f"{emu.url}/_emulator/health")).status == 200


def test_a_hook_fault_needs_a_hook() -> None:
    with pytest.raises(ValueError, match="hook"):
        Emulator().faults.add(kind="hook")
