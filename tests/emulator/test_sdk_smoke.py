"""The real SDKs accept the emulator's answers: nothing in azure-identity, Key Vault or msgraph is mocked."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError
from azure.identity.aio import ClientSecretCredential
from azure.keyvault.secrets.aio import SecretClient
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph.generated.applications.item.add_password.add_password_post_request_body import (
    AddPasswordPostRequestBody,
)
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_credential import PasswordCredential
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient

from service.emulator import Emulator, Identity

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def credential(emu: Emulator, identity: Identity, secret: str | None = None) -> ClientSecretCredential:
    return ClientSecretCredential(
        identity.tenant_id,
        identity.client_id,
        secret or identity.secret,
        authority=emu.url,
        disable_instance_discovery=True,
        connection_verify=str(emu.ca_file),
    )


async def test_azure_identity_gets_a_token_and_reports_a_wrong_secret(emu: Emulator, rotator: Identity) -> None:
    async with credential(emu, rotator) as cred:
        token = await cred.get_token(GRAPH_SCOPE)
        assert token.token.count(".") == 2
        assert token.expires_on > datetime.now(UTC).timestamp() + 3000
    async with credential(emu, rotator, secret="not-the-secret") as cred:
        with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
            await cred.get_token(GRAPH_SCOPE)


async def test_key_vault_sdk_sets_gets_and_pages_versions(emu: Emulator, rotator: Identity) -> None:
    async with (
        credential(emu, rotator) as cred,
        SecretClient(emu.vault_url, cred, verify_challenge_resource=False, connection_verify=str(emu.ca_file)) as kv,
    ):
        expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=90)
        for i in range(3):
            stored = await kv.set_secret(
                "dime-exchange", f"value-{i}", expires_on=expires, tags={"key-id": f"k{i}"}, content_type="text/plain"
            )
        assert stored.properties.tags == {"key-id": "k2"}
        got = await kv.get_secret("dime-exchange")
        assert got.value == "value-2"
        assert got.properties.expires_on == expires
        assert got.properties.version == stored.properties.version
        versions = [v async for v in kv.list_properties_of_secret_versions("dime-exchange", max_page_size=1)]
        assert len(versions) == 3
        assert {v.tags["key-id"] for v in versions if v.tags} == {"k0", "k1", "k2"}
        names = [s.name async for s in kv.list_properties_of_secrets()]
        assert names == ["dime-exchange"]
        with pytest.raises(ResourceNotFoundError):
            await kv.get_secret("missing")
    # The SDK first sent a request without a token and read the challenge.
    assert any(r.service == "keyvault" and r.status == 401 for r in emu.requests)


async def test_msgraph_reads_an_app_by_app_id_and_adds_a_password(emu: Emulator, rotator: Identity) -> None:
    app = emu.add_app(rotator.tenant_id, "Dime.Scheduler", owners=[rotator.object_id])
    context = ssl.create_default_context(cafile=str(emu.ca_file))
    async with credential(emu, rotator) as cred, httpx.AsyncClient(verify=context, base_url=emu.graph_url) as client:
        auth = AzureIdentityAuthenticationProvider(cred, scopes=[GRAPH_SCOPE], allowed_hosts=["127.0.0.1"])
        adapter = GraphRequestAdapter(auth, client=client)
        adapter.base_url = emu.graph_url
        graph = GraphServiceClient(request_adapter=adapter)
        found = await graph.applications_with_app_id(app.app_id).get()
        assert found is not None
        assert found.id == app.object_id
        assert found.display_name == "Dime.Scheduler"
        body = AddPasswordPostRequestBody(
            password_credential=PasswordCredential(
                display_name="secret-rotator 2025", end_date_time=datetime.now(UTC) + timedelta(days=90)
            )
        )
        created = await graph.applications.by_application_id(app.object_id).add_password.post(body)
        assert created is not None
        assert created.secret_text is not None
        assert len(created.secret_text) == 40
        assert created.hint == created.secret_text[:3]
        assert created.secret_text in Emulator.issued_secrets()
        again = await graph.applications.by_application_id(app.object_id).get()
        assert again is not None
        assert again.password_credentials is not None
        assert [p.key_id for p in again.password_credentials] == [created.key_id]
        assert all(p.secret_text is None for p in again.password_credentials)
        with pytest.raises(ODataError) as denied:
            await graph.applications_with_app_id(rotator.client_id).get()
        assert denied.value.response_status_code == 403
        assert denied.value.error is not None
        assert denied.value.error.code == "Authorization_RequestDenied"
