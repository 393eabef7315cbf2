"""Graph v1.0: resources, OData shapes and errors, and Entra's authorization rules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from service.emulator import GRAPH_APP_ROLES, Emulator, Identity
from service.emulator.wire import parse_iso

Auth = Callable[[str], dict[str, str]]
TokenGetter = Callable[..., Awaitable[str]]


async def call(
    http: aiohttp.ClientSession, method: str, url: str, token: str | None, body: Any = None, **headers: str
) -> tuple[int, Any]:
    all_headers = dict(headers)
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    response = await http.request(method, url, json=body, headers=all_headers)
    text = await response.text()
    return response.status, (await response.json() if text else None)


@pytest.fixture
async def token(get_token: TokenGetter, rotator: Identity) -> str:
    return await get_token(rotator)


@pytest.fixture
def dime(emu: Emulator, rotator: Identity) -> Any:
    return emu.add_app(rotator.tenant_id, "Dime.Scheduler", owners=[rotator.object_id])


def assert_odata_error(body: dict[str, Any], code: str) -> None:
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    inner = body["error"]["innerError"]
    assert {"date", "request-id", "client-request-id"} <= set(inner)


async def test_get_application_by_id_and_by_app_id(
    emu: Emulator, http: aiohttp.ClientSession, token: str, dime: Any
) -> None:
    status, by_id = await call(http, "GET", f"{emu.graph_url}/applications/{dime.object_id}", token)
    assert status == 200
    assert by_id["@odata.context"] == f"{emu.graph_url}/$metadata#applications/$entity"
    assert by_id["appId"] == dime.app_id
    assert by_id["passwordCredentials"] == []
    # The SDK sends the quotes percent-encoded.
    status, by_app_id = await call(http, "GET", f"{emu.graph_url}/applications(appId=%27{dime.app_id}%27)", token)
    assert status == 200
    assert by_app_id["id"] == dime.object_id


async def test_select_returns_only_the_named_properties(
    emu: Emulator, http: aiohttp.ClientSession, token: str, dime: Any
) -> None:
    url = f"{emu.graph_url}/applications/{dime.object_id}?$select=id,passwordCredentials"
    status, body = await call(http, "GET", url, token)
    assert status == 200
    assert set(body) == {"@odata.context", "id", "passwordCredentials"}
    assert body["@odata.context"].endswith("#applications(id,passwordCredentials)/$entity")


async def test_filter_by_display_name_and_app_id(
    emu: Emulator, http: aiohttp.ClientSession, get_token: TokenGetter, rotator: Identity, dime: Any
) -> None:
    emu.grant_app_role(rotator.tenant_id, rotator.object_id, "Application.Read.All")
    token = await get_token(rotator)
    status, body = await call(
        http, "GET", f"{emu.graph_url}/applications?$filter=displayName eq 'Dime.Scheduler'", token
    )
    assert status == 200
    assert [a["id"] for a in body["value"]] == [dime.object_id]
    status, body = await call(http, "GET", f"{emu.graph_url}/applications?$filter=appId eq '{dime.app_id}'", token)
    assert [a["id"] for a in body["value"]] == [dime.object_id]
    status, body = await call(http, "GET", f"{emu.graph_url}/applications?$filter=notes eq 'x'", token)
    assert status == 400
    assert_odata_error(body, "Request_UnsupportedQuery")


async def test_owned_by_lists_only_owned_apps_and_cannot_read_others(
    emu: Emulator, http: aiohttp.ClientSession, token: str, rotator: Identity, dime: Any
) -> None:
    other = emu.add_app(rotator.tenant_id, "Someone else's app")
    status, body = await call(http, "GET", f"{emu.graph_url}/applications", token)
    assert status == 200
    assert [a["id"] for a in body["value"]] == [dime.object_id]
    status, body = await call(http, "GET", f"{emu.graph_url}/applications/{other.object_id}", token)
    assert status == 403
    assert_odata_error(body, "Authorization_RequestDenied")
    assert body["error"]["message"] == "Insufficient privileges to complete the operation."
    status, body = await call(http, "POST", f"{emu.graph_url}/applications/{other.object_id}/addPassword", token, {})
    assert status == 403


async def test_read_all_can_read_but_not_write(
    emu: Emulator, http: aiohttp.ClientSession, get_token: TokenGetter, tenant_id: str
) -> None:
    reader = emu.add_rotator(tenant_id, roles=("Application.Read.All",), display_name="reader")
    app = emu.add_app(tenant_id, "Dime.Scheduler")
    token = await get_token(reader)
    assert (await call(http, "GET", f"{emu.graph_url}/applications/{app.object_id}", token))[0] == 200
    status, body = await call(http, "POST", f"{emu.graph_url}/applications/{app.object_id}/addPassword", token, {})
    assert status == 403
    assert_odata_error(body, "Authorization_RequestDenied")


async def test_missing_expired_and_misdirected_tokens_are_invalid_authentication_token(
    emu: Emulator, http: aiohttp.ClientSession, get_token: TokenGetter, rotator: Identity, dime: Any
) -> None:
    url = f"{emu.graph_url}/applications/{dime.object_id}"
    status, body = await call(http, "GET", url, None)
    assert status == 401
    assert_odata_error(body, "InvalidAuthenticationToken")
    assert body["error"]["message"] == "Access token is empty."
    vault_token = await get_token(rotator, "https://vault.azure.net/.default")
    status, body = await call(http, "GET", url, vault_token)
    assert (status, body["error"]["code"]) == (401, "InvalidAuthenticationToken")
    assert "audience" in body["error"]["message"]
    token = await get_token(rotator)
    emu.clock.advance(timedelta(hours=2))
    status, body = await call(http, "GET", url, token)
    assert (status, body["error"]["code"]) == (401, "InvalidAuthenticationToken")
    assert "expired" in body["error"]["message"]


async def test_not_found_is_request_resource_not_found_and_echoes_client_request_id(
    emu: Emulator, http: aiohttp.ClientSession, token: str
) -> None:
    missing = "0a0a0a0a-0000-0000-0000-000000000000"
    response = await http.get(
        f"{emu.graph_url}/applications/{missing}",
        headers={"Authorization": f"Bearer {token}", "client-request-id": "my-correlation"},
    )
    body = await response.json()
    assert response.status == 404
    assert_odata_error(body, "Request_ResourceNotFound")
    assert body["error"]["message"] == (
        f"Resource '{missing}' does not exist or one of its queried reference-property objects are not present."
    )
    assert body["error"]["innerError"]["client-request-id"] == "my-correlation"
    assert response.headers["client-request-id"] == "my-correlation"


async def test_add_password_returns_the_secret_once_with_entras_defaults(
    emu: Emulator, http: aiohttp.ClientSession, token: str, dime: Any
) -> None:
    url = f"{emu.graph_url}/applications/{dime.object_id}"
    status, created = await call(
        http, "POST", f"{url}/addPassword", token, {"passwordCredential": {"displayName": "r1"}}
    )
    assert status == 200
    assert created["@odata.context"].endswith("#microsoft.graph.passwordCredential")
    secret = created["secretText"]
    assert len(secret) == 40
    assert created["hint"] == secret[:3]
    assert created["displayName"] == "r1"
    lifetime = parse_iso(created["endDateTime"]) - parse_iso(created["startDateTime"])
    assert lifetime == timedelta(days=730)
    assert secret in Emulator.issued_secrets()
    status, app = await call(http, "GET", url, token)
    assert [p["keyId"] for p in app["passwordCredentials"]] == [created["keyId"]]
    assert app["passwordCredentials"][0]["secretText"] is None
    assert app["passwordCredentials"][0]["endDateTime"].endswith("Z")


async def test_add_password_with_an_empty_body_and_a_given_end(
    emu: Emulator, http: aiohttp.ClientSession, token: str, dime: Any
) -> None:
    url = f"{emu.graph_url}/applications/{dime.object_id}/addPassword"
    response = await http.post(url, headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200
    end = "2030-01-01T00:00:00Z"
    status, created = await call(http, "POST", url, token, {"passwordCredential": {"endDateTime": end}})
    assert status == 200
    assert created["endDateTime"] == end


async def test_remove_password_and_an_unknown_key_id(
    emu: Emulator, http: aiohttp.ClientSession, token: str, dime: Any, rotator: Identity
) -> None:
    key_id, _ = emu.add_password(rotator.tenant_id, dime.app_id)
    url = f"{emu.graph_url}/applications/{dime.object_id}/removePassword"
    assert (await call(http, "POST", url, token, {"keyId": key_id}))[0] == 204
    assert emu.passwords(rotator.tenant_id, dime.app_id) == []
    status, body = await call(http, "POST", url, token, {"keyId": key_id})
    assert status == 404
    assert_odata_error(body, "Request_ResourceNotFound")
    status, body = await call(http, "POST", url, token, {"keyId": "not-a-guid"})
    assert status == 400


async def test_password_cap_is_too_many_app_passwords(
    emu: Emulator, http: aiohttp.ClientSession, token: str, dime: Any
) -> None:
    emu.password_cap = 2
    url = f"{emu.graph_url}/applications/{dime.object_id}/addPassword"
    for _ in range(2):
        assert (await call(http, "POST", url, token, {}))[0] == 200
    status, body = await call(http, "POST", url, token, {})
    assert status == 400
    assert_odata_error(body, "TooManyAppPasswords")
    assert body["error"]["message"] == "Not allowed to add 3 passwords. You can only add a maximum of 2 passwords."


@pytest.mark.parametrize("scope", ["tenant", "app"], ids=["the tenant default policy", "a policy on the app"])
async def test_a_lifetime_beyond_the_policy_is_refused(
    emu: Emulator, http: aiohttp.ClientSession, token: str, dime: Any, rotator: Identity, scope: str
) -> None:
    emu.set_password_max_lifetime(
        rotator.tenant_id, timedelta(days=90), app_object_id=dime.object_id if scope == "app" else None
    )
    url = f"{emu.graph_url}/applications/{dime.object_id}/addPassword"
    now = emu.clock.now()
    too_long = {"passwordCredential": {"endDateTime": (now + timedelta(days=91)).strftime("%Y-%m-%dT%H:%M:%SZ")}}
    status, body = await call(http, "POST", url, token, too_long)
    assert status == 400
    assert_odata_error(body, "CredentialInvalidLifetimeAsPerAppPolicy")
    assert body["error"]["message"].startswith(
        "Credential lifetime exceeds the max value allowed as per assigned policy"
    )
    fits = {"passwordCredential": {"endDateTime": (now + timedelta(days=89)).strftime("%Y-%m-%dT%H:%M:%SZ")}}
    assert (await call(http, "POST", url, token, fits))[0] == 200
    status, policies = await call(
        http, "GET", f"{emu.graph_url}/applications/{dime.object_id}/appManagementPolicies", token
    )
    assert status == 200
    assert len(policies["value"]) == (1 if scope == "app" else 0)


async def test_default_app_management_policy_needs_a_policy_read_role(
    emu: Emulator, http: aiohttp.ClientSession, get_token: TokenGetter, rotator: Identity
) -> None:
    emu.set_password_max_lifetime(rotator.tenant_id, timedelta(days=90))
    url = f"{emu.graph_url}/policies/defaultAppManagementPolicy"
    status, body = await call(http, "GET", url, await get_token(rotator))
    assert status == 403
    emu.grant_app_role(rotator.tenant_id, rotator.object_id, "Policy.Read.ApplicationConfiguration")
    status, body = await call(http, "GET", url, await get_token(rotator))
    assert status == 200
    restriction = body["applicationRestrictions"]["passwordCredentials"][0]
    assert restriction["restrictionType"] == "passwordLifetime"
    assert restriction["maxLifetime"] == "P90D"
    assert "restrictForAppsCreatedAfterDateTime" in restriction


async def test_an_app_seeded_with_required_resource_access_shows_it_in_graph(
    emu: Emulator, http: aiohttp.ClientSession, token: str, rotator: Identity
) -> None:
    requested: list[dict[str, Any]] = [
        {
            "resourceAppId": "00000003-0000-0000-c000-000000000000",
            "resourceAccess": [
                {"id": GRAPH_APP_ROLES["User.Read.All"], "type": "Role"},
                {"id": "e1fe6dd8-ba31-4d61-89e7-88639da4683d", "type": "Scope"},  # User.Read, delegated
            ],
        }
    ]
    app = emu.add_app(
        rotator.tenant_id, "Dime.Scheduler", owners=[rotator.object_id], required_resource_access=requested
    )
    requested[0]["resourceAccess"].clear()  # the emulator keeps its own copy

    status, body = await call(http, "GET", f"{emu.graph_url}/applications/{app.object_id}", token)

    assert status == 200
    [graph] = body["requiredResourceAccess"]
    assert graph["resourceAppId"] == "00000003-0000-0000-c000-000000000000"
    assert [a["type"] for a in graph["resourceAccess"]] == ["Role", "Scope"]


@pytest.mark.parametrize(
    "requested",
    [
        pytest.param({"resourceAppId": "x"}, id="not a list"),
        pytest.param([{"resourceAccess": []}], id="no resourceAppId"),
        pytest.param([{"resourceAppId": "x", "resourceAccess": [{"id": "y", "type": "Delegated"}]}], id="a bad type"),
    ],
)
def test_required_resource_access_in_another_shape_is_refused(emu: Emulator, tenant_id: str, requested: Any) -> None:
    with pytest.raises(ValueError, match=r"requiredResourceAccess|resourceAccess"):
        emu.add_app(tenant_id, "Dime.Scheduler", required_resource_access=requested)
    assert emu.directory.require_tenant(tenant_id).apps == {}


async def test_create_patch_and_owners(
    emu: Emulator, http: aiohttp.ClientSession, token: str, rotator: Identity
) -> None:
    body = {
        "displayName": "Created",
        "signInAudience": "AzureADMyOrg",
        "web": {"redirectUris": ["https://app.example/signin"]},
        "requiredResourceAccess": [
            {
                "resourceAppId": "00000003-0000-0000-c000-000000000000",
                "resourceAccess": [{"id": GRAPH_APP_ROLES["User.Read.All"], "type": "Role"}],
            }
        ],
    }
    status, created = await call(http, "POST", f"{emu.graph_url}/applications", token, body)
    assert status == 201
    assert created["web"]["redirectUris"] == ["https://app.example/signin"]
    assert created["signInAudience"] == "AzureADMyOrg"
    assert created["requiredResourceAccess"][0]["resourceAccess"][0]["type"] == "Role"
    url = f"{emu.graph_url}/applications/{created['id']}"
    status, owners = await call(http, "GET", f"{url}/owners", token)
    assert [o["id"] for o in owners["value"]] == [rotator.object_id]
    assert owners["value"][0]["@odata.type"] == "#microsoft.graph.servicePrincipal"
    assert (await call(http, "PATCH", url, token, {"displayName": "Renamed"}))[0] == 204
    assert (await call(http, "GET", url, token))[1]["displayName"] == "Renamed"
    status, body = await call(http, "PATCH", url, token, {"noSuchProperty": 1})
    assert status == 400
    user = emu.add_user(rotator.tenant_id, "owner@contoso.example", roles=())
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{user}"}
    assert (await call(http, "POST", f"{url}/owners/$ref", token, ref))[0] == 204
    status, body = await call(http, "POST", f"{url}/owners/$ref", token, ref)
    assert status == 400
    assert_odata_error(body, "Request_BadRequest")
    assert "already exist" in body["error"]["message"]


async def test_service_principals_and_app_role_assignments(
    emu: Emulator, http: aiohttp.ClientSession, get_token: TokenGetter, tenant_id: str
) -> None:
    admin = emu.add_rotator(tenant_id, roles=("Application.ReadWrite.All",), display_name="bootstrap")
    token = await get_token(admin)
    status, app = await call(http, "POST", f"{emu.graph_url}/applications", token, {"displayName": "Dime.Scheduler"})
    assert status == 201
    status, sp = await call(http, "POST", f"{emu.graph_url}/servicePrincipals", token, {"appId": app["appId"]})
    assert status == 201
    assert sp["appId"] == app["appId"]
    status, conflict = await call(http, "POST", f"{emu.graph_url}/servicePrincipals", token, {"appId": app["appId"]})
    assert (status, conflict["error"]["code"]) == (409, "Request_MultipleObjectsWithSameKeyValue")
    status, graph = await call(
        http, "GET", f"{emu.graph_url}/servicePrincipals(appId='00000003-0000-0000-c000-000000000000')", token
    )
    assert status == 200
    roles = {r["value"]: r["id"] for r in graph["appRoles"]}
    assert roles["Application.ReadWrite.OwnedBy"] == "18a4783c-866b-4cc7-a460-3d5e5662c884"
    status, listed = await call(
        http, "GET", f"{emu.graph_url}/servicePrincipals?$filter=appId eq '{app['appId']}'", token
    )
    assert [s["id"] for s in listed["value"]] == [sp["id"]]
    grant = {"principalId": sp["id"], "resourceId": graph["id"], "appRoleId": roles["Calendars.ReadWrite"]}
    url = f"{emu.graph_url}/servicePrincipals/{graph['id']}/appRoleAssignedTo"
    status, refused = await call(http, "POST", url, token, grant)
    assert (status, refused["error"]["code"]) == (403, "Authorization_RequestDenied")
    emu.grant_app_role(tenant_id, admin.object_id, "AppRoleAssignment.ReadWrite.All")
    token = await get_token(admin)
    status, assignment = await call(http, "POST", url, token, grant)
    assert status == 201
    assert assignment["principalId"] == sp["id"]
    assert assignment["appRoleId"] == roles["Calendars.ReadWrite"]
    status, duplicate = await call(http, "POST", url, token, grant)
    assert status == 400
    assert duplicate["error"]["message"] == "Permission being assigned already exists on the object"
    status, mine = await call(http, "GET", f"{emu.graph_url}/servicePrincipals/{sp['id']}/appRoleAssignments", token)
    assert [a["appRoleId"] for a in mine["value"]] == [roles["Calendars.ReadWrite"]]
    status, obj = await call(http, "GET", f"{emu.graph_url}/directoryObjects/{sp['id']}", token)
    assert obj["@odata.type"] == "#microsoft.graph.servicePrincipal"


async def delegated_token(emu: Emulator, http: aiohttp.ClientSession, tenant_id: str) -> str:
    cli = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
    flow = await (
        await http.post(
            f"{emu.url}/{tenant_id}/oauth2/v2.0/devicecode",
            data={"client_id": cli, "scope": "https://graph.microsoft.com/.default"},
        )
    ).json()
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "client_id": cli,
        "device_code": flow["device_code"],
    }
    for _ in range(2):
        response = await http.post(f"{emu.url}/{tenant_id}/oauth2/v2.0/token", data=form)
    body = await response.json()
    token = body["access_token"]
    assert isinstance(token, str)
    return token


@pytest.mark.parametrize(
    ("role", "may_grant_graph_roles"),
    [
        pytest.param("Global Administrator", True, id="a global administrator may grant Graph app roles"),
        pytest.param("Cloud Application Administrator", False, id="a cloud app administrator may not"),
    ],
)
async def test_delegated_admin_rights_follow_directory_roles(
    emu: Emulator, http: aiohttp.ClientSession, tenant_id: str, role: str, may_grant_graph_roles: bool
) -> None:
    emu.add_user(tenant_id, "admin@contoso.example", roles=(role,))
    token = await delegated_token(emu, http, tenant_id)
    status, app = await call(http, "POST", f"{emu.graph_url}/applications", token, {"displayName": "Dime.Scheduler"})
    assert status == 201
    status, sp = await call(http, "POST", f"{emu.graph_url}/servicePrincipals", token, {"appId": app["appId"]})
    assert status == 201
    graph = emu.directory.graph_sp(emu.directory.require_tenant(tenant_id))
    grant = {"principalId": sp["id"], "resourceId": graph.object_id, "appRoleId": GRAPH_APP_ROLES["User.Read.All"]}
    status, _ = await call(
        http, "POST", f"{emu.graph_url}/servicePrincipals/{graph.object_id}/appRoleAssignedTo", token, grant
    )
    assert status == (201 if may_grant_graph_roles else 403)
