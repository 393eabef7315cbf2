"""A user's delegated sign-in: who approves the device code, the `scope` Entra answers, refresh tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from service.emulator import Clock, Emulator
from service.emulator.entra import DEFAULT_DELEGATED_SCOPES
from service.emulator.tokens import decode_unverified
from tests.emulator.test_entra import assert_entra_error, post_token

AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
AZURE_POWERSHELL = "1950a258-227b-4e31-a9cf-717495945fc2"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
VAULT_SCOPE = "https://vault.azure.net/.default"
# What MSAL adds to every scope it asks for.
OIDC = " openid profile offline_access"


async def device_sign_in(
    http: aiohttp.ClientSession, emu: Emulator, tenant: str, scope: str = GRAPH_SCOPE, client_id: str = AZURE_CLI
) -> dict[str, Any]:
    """A device code flow to its end (one pending poll, then the token): the token answer."""
    response = await http.post(
        f"{emu.url}/{tenant}/oauth2/v2.0/devicecode", data={"client_id": client_id, "scope": scope + OIDC}
    )
    flow = await response.json()
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "client_id": client_id,
        "device_code": flow["device_code"],
    }
    assert (await post_token(http, emu, tenant, **form))[0] == 400
    status, body = await post_token(http, emu, tenant, **form)
    assert status == 200, body
    return body


def redeem(refresh_token: str, scope: str = VAULT_SCOPE, client_id: str = AZURE_CLI) -> dict[str, str]:
    """The form MSAL posts to redeem a refresh token."""
    return {
        "grant_type": "refresh_token",
        "client_id": client_id,
        "refresh_token": refresh_token,
        "scope": scope + OIDC,
        "client_info": "1",
    }


def claims_of(body: dict[str, Any]) -> dict[str, Any]:
    return decode_unverified(body["access_token"])[1]


# -- who signs in ----------------------------------------------------------------------------------


async def test_the_first_user_approves_a_device_code_unless_another_is_chosen(
    emu: Emulator, tenant_id: str, http: aiohttp.ClientSession
) -> None:
    first = emu.add_user(tenant_id, "admin@contoso.example")
    assert claims_of(await device_sign_in(http, emu, tenant_id))["oid"] == first

    roles = ("Cloud Application Administrator",)
    chosen = emu.add_user(tenant_id, "appadmin@contoso.example", roles, device_sign_in=True)
    emu.add_user(tenant_id, "later@contoso.example")  # added after: does not take over
    claims = claims_of(await device_sign_in(http, emu, tenant_id))
    assert (claims["oid"], claims["upn"]) == (chosen, "appadmin@contoso.example")

    emu.sign_in_device_codes_as(tenant_id, first)
    assert claims_of(await device_sign_in(http, emu, tenant_id))["oid"] == first


def test_only_a_user_of_the_tenant_can_be_chosen(emu: Emulator, tenant_id: str) -> None:
    other = emu.add_tenant()
    stranger = emu.add_user(other, "someone@fabrikam.example")
    with pytest.raises(KeyError):
        emu.sign_in_device_codes_as(tenant_id, stranger)


# -- the scope an answer lists ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "answered"),
    [
        pytest.param(
            GRAPH_SCOPE,
            {"profile", "openid", "email", "https://graph.microsoft.com/.default"}
            | {f"https://graph.microsoft.com/{name}" for name in DEFAULT_DELEGATED_SCOPES},
            id="graph .default is answered with the consented permissions, the OIDC ones and .default itself",
        ),
        pytest.param(
            VAULT_SCOPE,
            {"https://vault.azure.net/user_impersonation", "https://vault.azure.net/.default"},
            id="key vault .default is answered with user_impersonation and .default",
        ),
        pytest.param(
            "https://graph.microsoft.com/User.Read",
            {"profile", "openid", "email", "https://graph.microsoft.com/User.Read"},
            id="a named permission is answered without .default",
        ),
    ],
)
async def test_the_answer_lists_what_the_request_stood_for(
    emu: Emulator, tenant_id: str, http: aiohttp.ClientSession, scope: str, answered: set[str]
) -> None:
    emu.add_user(tenant_id, "admin@contoso.example")

    body = await device_sign_in(http, emu, tenant_id, scope)

    assert set(body["scope"].split()) == answered  # never offline_access, though a refresh token comes along
    assert body["refresh_token"]


# -- refresh tokens --------------------------------------------------------------------------------


async def test_a_refresh_token_brings_a_token_for_another_resource_without_a_new_sign_in(
    emu: Emulator, tenant_id: str, http: aiohttp.ClientSession
) -> None:
    user_id = emu.add_user(tenant_id, "admin@contoso.example")
    signed_in = await device_sign_in(http, emu, tenant_id)
    emu.reset_requests()

    status, body = await post_token(http, emu, tenant_id, **redeem(signed_in["refresh_token"]))

    assert status == 200, body
    claims = claims_of(body)
    assert (claims["aud"], claims["oid"], claims["scp"]) == ("https://vault.azure.net", user_id, "user_impersonation")
    assert claims["appid"] == AZURE_CLI
    assert body["scope"] == "https://vault.azure.net/user_impersonation https://vault.azure.net/.default"
    assert body["refresh_token"] != signed_in["refresh_token"]
    assert (body["client_info"], decode_unverified(body["id_token"])[1]["oid"]) == (signed_in["client_info"], user_id)
    assert [r.path for r in emu.requests] == [f"/{tenant_id}/oauth2/v2.0/token"]  # no device code asked for


async def test_a_redeemed_refresh_token_is_replaced_and_both_stay_valid(
    emu: Emulator, tenant_id: str, http: aiohttp.ClientSession
) -> None:
    emu.add_user(tenant_id, "admin@contoso.example")
    first = (await device_sign_in(http, emu, tenant_id))["refresh_token"]

    status, body = await post_token(http, emu, tenant_id, **redeem(first))
    assert status == 200
    second = body["refresh_token"]

    # Entra does not revoke the redeemed token; the client is to drop it.
    assert (await post_token(http, emu, tenant_id, **redeem(first, GRAPH_SCOPE)))[0] == 200
    status, body = await post_token(http, emu, tenant_id, **redeem(second, GRAPH_SCOPE))
    assert status == 200
    assert claims_of(body)["aud"] == "https://graph.microsoft.com"


@pytest.mark.parametrize(
    ("case", "error", "code"),
    [
        pytest.param("unknown", "invalid_grant", 70000, id="an unknown refresh token is AADSTS70000"),
        pytest.param("another client", "invalid_grant", 70000, id="another client's refresh token is AADSTS70000"),
        pytest.param("another tenant", "invalid_grant", 70000, id="a refresh token at another tenant is AADSTS70000"),
        pytest.param("missing", "invalid_request", 900144, id="no refresh token is AADSTS900144"),
        pytest.param("unused for 90 days", "invalid_grant", 700082, id="one unused for 90 days is AADSTS700082"),
    ],
)
async def test_refresh_token_errors_are_entras(
    emu: Emulator, tenant_id: str, clock: Clock, http: aiohttp.ClientSession, case: str, error: str, code: int
) -> None:
    emu.add_user(tenant_id, "admin@contoso.example")
    form = redeem((await device_sign_in(http, emu, tenant_id))["refresh_token"])
    tenant = tenant_id
    if case == "unknown":
        form["refresh_token"] = "1.A" + "x" * 120
    elif case == "another client":
        form["client_id"] = AZURE_POWERSHELL
    elif case == "another tenant":
        tenant = emu.add_tenant()
    elif case == "missing":
        del form["refresh_token"]
    elif case == "unused for 90 days":
        clock.advance(timedelta(days=90))

    status, body = await post_token(http, emu, tenant, **form)

    assert status == 400
    assert_entra_error(body, error, code)
    if code == 700082:
        assert "and was inactive for 90.00:00:00." in body["error_description"]


async def test_a_refresh_token_used_within_90_days_still_works(
    emu: Emulator, tenant_id: str, clock: Clock, http: aiohttp.ClientSession
) -> None:
    emu.add_user(tenant_id, "admin@contoso.example")
    refresh_token = (await device_sign_in(http, emu, tenant_id))["refresh_token"]
    clock.advance(timedelta(days=89))

    assert (await post_token(http, emu, tenant_id, **redeem(refresh_token)))[0] == 200


async def test_a_refresh_token_keeps_the_user_who_signed_in(
    emu: Emulator, tenant_id: str, http: aiohttp.ClientSession
) -> None:
    admin = emu.add_user(tenant_id, "admin@contoso.example")
    refresh_token = (await device_sign_in(http, emu, tenant_id))["refresh_token"]
    emu.add_user(tenant_id, "other@contoso.example", device_sign_in=True)

    status, body = await post_token(http, emu, tenant_id, **redeem(refresh_token))

    assert status == 200
    assert claims_of(body)["oid"] == admin


async def test_refresh_tokens_are_canaries(emu: Emulator, tenant_id: str, http: aiohttp.ClientSession) -> None:
    """A refresh token is a credential for 90 days: output holding one fails a test, as a secret does."""
    emu.add_user(tenant_id, "admin@contoso.example")

    refresh_token = (await device_sign_in(http, emu, tenant_id))["refresh_token"]

    assert refresh_token in Emulator.issued_secrets()
