"""Hostile and broken endpoints: echoes, malformed answers, redirects and floods leave no secret or token
in any error, never make a write look done that did not happen, and never make the rotator read without end.

The hostile answers are emulator faults (``respond``, ``flood``) or, where the answer must come from
another host, a second HTTPS server on loopback with the emulator's certificate; the SDKs are real.
"""

from __future__ import annotations

import contextlib
import json
import traceback
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from service import redact
from service.emulator import ca
from service.errors import FailureReason, OutcomeUnknown, RemoteError
from service.secret import Secret
from tests.conftest import assert_no_secrets
from tests.integration.conftest import days
from tests.integration.kit import Kit, calls, push_fields

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
