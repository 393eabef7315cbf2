"""Key Vault secrets: the challenge, bundles and attributes, versions paging, and Key Vault's errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from service.emulator import Emulator, Identity

TokenGetter = Callable[..., Awaitable[str]]
VAULT_SCOPE = "https://vault.azure.net/.default"
API = "api-version=7.5"


@pytest.fixture
async def vault_token(get_token: TokenGetter, rotator: Identity) -> str:
    return await get_token(rotator, VAULT_SCOPE)


async def call(
    http: aiohttp.ClientSession, method: str, url: str, token: str | None, body: Any = None
) -> tuple[int, Any, aiohttp.ClientResponse]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await http.request(method, url, json=body, headers=headers)
    text = await response.text()
    return response.status, (await response.json() if text else None), response


async def test_an_unauthenticated_request_gets_the_challenge(
    emu: Emulator, rotator: Identity, http: aiohttp.ClientSession
) -> None:
    status, body, response = await call(http, "GET", f"{emu.vault_url}/secrets/x?{API}", None)
    assert status == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer authorization="{emu.url}/{rotator.tenant_id}", resource="https://vault.azure.net"'
    )
    assert body == {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}}


async def test_a_graph_token_is_refused_for_its_audience(
    emu: Emulator, rotator: Identity, http: aiohttp.ClientSession, get_token: TokenGetter
) -> None:
    status, body, _ = await call(http, "GET", f"{emu.vault_url}/secrets/x?{API}", await get_token(rotator))
    assert status == 401
    assert body["error"]["message"].startswith("AKV10022: Invalid audience.")


async def test_a_token_from_another_tenant_is_refused(
    emu: Emulator, rotator: Identity, http: aiohttp.ClientSession, get_token: TokenGetter
) -> None:
    other = emu.add_tenant()
    stranger = emu.add_rotator(other)
    status, body, _ = await call(
        http, "GET", f"{emu.vault_url}/secrets/x?{API}", await get_token(stranger, VAULT_SCOPE)
    )
    assert status == 401
    assert body["error"]["message"].startswith("AKV10032: Invalid issuer.")


async def test_missing_api_version_is_a_bad_parameter(
    emu: Emulator, http: aiohttp.ClientSession, vault_token: str
) -> None:
    status, body, _ = await call(http, "GET", f"{emu.vault_url}/secrets/x", vault_token)
    assert status == 400
    assert body["error"]["code"] == "BadParameter"


async def test_set_get_latest_and_by_version_with_attributes_and_tags(
    emu: Emulator, http: aiohttp.ClientSession, vault_token: str
) -> None:
    url = f"{emu.vault_url}/secrets/dime-exchange"
    first = {
        "value": "one",
        "tags": {"key-id": "k1", "managed-by": "secret-rotator"},
        "attributes": {"exp": 1900000000},
    }
    status, bundle, _ = await call(http, "PUT", f"{url}?{API}", vault_token, first)
    assert status == 200
    assert bundle["value"] == "one"
    assert bundle["tags"] == first["tags"]
    assert bundle["id"].startswith(f"{emu.vault_url}/secrets/dime-exchange/")
    version = bundle["id"].rsplit("/", 1)[1]
    assert len(version) == 32
    assert int(version, 16) >= 0
    attrs = bundle["attributes"]
    assert attrs["enabled"] is True
    assert attrs["exp"] == 1900000000
    assert attrs["recoveryLevel"] == "Recoverable+Purgeable"
    assert attrs["recoverableDays"] == 90
    assert isinstance(attrs["created"], int)
    assert attrs["created"] == attrs["updated"]
    await call(http, "PUT", f"{url}?{API}", vault_token, {"value": "two", "contentType": "text/plain"})
    for latest_url in (f"{url}?{API}", f"{url}/?{API}"):
        status, latest, _ = await call(http, "GET", latest_url, vault_token)
        assert (status, latest["value"], latest["contentType"]) == (200, "two", "text/plain")
    status, old, _ = await call(http, "GET", f"{url}/{version}?{API}", vault_token)
    assert (status, old["value"]) == (200, "one")
    assert emu.vault_secret("dime-exchange") is not None
    assert [v.value for v in emu.vault_versions("dime-exchange")] == ["one", "two"]


async def test_patch_updates_attributes_and_tags_without_returning_the_value(
    emu: Emulator, http: aiohttp.ClientSession, vault_token: str
) -> None:
    _, bundle, _ = await call(http, "PUT", f"{emu.vault_url}/secrets/s?{API}", vault_token, {"value": "v"})
    version = bundle["id"].rsplit("/", 1)[1]
    body = {"tags": {"key-id": "k9"}, "attributes": {"enabled": False}}
    status, updated, _ = await call(http, "PATCH", f"{emu.vault_url}/secrets/s/{version}?{API}", vault_token, body)
    assert status == 200
    assert "value" not in updated
    assert updated["tags"] == {"key-id": "k9"}
    status, body, _ = await call(http, "GET", f"{emu.vault_url}/secrets/s?{API}", vault_token)
    assert status == 403
    assert body["error"]["innererror"]["code"] == "SecretDisabled"


async def test_versions_are_paged_with_an_absolute_next_link(
    emu: Emulator, http: aiohttp.ClientSession, vault_token: str
) -> None:
    for i in range(5):
        await call(http, "PUT", f"{emu.vault_url}/secrets/paged?{API}", vault_token, {"value": f"v{i}"})
    url: str | None = f"{emu.vault_url}/secrets/paged/versions?{API}&maxresults=2"
    pages: list[list[dict[str, Any]]] = []
    while url:
        status, body, _ = await call(http, "GET", url, vault_token)
        assert status == 200
        pages.append(body["value"])
        url = body["nextLink"]
        if url:
            assert url.startswith(f"{emu.vault_url}/secrets/paged/versions?api-version=7.5")
            assert "$skiptoken=" in url
    assert [len(p) for p in pages] == [2, 2, 1]
    items = [item for page in pages for item in page]
    assert all("value" not in item for item in items)
    assert len({item["id"] for item in items}) == 5
    status, body, _ = await call(
        http, "GET", f"{emu.vault_url}/secrets/paged/versions?{API}&maxresults=26", vault_token
    )
    assert (status, body["error"]["code"]) == (400, "BadParameter")
    status, listing, _ = await call(http, "GET", f"{emu.vault_url}/secrets?{API}", vault_token)
    assert [i["id"] for i in listing["value"]] == [f"{emu.vault_url}/secrets/paged"]


async def _list_versions(http: aiohttp.ClientSession, url: str | None, token: str) -> list[list[dict[str, Any]]]:
    pages = []
    while url:
        status, body, _ = await call(http, "GET", url, token)
        assert status == 200
        pages.append(body["value"])
        url = body["nextLink"]
    return pages


async def test_versions_are_listed_by_version_id_not_by_creation(
    emu: Emulator, http: aiohttp.ClientSession, vault_token: str
) -> None:
    ids = ["f" * 32, "0" * 32, "8" * 32]  # written in this order: newest first by id, oldest last
    for i, version_id in enumerate(ids):
        emu.add_vault_secret("ordered", f"v{i}", version_id=version_id)
        emu.clock.advance(timedelta(seconds=5))

    [page] = await _list_versions(http, f"{emu.vault_url}/secrets/ordered/versions?{API}", vault_token)

    listed = [item["id"].rsplit("/", 1)[1] for item in page]
    assert listed == sorted(ids)
    current = emu.vault_secret("ordered")
    assert current is not None
    assert (current.version, listed[-1]) == ("8" * 32, "f" * 32), "the last one listed is not the current one"
    assert max(page, key=lambda item: item["attributes"]["created"])["id"].endswith(current.version)


async def test_pages_may_be_shorter_than_maxresults_and_still_carry_a_next_link(
    emu: Emulator, http: aiohttp.ClientSession, vault_token: str
) -> None:
    for i in range(5):
        emu.add_vault_secret("short", f"v{i}")
    emu.vault_page_limit = 2

    pages = await _list_versions(http, f"{emu.vault_url}/secrets/short/versions?{API}&maxresults=25", vault_token)

    assert [len(p) for p in pages] == [2, 2, 1]
    assert len({item["id"] for page in pages for item in page}) == 5


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        pytest.param("/secrets/missing", 404, "SecretNotFound", id="an unknown secret is SecretNotFound"),
        pytest.param("/secrets/missing/versions", 404, "SecretNotFound", id="versions of an unknown secret too"),
        pytest.param("/secrets/bad_name", 400, "BadParameter", id="a name outside [0-9a-zA-Z-] is BadParameter"),
    ],
)
async def test_errors_are_key_vaults(
    emu: Emulator, http: aiohttp.ClientSession, vault_token: str, path: str, status: int, code: str
) -> None:
    got, body, _ = await call(http, "GET", f"{emu.vault_url}{path}?{API}", vault_token)
    assert got == status
    assert body["error"]["code"] == code
    if code == "SecretNotFound":
        assert body["error"]["message"].startswith("A secret with (name/id) missing was not found in this key vault.")


async def test_a_denied_principal_gets_forbidden_by_rbac(
    emu: Emulator, rotator: Identity, http: aiohttp.ClientSession, vault_token: str
) -> None:
    emu.kv_deny(rotator.object_id)
    status, body, _ = await call(http, "PUT", f"{emu.vault_url}/secrets/s?{API}", vault_token, {"value": "v"})
    assert status == 403
    assert body["error"]["code"] == "Forbidden"
    assert body["error"]["innererror"]["code"] == "ForbiddenByRbac"


async def test_delete_makes_the_secret_not_found_and_its_name_unusable_until_purged(
    emu: Emulator, http: aiohttp.ClientSession, vault_token: str
) -> None:
    await call(http, "PUT", f"{emu.vault_url}/secrets/gone?{API}", vault_token, {"value": "v"})
    status, deleted, _ = await call(http, "DELETE", f"{emu.vault_url}/secrets/gone?{API}", vault_token)
    assert status == 200
    assert deleted["recoveryId"] == f"{emu.vault_url}/deletedsecrets/gone"
    assert (await call(http, "GET", f"{emu.vault_url}/secrets/gone?{API}", vault_token))[0] == 404
    assert (await call(http, "PUT", f"{emu.vault_url}/secrets/gone?{API}", vault_token, {"value": "w"}))[0] == 409
    assert (await call(http, "DELETE", f"{emu.vault_url}/deletedsecrets/gone?{API}", vault_token))[0] == 204
    assert (await call(http, "PUT", f"{emu.vault_url}/secrets/gone?{API}", vault_token, {"value": "w"}))[0] == 200


async def test_a_principal_whose_role_is_on_single_secrets_may_read_one_but_not_list_the_vault(
    emu: Emulator, http: aiohttp.ClientSession, vault_token: str, rotator: Identity
) -> None:
    await call(http, "PUT", f"{emu.vault_url}/secrets/one?{API}", vault_token, {"value": "v"})
    emu.kv_scope_to_secrets(rotator.object_id)

    read, _, _ = await call(http, "GET", f"{emu.vault_url}/secrets/one?{API}", vault_token)
    listed, body, _ = await call(http, "GET", f"{emu.vault_url}/secrets?{API}&maxresults=25", vault_token)

    assert read == 200
    assert listed == 403
    assert body["error"]["innererror"]["code"] == "ForbiddenByRbac"
    assert "secrets/readMetadata/action" in body["error"]["message"]


async def test_the_vault_lists_each_secrets_current_version_in_pages_of_maxresults(
    emu: Emulator, http: aiohttp.ClientSession, vault_token: str
) -> None:
    for name in ("a", "b", "c"):
        for n in range(2):
            await call(
                http, "PUT", f"{emu.vault_url}/secrets/{name}?{API}", vault_token, {"value": "v", "tags": {"n": str(n)}}
            )

    pages = await _list_versions(http, f"{emu.vault_url}/secrets?{API}&maxresults=2", vault_token)

    assert [len(p) for p in pages] == [2, 1]
    items = [item for page in pages for item in page]
    assert sorted(i["id"] for i in items) == [f"{emu.vault_url}/secrets/{n}" for n in ("a", "b", "c")]
    assert all(i["tags"] == {"n": "1"} for i in items), "the current version's tags"
    assert all("value" not in i for i in items)


async def test_the_vault_throttles_beyond_its_budget_with_a_retry_after(
    emu: Emulator, http: aiohttp.ClientSession, vault_token: str
) -> None:
    emu.throttle(vault=2, window=30)

    statuses = [(await call(http, "GET", f"{emu.vault_url}/secrets?{API}", vault_token))[::2] for _ in range(3)]

    assert [s for s, _ in statuses] == [200, 200, 429]
    assert 1 <= int(statuses[2][1].headers["Retry-After"]) <= 30
