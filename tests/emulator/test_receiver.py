"""The Dime.Scheduler push receiver: the contract of DESIGN.md's push sink, and sign-in checks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from service.emulator import Emulator

API_KEY = "test-receiver-api-key-0123456789"


@pytest.fixture
def pushed(emu: Emulator, tenant_id: str) -> dict[str, str]:
    app = emu.add_app(tenant_id, "Dime.Scheduler")
    now = emu.clock.now()
    _, secret = emu.add_password(tenant_id, app.app_id, start=now, end=now + timedelta(days=30))
    return {"tenantId": tenant_id, "clientId": app.app_id, "clientSecret": secret, "expiresOn": "2030-01-01T00:00:00Z"}


async def push(
    http: aiohttp.ClientSession, emu: Emulator, body: Any, *, key: str = API_KEY, idempotency: str | None = "k1"
) -> tuple[int, Any]:
    headers = {"X-API-KEY": key}
    if idempotency:
        headers["Idempotency-Key"] = idempotency
    response = await http.post(emu.receiver_url, json=body, headers=headers)
    return response.status, await response.json()


async def test_a_push_is_recorded_and_its_secret_signs_in(
    emu: Emulator, http: aiohttp.ClientSession, pushed: dict[str, str]
) -> None:
    status, _ = await push(http, emu, {**pushed, "connector": "exchange"})
    assert status == 200
    [delivery] = emu.receiver.deliveries
    assert delivery.idempotency_key == "k1"
    assert delivery.client_id == pushed["clientId"]
    assert delivery.signin_ok is True
    assert delivery.extra == {"connector": "exchange"}
    assert delivery.reveal() == pushed["clientSecret"]
    assert pushed["clientSecret"] not in repr(delivery)
    assert emu.receiver.current_key_authenticates()
    emu.clock.advance(timedelta(days=31))
    assert not emu.receiver.current_key_authenticates()


async def test_the_receiver_signs_in_again_with_what_it_was_pushed_last_and_entra_records_each_sign_in(
    emu: Emulator, http: aiohttp.ClientSession, pushed: dict[str, str]
) -> None:
    assert not emu.receiver.sign_in_with_latest(), "nothing pushed yet"
    await push(http, emu, pushed)
    [at_push] = emu.sign_ins.entries()
    emu.clock.advance(timedelta(minutes=5))

    assert emu.receiver.sign_in_with_latest()

    [_, later] = emu.sign_ins.entries()
    assert later.key_id == at_push.key_id
    assert later.at - at_push.at >= timedelta(minutes=5)
    emu.clock.advance(timedelta(days=31))  # the secret has expired: no token, nothing recorded
    assert not emu.receiver.sign_in_with_latest()
    assert len(emu.sign_ins.entries()) == 2


async def test_a_replay_with_the_same_key_and_body_is_not_a_second_delivery(
    emu: Emulator, http: aiohttp.ClientSession, pushed: dict[str, str]
) -> None:
    assert (await push(http, emu, pushed))[0] == 200
    assert (await push(http, emu, pushed))[0] == 200
    assert len(emu.receiver.deliveries) == 1
    assert (await push(http, emu, {**pushed, "expiresOn": "2031-01-01T00:00:00Z"}))[0] == 422


async def test_a_wrong_secret_is_recorded_as_failing_sign_in(
    emu: Emulator, http: aiohttp.ClientSession, pushed: dict[str, str]
) -> None:
    assert (await push(http, emu, {**pushed, "clientSecret": "abc8Q~" + "y" * 34}))[0] == 200
    assert emu.receiver.deliveries[0].signin_ok is False
    assert not emu.receiver.current_key_authenticates()


@pytest.mark.parametrize(
    ("change", "status"),
    [
        pytest.param("wrong api key", 401, id="a wrong X-API-KEY is 401"),
        pytest.param("missing field", 400, id="a missing field is 400"),
        pytest.param("not json", 415, id="a body that is not JSON is 415"),
    ],
)
async def test_bad_pushes_are_refused(
    emu: Emulator, http: aiohttp.ClientSession, pushed: dict[str, str], change: str, status: int
) -> None:
    if change == "wrong api key":
        got, _ = await push(http, emu, pushed, key="nope")
    elif change == "missing field":
        got, _ = await push(http, emu, {k: v for k, v in pushed.items() if k != "expiresOn"})
    else:
        response = await http.post(emu.receiver_url, data="x=1", headers={"X-API-KEY": API_KEY})
        got = response.status
    assert got == status
    assert emu.receiver.deliveries == []
