"""The token endpoint: discovery, token claims, and Entra's error codes and bodies."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from service.emulator import Clock, Emulator, Identity
from service.emulator.tokens import b64url, decode_unverified

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
VAULT_SCOPE = "https://vault.azure.net/.default"
ENTRA_ERROR_FIELDS = {
    "error",
    "error_description",
    "error_codes",
    "timestamp",
    "trace_id",
    "correlation_id",
    "error_uri",
}


async def post_token(
    http: aiohttp.ClientSession, emu: Emulator, tenant: str, **form: str
) -> tuple[int, dict[str, Any]]:
    response = await http.post(f"{emu.url}/{tenant}/oauth2/v2.0/token", data=form)
    return response.status, await response.json()


def client_secret_form(identity: Identity, secret: str | None = None, scope: str = GRAPH_SCOPE) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": identity.client_id,
        "client_secret": secret if secret is not None else identity.secret,
        "scope": scope,
    }


def assert_entra_error(body: dict[str, Any], error: str, code: int) -> None:
    assert set(body) == ENTRA_ERROR_FIELDS
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert "Trace ID: " in body["error_description"]
    assert "Correlation ID: " in body["error_description"]
    assert "Timestamp: " in body["error_description"]


async def test_openid_configuration_names_the_emulators_endpoints(
    emu: Emulator, tenant_id: str, http: aiohttp.ClientSession
) -> None:
    response = await http.get(f"{emu.url}/{tenant_id}/v2.0/.well-known/openid-configuration")
    config = await response.json()
    assert response.status == 200
    assert config["issuer"] == f"{emu.url}/{tenant_id}/v2.0"
    assert config["token_endpoint"] == f"{emu.url}/{tenant_id}/oauth2/v2.0/token"
    assert config["device_authorization_endpoint"] == f"{emu.url}/{tenant_id}/oauth2/v2.0/devicecode"
    assert config["authorization_endpoint"].startswith(emu.url)
    keys = await (await http.get(config["jwks_uri"])).json()
    assert keys["keys"][0]["kty"] == "RSA"
    common = await (await http.get(f"{emu.url}/common/discovery/keys")).json()
    assert common["keys"][0]["kid"] == keys["keys"][0]["kid"]


async def test_openid_configuration_of_an_unknown_tenant_is_aadsts90002(
    emu: Emulator, tenant_id: str, http: aiohttp.ClientSession
) -> None:
    response = await http.get(f"{emu.url}/00000000-1111-2222-3333-444444444444/v2.0/.well-known/openid-configuration")
    assert response.status == 400
    assert_entra_error(await response.json(), "invalid_request", 90002)


async def test_app_token_carries_the_callers_graph_roles(
    emu: Emulator, rotator: Identity, http: aiohttp.ClientSession
) -> None:
    status, body = await post_token(http, emu, rotator.tenant_id, **client_secret_form(rotator))
    assert status == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599
    assert body["ext_expires_in"] == 3599
    header, claims = decode_unverified(body["access_token"])
    keys = await (await http.get(f"{emu.url}/{rotator.tenant_id}/discovery/v2.0/keys")).json()
    assert header["alg"] == "RS256"
    assert header["kid"] == keys["keys"][0]["kid"]
    assert claims["aud"] == "https://graph.microsoft.com"
    assert claims["tid"] == rotator.tenant_id
    assert claims["appid"] == claims["azp"] == rotator.client_id
    assert claims["oid"] == claims["sub"] == rotator.object_id
    assert claims["idtyp"] == "app"
    assert claims["roles"] == ["Application.ReadWrite.OwnedBy"]
    assert claims["iss"].startswith(emu.url)
    assert claims["nbf"] <= claims["iat"] < claims["exp"]


async def test_vault_token_has_the_vault_audience_and_no_graph_roles(
    emu: Emulator, rotator: Identity, http: aiohttp.ClientSession
) -> None:
    status, body = await post_token(http, emu, rotator.tenant_id, **client_secret_form(rotator, scope=VAULT_SCOPE))
    assert status == 200
    _, claims = decode_unverified(body["access_token"])
    assert claims["aud"] == "https://vault.azure.net"
    assert "roles" not in claims


async def test_graph_app_id_scope_is_accepted(emu: Emulator, rotator: Identity, http: aiohttp.ClientSession) -> None:
    form = client_secret_form(rotator, scope="00000003-0000-0000-c000-000000000000/.default")
    status, body = await post_token(http, emu, rotator.tenant_id, **form)
    assert status == 200
    assert decode_unverified(body["access_token"])[1]["aud"] == "00000003-0000-0000-c000-000000000000"


async def test_client_secret_in_http_basic_is_accepted(
    emu: Emulator, rotator: Identity, http: aiohttp.ClientSession
) -> None:
    response = await http.post(
        f"{emu.url}/{rotator.tenant_id}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "scope": GRAPH_SCOPE},
        headers={"Authorization": aiohttp.encode_basic_auth(rotator.client_id, rotator.secret)},
    )
    assert response.status == 200


@pytest.mark.parametrize(
    ("case", "status", "error", "code"),
    [
        pytest.param("wrong secret", 401, "invalid_client", 7000215, id="a wrong secret is AADSTS7000215"),
        pytest.param("unknown client", 400, "unauthorized_client", 700016, id="an unknown client id is AADSTS700016"),
        pytest.param("unknown tenant", 400, "invalid_request", 90002, id="an unknown tenant is AADSTS90002"),
        pytest.param("no credential", 401, "invalid_client", 7000218, id="no secret nor assertion is AADSTS7000218"),
        pytest.param("scope without .default", 400, "invalid_scope", 1002012, id="client credentials need .default"),
        pytest.param("unknown resource", 400, "invalid_resource", 500011, id="an unknown resource is AADSTS500011"),
    ],
)
async def test_token_errors_are_entras(
    emu: Emulator, rotator: Identity, http: aiohttp.ClientSession, case: str, status: int, error: str, code: int
) -> None:
    form = client_secret_form(rotator)
    tenant = rotator.tenant_id
    if case == "wrong secret":
        form["client_secret"] = "abc8Q~" + "x" * 34
    elif case == "unknown client":
        form["client_id"] = "11111111-2222-3333-4444-555555555555"
    elif case == "unknown tenant":
        tenant = "99999999-2222-3333-4444-555555555555"
    elif case == "no credential":
        del form["client_secret"]
    elif case == "scope without .default":
        form["scope"] = "https://graph.microsoft.com/Application.ReadWrite.All"
    elif case == "unknown resource":
        form["scope"] = "https://management.example/.default"
    got_status, body = await post_token(http, emu, tenant, **form)
    assert got_status == status
    assert_entra_error(body, error, code)


async def test_removed_secret_no_longer_authenticates(
    emu: Emulator, tenant_id: str, http: aiohttp.ClientSession
) -> None:
    app = emu.add_app(tenant_id, "Dime.Scheduler")
    key_id, secret = emu.add_password(tenant_id, app.app_id)
    identity = Identity(tenant_id, app.app_id, secret, "", app.object_id)
    assert (await post_token(http, emu, tenant_id, **client_secret_form(identity)))[0] == 200
    emu.directory.remove_password(app, key_id)
    status, body = await post_token(http, emu, tenant_id, **client_secret_form(identity))
    assert status == 401
    assert body["error_codes"] == [7000215]


async def test_advancing_the_clock_past_the_end_makes_a_secret_expired(
    emu: Emulator, tenant_id: str, clock: Clock, http: aiohttp.ClientSession
) -> None:
    app = emu.add_app(tenant_id, "Dime.Scheduler")
    now = clock.now()
    _, secret = emu.add_password(tenant_id, app.app_id, start=now, end=now + timedelta(days=10))
    identity = Identity(tenant_id, app.app_id, secret, "", app.object_id)
    assert (await post_token(http, emu, tenant_id, **client_secret_form(identity)))[0] == 200
    clock.advance(timedelta(days=10, seconds=1))
    status, body = await post_token(http, emu, tenant_id, **client_secret_form(identity))
    assert status == 401
    assert_entra_error(body, "invalid_client", 7000222)


async def test_a_new_secret_is_refused_until_replicated(
    emu: Emulator, tenant_id: str, rotator: Identity, clock: Clock, http: aiohttp.ClientSession
) -> None:
    app = emu.add_app(tenant_id, "Dime.Scheduler", owners=[rotator.object_id])
    emu.replication_delay = timedelta(seconds=30)
    record, secret = emu.directory.add_password(app, display_name="secret-rotator new")
    identity = Identity(tenant_id, app.app_id, secret, "", app.object_id)
    status, body = await post_token(http, emu, tenant_id, **client_secret_form(identity))
    assert (status, body["error_codes"]) == (401, [7000215])
    clock.advance(timedelta(seconds=31))
    assert (await post_token(http, emu, tenant_id, **client_secret_form(identity)))[0] == 200
    assert record.key_id in {p.key_id for p in emu.passwords(tenant_id, app.app_id)}


async def test_a_seeded_unusable_secret_never_authenticates(
    emu: Emulator, tenant_id: str, http: aiohttp.ClientSession
) -> None:
    app = emu.add_app(tenant_id, "Dime.Scheduler")
    _, secret = emu.add_password(tenant_id, app.app_id, usable=False)
    status, _ = await post_token(
        http, emu, tenant_id, **client_secret_form(Identity(tenant_id, app.app_id, secret, "", ""))
    )
    assert status == 401


async def test_an_app_without_service_principal_cannot_sign_in(
    emu: Emulator, tenant_id: str, http: aiohttp.ClientSession
) -> None:
    app = emu.add_app(tenant_id, "No SP", service_principal=False)
    _, secret = emu.add_password(tenant_id, app.app_id)
    status, body = await post_token(
        http, emu, tenant_id, **client_secret_form(Identity(tenant_id, app.app_id, secret, "", ""))
    )
    assert status == 400
    assert_entra_error(body, "invalid_client", 7000229)


def assertion(claims: dict[str, Any]) -> str:
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "k8s"}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}.{b64url(b'not-verified')}"


async def test_federated_assertion_signs_in_when_issuer_subject_and_audience_match(
    emu: Emulator, rotator: Identity, http: aiohttp.ClientSession
) -> None:
    issuer, subject = "https://oidc.example/cluster", "system:serviceaccount:rotator:secret-rotator"
    emu.add_federated_credential(rotator.tenant_id, rotator.client_id, issuer, subject)
    exp = int(emu.clock.now().timestamp()) + 600
    form = {
        "grant_type": "client_credentials",
        "client_id": rotator.client_id,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "scope": GRAPH_SCOPE,
    }
    good = assertion({"iss": issuer, "sub": subject, "aud": "api://AzureADTokenExchange", "exp": exp})
    status, body = await post_token(http, emu, rotator.tenant_id, **form, client_assertion=good)
    assert status == 200
    assert decode_unverified(body["access_token"])[1]["oid"] == rotator.object_id
    bad = assertion(
        {"iss": issuer, "sub": "system:serviceaccount:other:x", "aud": "api://AzureADTokenExchange", "exp": exp}
    )
    status, body = await post_token(http, emu, rotator.tenant_id, **form, client_assertion=bad)
    assert status == 400
    assert_entra_error(body, "invalid_client", 70021)


async def test_device_code_flow_is_pending_once_then_issues_a_delegated_token(
    emu: Emulator, tenant_id: str, http: aiohttp.ClientSession
) -> None:
    user_id = emu.add_user(tenant_id, "admin@contoso.example", roles=("Global Administrator",))
    cli = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
    response = await http.post(
        f"{emu.url}/{tenant_id}/oauth2/v2.0/devicecode",
        data={"client_id": cli, "scope": GRAPH_SCOPE + " offline_access"},
    )
    flow = await response.json()
    assert response.status == 200
    assert {"user_code", "device_code", "verification_uri", "expires_in", "interval", "message"} <= set(flow)
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "client_id": cli,
        "device_code": flow["device_code"],
    }
    status, body = await post_token(http, emu, tenant_id, **form)
    assert status == 400
    assert_entra_error(body, "authorization_pending", 70016)
    status, body = await post_token(http, emu, tenant_id, **form)
    assert status == 200
    claims = decode_unverified(body["access_token"])[1]
    assert claims["oid"] == user_id
    assert claims["idtyp"] == "user"
    assert "Application.ReadWrite.All" in claims["scp"].split()
    assert "62e90394-69f5-4237-9190-012177145e10" in claims["wids"]
    client_info = json.loads(base64.urlsafe_b64decode(body["client_info"] + "=="))
    assert client_info == {"uid": user_id, "utid": tenant_id}
    assert decode_unverified(body["id_token"])[1]["preferred_username"] == "admin@contoso.example"
