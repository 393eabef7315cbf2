"""The emulator in a daemon thread serves sync code, e.g. MSAL's device code flow behind azure-identity."""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import Iterator

import pytest
from azure.identity import DeviceCodeCredential

from service.emulator import Emulator
from service.emulator.tokens import decode_unverified

AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"


@pytest.fixture
def threaded() -> Iterator[Emulator]:
    emu = Emulator()
    emu.start_in_thread()
    try:
        yield emu
    finally:
        emu.stop_thread()


def device_code_credential(emu: Emulator, tenant_id: str, prompts: list[str]) -> DeviceCodeCredential:
    """azure-identity's device code credential against the emulator; each prompt's code goes to `prompts`."""
    return DeviceCodeCredential(
        client_id=AZURE_CLI,
        tenant_id=tenant_id,
        authority=emu.url,
        disable_instance_discovery=True,
        connection_verify=str(emu.ca_file),
        prompt_callback=lambda uri, code, expires: prompts.append(code),
        timeout=30,
    )


def requests_to(emu: Emulator, endpoint: str) -> int:
    return sum(r.path.endswith(f"/oauth2/v2.0/{endpoint}") for r in emu.requests)


def test_sync_callers_reach_the_threaded_emulator(threaded: Emulator) -> None:
    tenant_id = threaded.add_tenant()
    context = ssl.create_default_context(cafile=str(threaded.ca_file))
    url = f"{threaded.url}/{tenant_id}/v2.0/.well-known/openid-configuration"
    with urllib.request.urlopen(url, context=context, timeout=10) as response:  # noqa: S310
        assert response.status == 200


def test_device_code_credential_signs_an_admin_in(threaded: Emulator) -> None:
    tenant_id = threaded.add_tenant()
    user_id = threaded.add_user(tenant_id, "admin@contoso.example")
    prompts: list[str] = []
    with device_code_credential(threaded, tenant_id, prompts) as credential:
        token = credential.get_token("https://graph.microsoft.com/.default")
    claims = decode_unverified(token.token)[1]
    assert claims["oid"] == user_id
    assert claims["idtyp"] == "user"
    assert len(prompts) == 1


def test_one_device_code_prompt_then_silent_tokens_for_graph_and_key_vault(threaded: Emulator) -> None:
    tenant_id = threaded.add_tenant()
    threaded.add_user(tenant_id, "admin@contoso.example")
    user_id = threaded.add_user(tenant_id, "appadmin@contoso.example", device_sign_in=True)
    prompts: list[str] = []
    with device_code_credential(threaded, tenant_id, prompts) as credential:
        graph = credential.get_token("https://graph.microsoft.com/.default")
        token_requests = requests_to(threaded, "token")

        again = credential.get_token("https://graph.microsoft.com/.default")
        # MSAL filed the token under the scopes the answer listed, `.default` among them: a cache hit.
        assert again.token == graph.token
        assert requests_to(threaded, "token") == token_requests

        vault = credential.get_token("https://vault.azure.net/.default")
    claims = decode_unverified(vault.token)[1]
    assert (claims["aud"], claims["oid"]) == ("https://vault.azure.net", user_id)
    assert decode_unverified(graph.token)[1]["oid"] == user_id
    assert len(prompts) == 1
    assert requests_to(threaded, "devicecode") == 1
    # The Key Vault token came from the refresh token: one token request more, no new device code.
    assert requests_to(threaded, "token") == token_requests + 1
