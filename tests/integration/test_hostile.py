"""Hostile and broken endpoints: echoes, malformed answers, redirects and floods leave no secret or token
in any error, never make a write look done that did not happen, and never make the rotator read without end.

The hostile answers are emulator faults (``respond``, ``flood``) or, where the answer must come from
another host, a second HTTPS server on loopback with the emulator's certificate; the SDKs are real.
"""

from __future__ import annotations

import base64
import traceback

import pytest
from aiohttp import web

from service import redact
from service.errors import FailureReason, OutcomeUnknown, RemoteError
from service.secret import Secret
from tests.conftest import assert_no_secrets
from tests.integration.conftest import World, days
from tests.integration.kit import Catcher, Kit, calls, https_server, push_fields

ADD_PASSWORD = r"/addPassword$"
NAME = "dime-exchange-client-secret"
FLOOD = 256 * 1024 * 1024
# What a client that stops reading at its limit lets a server write: the limit plus socket buffers.
WELL_UNDER_THE_FLOOD = 64 * 1024 * 1024


def everything_shown(error: BaseException) -> str:
    """All an operator could see of an error: its text, its repr and its whole traceback, causes included."""
    return "\n".join((str(error), repr(error), *traceback.format_exception(error)))


# --- addPassword's answer is read raw: the secret is registered before anything parses it ----------

MALFORMED = {
    "the JSON never closes": (
        '{"keyId": "{{response.field:keyId}}", "secretText": "{{response.field:secretText}}", "endDateTime": '
    ),
    "an endDateTime that is the secret itself (fields mixed up by a proxy)": (
        '{"keyId": "{{response.field:keyId}}", "secretText": "{{response.field:secretText}}", '
        '"endDateTime": "{{response.field:secretText}}"}'
    ),
    "a keyId that is not a GUID": (
        '{"keyId": "{{response.field:secretText}}", "secretText": "{{response.field:secretText}}", '
        '"endDateTime": "{{response.field:endDateTime}}"}'
    ),
    "no keyId at all": '{"secretText": "{{response.field:secretText}}"}',
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_add_password_answer_never_shows_its_secret(kit: Kit, body: str) -> None:
    kit.emu.faults.add(ADD_PASSWORD, "POST", "respond", status=200, after=True, body=body)
    before = kit.emu.issued_secrets()

    with pytest.raises(OutcomeUnknown) as caught:
        await kit.directory().add_password(kit.world.app_object_id, "secret-rotator x", kit.world.clock.now() + days(9))

    error = caught.value
    assert (error.service, error.transient) == ("graph", False)
    assert "orphan" in (error.hint or ""), "the credential was made: a later pass removes it"
    assert len(calls(kit.emu, "graph", "POST", "/addPassword")) == 1, "never sent twice"
    assert_no_secrets(everything_shown(error), "the malformed answer's error")
    [made] = kit.world.passwords()
    [secret] = kit.emu.issued_secrets() - before
    assert secret.startswith(made.hint)
    assert redact.scrub(secret) == redact.MASK, "registered with the redactor although the answer was malformed"


# --- push endpoints that echo the secret in other encodings ----------------------------------------

ECHOES = {
    "base64 of the secret": '{"error": "bad_request", "message": "got {{request.field:clientSecret|base64}}"}',
    "base64url of the whole body": '{"error": "bad_request", "received": "{{request.body|base64url}}"}',
    "every character of the secret as a \\u escape": (
        '{"error": "bad_request", "message": "got {{request.field:clientSecret|unicode}}"}'
    ),
    "the secret percent-encoded in a plain-text body": "bad request: clientSecret={{request.field:clientSecret|url}}",
}


@pytest.mark.parametrize("body", ECHOES.values(), ids=ECHOES.keys())
async def test_a_push_endpoint_echoing_the_secret_encoded_leaves_it_in_no_error(kit: Kit, body: str) -> None:
    _, text = kit.emu.add_password(kit.world.tenant, kit.world.app_id)
    kit.emu.faults.add(r"^/dimescheduler/", "POST", "respond", status=400, body=body)

    with pytest.raises(RemoteError) as caught:
        await kit.pusher(kit.emu.receiver_url).push(push_fields(kit.world), Secret(text), "k1")

    error = caught.value
    assert (error.reason, error.transient, error.status) == (FailureReason.SINK_FAILED, False, 400)
    assert_no_secrets(everything_shown(error), "the push error")
    assert len(error.message) <= 300


async def test_a_push_endpoint_error_keeps_its_own_code_and_message(kit: Kit) -> None:
    _, text = kit.emu.add_password(kit.world.tenant, kit.world.app_id)
    kit.emu.faults.add(
        r"^/dimescheduler/",
        "POST",
        "respond",
        status=422,
        body='{"error": {"code": "InvalidTenant", "message": "tenant is not linked\\nto this account"}}',
    )

    with pytest.raises(RemoteError) as caught:
        await kit.pusher(kit.emu.receiver_url).push(push_fields(kit.world), Secret(text), "k1")

    assert caught.value.message == "the endpoint answered 422: InvalidTenant: tenant is not linked to this account"


async def test_a_full_pass_against_an_echoing_push_endpoint_logs_no_secret(world: World) -> None:
    world.target(sinks=("keyvault", "dimescheduler"))
    world.emu.faults.add(
        r"^/dimescheduler/",
        "POST",
        "respond",
        status=400,
        body='{"error": "bad_request", "echo": "{{request.field:clientSecret|base64}} '
        '{{request.field:clientSecret|unicode}} {{request.body|base64}}"}',
    )

    [result] = await world.run()  # world.run looks for every issued secret and token in the log lines

    assert result.error is not None
    [failed] = world.logs.named("rotation.failed")
    assert failed["reason"] == "sink_failed"


async def test_a_huge_error_body_from_a_push_endpoint_is_not_read(kit: Kit) -> None:
    _, text = kit.emu.add_password(kit.world.tenant, kit.world.app_id)
    flood = kit.emu.faults.add(
        r"^/dimescheduler/", "POST", "flood", status=400, size=FLOOD, body='{"error": "bad_request", "message": "'
    )

    with pytest.raises(RemoteError) as caught:
        await kit.pusher(kit.emu.receiver_url).push(push_fields(kit.world), Secret(text), "k1")

    assert (caught.value.status, caught.value.message) == (400, "the endpoint answered 400")
    assert sent(kit, flood) < WELL_UNDER_THE_FLOOD, "the rotator stopped reading long before the end"


# --- Key Vault: header echoes, redirects, huge bodies ----------------------------------------------

HEADER_ECHO = (
    '{"error": {"code": "BadParameter", "message": "Rejected. Request headers: {{request.headers|json}}; '
    'Authorization was {{request.header:Authorization|base64}}"}}'
)


async def test_a_vault_error_echoing_the_request_headers_leaves_no_token_in_the_error(kit: Kit) -> None:
    # The first PUT goes without a token, for the vault's 401 challenge; the second carries it.
    kit.emu.faults.add(r"^/secrets/", "PUT", "respond", status=400, skip=1, body=HEADER_ECHO)

    with pytest.raises(RemoteError) as caught:
        await kit.vault().write(NAME, Secret("value-written-to-the-vault-0123"), None, {})

    error = caught.value
    assert (error.service, error.status, error.code) == ("keyvault", 400, "BadParameter")
    assert kit.emu.issued_tokens(), "a token was issued and sent"
    assert_no_secrets(everything_shown(error), "the vault's error")
    assert "Bearer ***" in error.message or "Rejected" in error.message


async def test_a_full_pass_against_a_vault_echoing_headers_logs_no_token(world: World) -> None:
    world.target(sinks=("keyvault",))
    # The pass has paid the vault's challenge while it gathered: its one PUT carries the token.
    world.emu.faults.add(r"^/secrets/", "PUT", "respond", status=400, body=HEADER_ECHO)

    [result] = await world.run()  # world.run looks for every issued secret and token in the log lines

    assert result.error is not None
    assert world.logs.named("rotation.failed")


def _secret_bundle(request: web.Request) -> dict[str, object]:
    return {
        "value": "accepted",
        "id": f"https://{request.host}{request.path}/0123456789abcdef",
        "attributes": {"enabled": True, "created": 1_700_000_000, "updated": 1_700_000_000},
        "tags": {},
    }


async def test_a_vault_write_redirected_elsewhere_is_never_followed_nor_reported_done(kit: Kit) -> None:
    catcher = Catcher(_secret_bundle)
    value = "value-that-must-stay-home-0123456789"
    async with https_server(kit.emu, catcher.handle) as elsewhere:
        kit.emu.faults.add(
            r"^/secrets/",
            "PUT",
            "respond",
            status=307,
            skip=1,
            body="",
            headers={"Location": f"{elsewhere}/secrets/{NAME}?api-version=7.6"},
        )

        with pytest.raises(RemoteError) as caught:
            await kit.vault().write(NAME, Secret(value), None, {})

    error = caught.value
    assert (error.service, error.status, error.transient) == ("keyvault", 307, False)
    assert "never followed" in error.message
    assert catcher.seen == [], "nothing went to the other host"
    assert kit.emu.vault_versions(NAME) == []


async def test_a_huge_error_body_from_the_vault_is_cut(kit: Kit) -> None:
    flood = kit.emu.faults.add(
        r"^/secrets/",
        "GET",
        "flood",
        status=400,
        skip=1,
        size=FLOOD,
        body='{"error": {"code": "BadParameter", "message": "',
    )

    with pytest.raises(RemoteError) as caught:
        await kit.vault().read_value(NAME)

    assert (caught.value.status, caught.value.reason) == (400, FailureReason.SINK_FAILED)
    assert sent(kit, flood) < WELL_UNDER_THE_FLOOD


async def test_a_huge_success_body_from_the_vault_is_refused(kit: Kit) -> None:
    flood = kit.emu.faults.add(r"^/secrets/", "GET", "flood", status=200, skip=1, size=FLOOD, body='{"value": [')

    with pytest.raises(RemoteError) as caught:
        await kit.vault().list_versions(NAME)

    assert (caught.value.status, caught.value.transient) == (200, False)
    assert "bytes read" in caught.value.message
    assert sent(kit, flood) < WELL_UNDER_THE_FLOOD


# --- Graph: redirects, huge bodies, header echoes ---------------------------------------------------


def _password_credential(request: web.Request) -> dict[str, object]:
    return {
        "keyId": "6e7f8a9b-0c1d-4e2f-8a3b-4c5d6e7f8a9b",
        "secretText": "Zz18Q~not-made-by-entra-0123456789abcde",
        "displayName": "secret-rotator x",
        "hint": "Zz1",
        "startDateTime": "2025-01-01T00:00:00Z",
        "endDateTime": "2026-01-01T00:00:00Z",
    }


async def test_an_add_password_redirected_elsewhere_is_never_followed_nor_reported_made(kit: Kit) -> None:
    catcher = Catcher(_password_credential)
    async with https_server(kit.emu, catcher.handle) as elsewhere:
        kit.emu.faults.add(
            ADD_PASSWORD,
            "POST",
            "respond",
            status=307,
            body="",
            headers={"Location": f"{elsewhere}/v1.0/applications/x/addPassword"},
        )

        with pytest.raises(RemoteError) as caught:
            await kit.directory().add_password(
                kit.world.app_object_id, "secret-rotator x", kit.world.clock.now() + days(9)
            )

    error = caught.value
    assert not isinstance(error, OutcomeUnknown), "a redirect is an answer: nothing was made"
    assert (error.service, error.status, error.transient) == ("graph", 307, False)
    assert "never followed" in error.message
    assert "localhost" in error.message
    assert catcher.seen == []
    assert kit.world.passwords() == []


async def test_a_huge_error_body_from_graph_is_cut_and_sorted_by_its_status(kit: Kit) -> None:
    flood = kit.emu.faults.add(
        r"^/v1\.0/applications\(appId=",
        "GET",
        "flood",
        status=403,
        size=FLOOD,
        body='{"error": {"code": "Authorization_RequestDenied", "message": "',
    )

    with pytest.raises(RemoteError) as caught:
        await kit.directory().read_app(kit.world.app_id)

    assert (caught.value.status, caught.value.reason) == (403, FailureReason.PERMISSION_DENIED)
    assert caught.value.message == "Graph answered 403"
    assert sent(kit, flood) < WELL_UNDER_THE_FLOOD


async def test_a_huge_success_body_from_graph_is_refused(kit: Kit) -> None:
    flood = kit.emu.faults.add(
        r"^/v1\.0/applications\(appId=",
        "GET",
        "flood",
        status=200,
        size=FLOOD,
        body='{"id": "x", "passwordCredentials": [',
    )

    with pytest.raises(RemoteError) as caught:
        await kit.directory().read_app(kit.world.app_id)

    assert (caught.value.status, caught.value.transient) == (200, False)
    assert "bytes read" in caught.value.message
    assert sent(kit, flood) < WELL_UNDER_THE_FLOOD


async def test_a_graph_error_echoing_the_bearer_token_leaves_it_in_no_error(kit: Kit) -> None:
    kit.emu.faults.add(
        r"^/v1\.0/applications\(appId=",
        "GET",
        "respond",
        status=400,
        body='{"error": {"code": "BadRequest", "message": "bad header {{request.header:Authorization}}"}}',
    )

    with pytest.raises(RemoteError) as caught:
        await kit.directory().read_app(kit.world.app_id)

    assert (caught.value.code, caught.value.message) == ("BadRequest", "bad header Bearer ***")
    assert_no_secrets(everything_shown(caught.value), "Graph's error")


async def test_a_garbled_token_answer_during_a_graph_call_is_sorted_and_shows_no_secret(kit: Kit) -> None:
    # The rotator's own token request; the answer echoes its form, client secret and all.
    kit.emu.faults.add(
        r"/oauth2/v2\.0/token$",
        "POST",
        "respond",
        status=200,
        content_type="text/html",
        body="<html>proxy says: {{request.body|base64}} {{request.body|url}}</html>",
    )

    with pytest.raises(RemoteError) as caught:
        await kit.directory().read_app(kit.world.app_id)

    assert (caught.value.service, caught.value.transient) == ("entra", False)
    assert_no_secrets(everything_shown(caught.value), "the error of a Graph call whose token request was garbled")


# --- the Entra verifier --------------------------------------------------------------------------------


async def test_a_token_endpoint_echoing_the_request_leaves_no_secret_in_the_verifiers_error(kit: Kit) -> None:
    _, secret = kit.emu.add_password(kit.world.tenant, kit.world.app_id)
    kit.emu.faults.add(
        r"/oauth2/v2\.0/token$",
        "POST",
        "respond",
        status=401,
        body='{"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided. '
        'Request: {{request.body|base64}} {{request.body|unicode}}", "error_codes": [7000215]}',
    )

    with pytest.raises(RemoteError) as caught:
        await kit.verifier().try_token(kit.world.tenant, kit.world.app_id, Secret(secret))

    assert caught.value.code == "AADSTS7000215"
    assert_no_secrets(everything_shown(caught.value), "the verifier's error")


async def test_a_huge_error_body_from_the_token_endpoint_is_cut(kit: Kit) -> None:
    _, secret = kit.emu.add_password(kit.world.tenant, kit.world.app_id)
    flood = kit.emu.faults.add(
        r"/oauth2/v2\.0/token$",
        "POST",
        "flood",
        status=400,
        size=FLOOD,
        body='{"error": "invalid_request", "error_description": "AADSTS90000: ',
    )

    with pytest.raises(RemoteError) as caught:
        await kit.verifier().try_token(kit.world.tenant, kit.world.app_id, Secret(secret))

    assert caught.value.reason == FailureReason.VERIFICATION_FAILED
    assert sent(kit, flood) < WELL_UNDER_THE_FLOOD


def sent(kit: Kit, fault_id: int) -> int:
    """How many bytes a flood fault wrote before the rotator hung up."""
    [fault] = [f for f in kit.emu.faults.active() if f.id == fault_id]
    assert fault.fired >= 1, "the flood was asked for"
    return fault.sent


async def test_a_token_request_redirected_elsewhere_is_not_followed(kit: Kit) -> None:
    _, secret = kit.emu.add_password(kit.world.tenant, kit.world.app_id)
    catcher = Catcher(lambda _: {"token_type": "Bearer", "expires_in": 3599, "access_token": "not-from-entra"})
    async with https_server(kit.emu, catcher.handle) as elsewhere:
        kit.emu.faults.add(
            r"/oauth2/v2\.0/token$", "POST", "respond", status=307, body="", headers={"Location": f"{elsewhere}/token"}
        )

        with pytest.raises(RemoteError) as caught:
            await kit.verifier().try_token(kit.world.tenant, kit.world.app_id, Secret(secret))

    assert caught.value.reason == FailureReason.VERIFICATION_FAILED
    assert catcher.seen == [], "the new secret never went to the other host"


# --- every access token the rotator obtains is registered with the redactor ---------------------------


def _registered(token: str) -> bool:
    """Whether the redactor knows ``token`` itself (a JWT's shape alone would mask it as it is, not in base64)."""
    return redact.scrub(base64.b64encode(token.encode()).decode()) == redact.MASK


async def test_the_tokens_of_the_rotators_graph_and_vault_calls_and_of_the_verifier_are_registered(kit: Kit) -> None:
    _, secret = kit.emu.add_password(kit.world.tenant, kit.world.app_id)
    before = kit.emu.issued_tokens()

    await kit.directory().read_app(kit.world.app_id)
    await kit.vault().list_versions(NAME)
    await kit.verifier().try_token(kit.world.tenant, kit.world.app_id, Secret(secret))

    issued = kit.emu.issued_tokens() - before
    assert len(issued) == 3, "one token for Graph, one for the vault, one for the verifier"
    assert all(_registered(token) for token in issued)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param(403, (403, FailureReason.PERMISSION_DENIED), id="a compressed error is sorted by its status"),
        pytest.param(200, (200, FailureReason.UNEXPECTED), id="a compressed success is refused: it could be a bomb"),
    ],
)
async def test_a_compressed_graph_answer_is_never_inflated(
    kit: Kit, status: int, expected: tuple[int, FailureReason]
) -> None:
    kit.emu.faults.add(
        r"^/v1\.0/applications\(appId=",
        "GET",
        "respond",
        status=status,
        body="\x1f\x8b-not-inflated",
        headers={"Content-Encoding": "gzip"},
    )

    with pytest.raises(RemoteError) as caught:
        await kit.directory().read_app(kit.world.app_id)

    assert (caught.value.status, caught.value.reason) == expected
