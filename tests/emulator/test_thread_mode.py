"""The emulator in a daemon thread serves sync code, e.g. MSAL's device code flow behind azure-identity."""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import Iterator

import pytest
from azure.identity import DeviceCodeCredential

from service.emulator import Emulator
from service.emulator.tokens import decode_unverified


@pytest.fixture
def threaded() -> Iterator[Emulator]:
    emu = Emulator()
    emu.start_in_thread()
    try:
        yield emu
    finally:
        emu.stop_thread()


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
    credential = DeviceCodeCredential(
        client_id="04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        tenant_id=tenant_id,
        authority=threaded.url,
        disable_instance_discovery=True,
        connection_verify=str(threaded.ca_file),
        prompt_callback=lambda uri, code, expires: prompts.append(code),
        timeout=30,
    )
    token = credential.get_token("https://graph.microsoft.com/.default")
    claims = decode_unverified(token.token)[1]
    assert claims["oid"] == user_id
    assert claims["idtyp"] == "user"
    assert len(prompts) == 1
