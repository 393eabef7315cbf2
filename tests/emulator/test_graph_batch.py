"""Graph's JSON batching and `in` filters, served as Graph documents them, over real HTTPS.

`POST /v1.0/$batch`: at most 20 requests, ids unique regardless of case, each request answered on its own
(status, headers, body) in an order of the service's choosing, `dependsOn`, per-request faults and
throttling (a 429 with Retry-After in the request's own headers). `$filter=appId in (...)`: at most 15
values, else Graph's Request_UnsupportedQuery "Too many child clauses".
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from service.emulator import Emulator, Identity
from tests.emulator.test_graph import assert_odata_error, call

TokenGetter = Callable[..., Awaitable[str]]
SELECT = "$select=id,appId,passwordCredentials"


@pytest.fixture
async def token(get_token: TokenGetter, rotator: Identity) -> str:
    return await get_token(rotator)


def owned_apps(emu: Emulator, rotator: Identity, count: int) -> list[Any]:
    return [emu.add_app(rotator.tenant_id, f"Dime.Scheduler {i}", owners=[rotator.object_id]) for i in range(count)]


def get(rid: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"id": rid, "method": "GET", "url": url, **extra}


async def batch(http: aiohttp.ClientSession, emu: Emulator, token: str, requests: list[Any]) -> tuple[int, Any]:
    return await call(http, "POST", f"{emu.graph_url}/$batch", token, {"requests": requests})


async def test_each_request_in_a_batch_answers_on_its_own_and_not_in_the_order_asked(
    emu: Emulator, http: aiohttp.ClientSession, token: str, rotator: Identity
) -> None:
    [mine] = owned_apps(emu, rotator, 1)
    theirs = emu.add_app(rotator.tenant_id, "Not ours")
    requests = [
        get("1", f"/applications(appId='{mine.app_id}')?{SELECT}"),
        get("2", f"applications(appId='{uuid.uuid4()}')"),  # Graph takes the url with or without its slash
        get("3", f"/applications(appId='{theirs.app_id}')"),
    ]

    status, body = await batch(http, emu, token, requests)

    assert status == 200
    answers = body["responses"]
    assert [a["id"] for a in answers] != ["1", "2", "3"], "the answers come in an order the client must not rely on"
    by_id = {a["id"]: a for a in answers}
    assert {k: a["status"] for k, a in by_id.items()} == {"1": 200, "2": 404, "3": 403}
    assert by_id["1"]["body"]["id"] == mine.object_id
    assert set(by_id["1"]["body"]) == {"@odata.context", "id", "appId", "passwordCredentials"}
    assert by_id["1"]["headers"]["Content-Type"].startswith("application/json")
    assert_odata_error(by_id["2"]["body"], "Request_ResourceNotFound")
    assert_odata_error(by_id["3"]["body"], "Authorization_RequestDenied")
    inner = [(r.method, r.path, r.status) for r in emu.requests if r.inner]
    assert sorted(s for _, _, s in inner) == [200, 403, 404]
    assert [(r.method, r.path) for r in emu.requests if not r.inner and r.service == "graph"] == [
        ("POST", "/v1.0/$batch")
    ]


def _many(count: int) -> list[dict[str, Any]]:
    return [get(str(i), "/applications?$top=1") for i in range(count)]


@pytest.mark.parametrize(
    ("requests", "words"),
    [
        pytest.param(_many(21), "exceeds the limit", id="21 requests are one too many"),
        pytest.param(
            [get("a", "/applications"), get("A", "/applications")],
            "unique",
            id="ids differing only in case are the same id",
        ),
        pytest.param(
            [get("1", "https://graph.microsoft.com/v1.0/applications")], "relative", id="an absolute url is refused"
        ),
        pytest.param(
            [get("1", "/applications", dependsOn=["9"])],
            "depends on",
            id="dependsOn naming no request of the batch is refused",
        ),
        pytest.param(
            [{"id": "1", "method": "PATCH", "url": "/applications/x", "body": {"notes": "n"}}],
            "Content-Type",
            id="a body without its Content-Type is refused",
        ),
        pytest.param("not a list", "payload", id="requests that are not a list are refused"),
    ],
)
async def test_a_batch_graph_refuses_is_a_400_with_graphs_error_body_and_runs_nothing(
    emu: Emulator, http: aiohttp.ClientSession, token: str, requests: Any, words: str
) -> None:
    status, body = await batch(http, emu, token, requests)

    assert status == 400
    assert_odata_error(body, "BadRequest")
    assert words in body["error"]["message"]
    assert [r for r in emu.requests if r.inner] == []


async def test_twenty_requests_are_allowed(emu: Emulator, http: aiohttp.ClientSession, token: str) -> None:
    status, body = await batch(http, emu, token, _many(20))

    assert status == 200
    assert sorted(int(a["id"]) for a in body["responses"]) == list(range(20))


async def test_depends_on_runs_a_request_after_its_dependency_and_fails_it_with_424_when_that_failed(
    emu: Emulator, http: aiohttp.ClientSession, token: str, rotator: Identity
) -> None:
    [app] = owned_apps(emu, rotator, 1)
    add = {
        "id": "add",
        "method": "POST",
        "url": f"/applications/{app.object_id}/addPassword",
        "headers": {"Content-Type": "application/json"},
        "body": {"passwordCredential": {"displayName": "x"}},
    }
    requests = [
        get("after", f"/applications/{app.object_id}?$select=passwordCredentials", dependsOn=["add"]),
        add,
        get("missing", f"/applications/{uuid.uuid4()}"),
        get("orphan", f"/applications/{app.object_id}", dependsOn=["MISSING"]),
    ]

    status, body = await batch(http, emu, token, requests)

    assert status == 200
    by_id = {a["id"]: a for a in body["responses"]}
    assert by_id["add"]["status"] == 200
    [password] = by_id["after"]["body"]["passwordCredentials"]
    assert password["keyId"] == by_id["add"]["body"]["keyId"], "the dependent ran after the password was added"
    assert password["secretText"] is None
    assert (by_id["missing"]["status"], by_id["orphan"]["status"]) == (404, 424)


async def test_a_fault_on_a_request_inside_a_batch_is_that_requests_answer_with_its_own_retry_after(
    emu: Emulator, http: aiohttp.ClientSession, token: str, rotator: Identity
) -> None:
    first, second = owned_apps(emu, rotator, 2)
    emu.faults.add(rf"^/v1\.0/applications\(appId='{second.app_id}'\)$", "GET", "throttle", retry_after=7)

    status, body = await batch(
        http,
        emu,
        token,
        [get("1", f"/applications(appId='{first.app_id}')"), get("2", f"/applications(appId='{second.app_id}')")],
    )

    assert status == 200
    by_id = {a["id"]: a for a in body["responses"]}
    assert by_id["1"]["status"] == 200
    assert by_id["2"]["status"] == 429
    assert by_id["2"]["headers"]["Retry-After"] == "7"
    assert_odata_error(by_id["2"]["body"], "TooManyRequests")


async def test_graph_throttles_each_request_inside_a_batch_against_the_tenants_budget(
    emu: Emulator, http: aiohttp.ClientSession, token: str
) -> None:
    emu.throttle(graph=3, window=30)

    status, body = await batch(http, emu, token, _many(5))
    single, _ = await call(http, "GET", f"{emu.graph_url}/applications?$top=1", token)

    assert status == 200
    statuses = sorted(a["status"] for a in body["responses"])
    assert statuses == [200, 200, 200, 429, 429]
    throttled = [a for a in body["responses"] if a["status"] == 429]
    assert all(1 <= int(a["headers"]["Retry-After"]) <= 30 for a in throttled)
    assert single == 429, "the budget is the tenant's, batch or not"
    assert emu.throttled["graph"] == 3


async def test_a_dropped_request_inside_a_batch_drops_the_batchs_connection(
    emu: Emulator, http: aiohttp.ClientSession, token: str
) -> None:
    emu.faults.add(r"^/v1\.0/applications$", "GET", "drop", count=1)

    with pytest.raises(aiohttp.ClientError):
        await batch(http, emu, token, _many(2))


async def test_an_in_filter_on_app_id_returns_those_apps_up_to_graphs_limit_of_15_values(
    emu: Emulator, http: aiohttp.ClientSession, token: str, rotator: Identity
) -> None:
    apps = owned_apps(emu, rotator, 16)
    emu.add_app(rotator.tenant_id, "Not ours")

    def url(chosen: list[Any]) -> str:
        values = ",".join(f"'{a.app_id}'" for a in chosen)
        return f"{emu.graph_url}/applications?$filter=appId in ({values})&{SELECT}"

    status, body = await call(http, "GET", url(apps[:15]), token)
    assert status == 200
    assert sorted(a["appId"] for a in body["value"]) == sorted(a.app_id for a in apps[:15])
    assert "@odata.nextLink" not in body

    status, body = await call(http, "GET", url(apps), token)
    assert status == 400
    assert_odata_error(body, "Request_UnsupportedQuery")
    assert body["error"]["message"] == (
        "Too many child clauses specified in search filter expression containing 'OR' operators: 16. Max allowed: 15."
    )


async def test_an_in_filter_shows_an_owned_by_caller_only_the_apps_it_owns(
    emu: Emulator, http: aiohttp.ClientSession, token: str, rotator: Identity
) -> None:
    [mine] = owned_apps(emu, rotator, 1)
    theirs = emu.add_app(rotator.tenant_id, "Not ours")

    status, body = await call(
        http, "GET", f"{emu.graph_url}/applications?$filter=appId in ('{mine.app_id}', '{theirs.app_id}')", token
    )

    assert status == 200
    assert [a["id"] for a in body["value"]] == [mine.object_id]


async def test_control_api_counts_requests_inside_batches_apart(
    emu: Emulator, http: aiohttp.ClientSession, token: str
) -> None:
    await batch(http, emu, token, _many(3))

    async with http.get(f"{emu.url}/_emulator/requests") as response:
        counts = await response.json()

    assert counts["by_service"]["graph"] == 1
    assert counts["inner_by_service"] == {"graph": 3}
