"""Injected faults: each kind, in each service's error shape, with skip/count/after semantics."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

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


# --- answers a fault writes itself ------------------------------------------------------------------


async def test_respond_echoes_the_request_through_filters(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.faults.add(
        path=r"^/dimescheduler/",
        kind="respond",
        status=400,
        body='{"got": "{{request.body|base64}}", "key": "{{request.header:X-API-KEY|unicode}}", '
        '"url": "{{request.body|url}}", "as_json": "{{request.body|json}}", '
        '"field": "{{request.field:clientSecret}}"}',
    )
    sent = '{"clientSecret": "s~1"}'

    response = await http.post(emu.receiver_url, data=sent, headers={"X-API-KEY": "k~"})

    assert response.status == 400
    answer = await response.json()
    assert base64.b64decode(answer["got"]).decode() == sent
    assert answer["key"] == "k~", "\\u escapes decode back to the header's value"
    assert unquote(answer["url"]) == sent
    assert answer["as_json"] == sent
    assert answer["field"] == "s~1"
    assert emu.receiver.deliveries == [], "answered before the receiver saw it"


async def test_respond_after_rewrites_the_real_answer_it_replaces(
    emu: Emulator, rotator: Identity, http: aiohttp.ClientSession, get_token: TokenGetter
) -> None:
    app = emu.add_app(rotator.tenant_id, "Dime.Scheduler", owners=[rotator.object_id])
    emu.faults.add(
        path=r"/addPassword$",
        kind="respond",
        status=200,
        after=True,
        body='{"keyId": "{{response.field:keyId}}", "secretText": "{{response.field:secretText}}", "endDateTime": ',
    )

    response = await http.post(
        f"{emu.graph_url}/applications/{app.object_id}/addPassword",
        json={},
        headers={"Authorization": f"Bearer {await get_token(rotator)}"},
    )

    text = await response.text()
    [created] = emu.passwords(rotator.tenant_id, app.app_id)
    assert response.status == 200
    assert text.startswith(f'{{"keyId": "{created.key_id}", "secretText": "{created.hint}')
    assert text.endswith('"endDateTime": '), "malformed on purpose: the JSON never closes"


async def test_respond_redirects_with_a_templated_location(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.faults.add(
        path=r"^/secrets/", kind="respond", status=307, body="", headers={"Location": "https://127.0.0.1:9/elsewhere"}
    )

    response = await http.put(f"{emu.vault_url}/secrets/x?api-version=7.5", json={"value": "v"}, allow_redirects=False)

    assert (response.status, response.headers["Location"]) == (307, "https://127.0.0.1:9/elsewhere")


async def test_flood_counts_what_it_wrote_before_the_client_hung_up(emu: Emulator, http: aiohttp.ClientSession) -> None:
    size = 256 * 1024 * 1024
    emu.faults.add(path=r"^/dimescheduler/", kind="flood", status=500, size=size, body='{"error": "')

    async with http.post(emu.receiver_url, json={}) as response:
        assert response.status == 500
        head = await response.content.read(1024)
    await asyncio.sleep(0.2)  # the emulator notices the hang-up

    [fault] = emu.faults.active()
    assert head.startswith(b'{"error": "x')
    assert 1024 <= fault.sent < 64 * 1024 * 1024, "stopped long before the 256 MiB it was told to send"


async def test_flood_sends_all_of_it_to_a_client_that_reads(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.faults.add(path=r"^/dimescheduler/", kind="flood", status=200, size=300_000)

    async with http.post(emu.receiver_url, json={}) as response:
        body = await response.read()

    assert len(body) == 300_000
    assert emu.faults.active()[0].sent == 300_000


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        pytest.param({"kind": "flood"}, "size", id="a flood needs a size"),
        pytest.param(
            {"kind": "respond", "body": "{{request.secret}}"},
            "unknown placeholder",
            id="an unknown placeholder is refused",
        ),
        pytest.param(
            {"kind": "respond", "body": "{{request.body|rot13}}"}, "unknown filter", id="an unknown filter is refused"
        ),
        pytest.param(
            {"kind": "respond", "headers": {"X": "{{request.header}}"}},
            "needs a :NAME",
            id="a header placeholder needs the header's name",
        ),
    ],
)
def test_a_fault_that_cannot_work_is_refused_when_added(arguments: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Emulator().faults.add(**arguments)
