"""Graph beta's appCredentialSignInActivities: a client-credentials token for a secret is recorded as a
sign-in with that credential, and the report shows each credential's last one, with Entra's permission
check, lag, and the faults the rotator must survive (403, empty report, national cloud)."""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import pytest

from service.emulator import Emulator, Identity
from service.emulator.wire import parse_iso
from tests.emulator.conftest import TokenGetter
from tests.emulator.test_graph import assert_odata_error, call


@pytest.fixture
def reader(emu: Emulator, tenant_id: str) -> Identity:
    return emu.add_rotator(tenant_id, roles=("Application.ReadWrite.OwnedBy", "AuditLog.Read.All"), display_name="r")


@pytest.fixture
def consumer(emu: Emulator, tenant_id: str) -> Identity:
    """An app with a service principal, that signs in with its secret (as Dime.Scheduler does)."""
    return emu.add_rotator(tenant_id, roles=(), display_name="Dime.Scheduler")


def report_url(emu: Emulator, app_id: str) -> str:
    return f"{emu.url}/beta/reports/appCredentialSignInActivities?$filter=appId eq '{app_id}'"


async def test_a_token_for_a_secret_shows_as_that_credentials_last_sign_in(
    emu: Emulator, http: aiohttp.ClientSession, get_token: TokenGetter, reader: Identity, consumer: Identity
) -> None:
    new_key, new_secret = emu.add_password(consumer.tenant_id, consumer.client_id)
    await get_token(consumer)
    emu.clock.advance(timedelta(minutes=5))
    await get_token(consumer, secret=new_secret)
    signed_in_at = emu.clock.now()

    status, body = await call(http, "GET", report_url(emu, consumer.client_id), await get_token(reader))

    assert status == 200, body
    rows = {row["keyId"]: row for row in body["value"]}
    assert len(rows) == 2  # the reader's own sign-in is another app's
    row = rows[new_key]
    assert row["appId"] == consumer.client_id
    assert row["credentialOrigin"] == "application"
    assert row["keyType"] == "clientSecret"
    assert {
        "id",
        "appObjectId",
        "servicePrincipalObjectId",
        "expirationDateTime",
        "createdDateTime",
        "keyUsage",
        "resourceId",
    } <= set(row)
    last = parse_iso(row["signInActivity"]["lastSignInDateTime"])
    assert signed_in_at - timedelta(seconds=5) <= last <= signed_in_at  # the second sign-in, not the first
    assert row["signInActivity"]["lastSignInRequestId"]


async def test_a_failed_sign_in_is_not_recorded(
    emu: Emulator, http: aiohttp.ClientSession, get_token: TokenGetter, reader: Identity, consumer: Identity
) -> None:
    response = await http.post(
        f"{emu.url}/{consumer.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": consumer.client_id,
            "client_secret": "wrong",
            "scope": "https://graph.microsoft.com/.default",
        },
    )
    assert response.status == 401

    status, body = await call(http, "GET", report_url(emu, consumer.client_id), await get_token(reader))

    assert (status, body["value"]) == (200, [])


async def test_sign_ins_younger_than_the_lag_are_not_in_the_report_yet(
    emu: Emulator, http: aiohttp.ClientSession, get_token: TokenGetter, reader: Identity, consumer: Identity
) -> None:
    emu.sign_ins.lag = timedelta(hours=3)
    await get_token(consumer)

    _, before = await call(http, "GET", report_url(emu, consumer.client_id), await get_token(reader))
    emu.clock.advance(timedelta(hours=3))
    _, after = await call(http, "GET", report_url(emu, consumer.client_id), await get_token(reader))

    assert before["value"] == []
    assert len(after["value"]) == 1


async def test_without_audit_log_read_all_the_report_is_denied(
    emu: Emulator, http: aiohttp.ClientSession, get_token: TokenGetter, rotator: Identity, consumer: Identity
) -> None:
    status, body = await call(http, "GET", report_url(emu, consumer.client_id), await get_token(rotator))

    assert status == 403
    assert_odata_error(body, "Authorization_RequestDenied")
    assert "AuditLog.Read.All" in body["error"]["message"]


async def test_an_empty_report_answers_no_rows(
    emu: Emulator, http: aiohttp.ClientSession, get_token: TokenGetter, reader: Identity, consumer: Identity
) -> None:
    await get_token(consumer)
    emu.sign_ins.empty = True

    status, body = await call(http, "GET", report_url(emu, consumer.client_id), await get_token(reader))

    assert (status, body["value"]) == (200, [])


async def test_a_cloud_without_the_report_answers_400_for_its_segment(
    emu: Emulator, http: aiohttp.ClientSession, get_token: TokenGetter, reader: Identity, consumer: Identity
) -> None:
    emu.sign_ins.available = False

    status, body = await call(http, "GET", report_url(emu, consumer.client_id), await get_token(reader))

    assert status == 400
    assert_odata_error(body, "BadRequest")


async def test_an_unsupported_filter_is_refused(
    emu: Emulator, http: aiohttp.ClientSession, get_token: TokenGetter, reader: Identity
) -> None:
    url = f"{emu.url}/beta/reports/appCredentialSignInActivities?$filter=startswith(appId,'a')"

    status, body = await call(http, "GET", url, await get_token(reader))

    assert status == 400
    assert_odata_error(body, "Request_UnsupportedQuery")
