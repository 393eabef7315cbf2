"""The scrubber finds a secret in the encodings a hostile or careless endpoint echoes it in, and tokens."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from urllib.parse import quote, quote_plus

import pytest

from service import redact
from service.redact import MASK
from tests import canary

SECRET = "Xy98Q~redact-unit-secret.value_0123456789"
SPACED = "a secret with spaces ~ and é in it"
TOKEN = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL3ZhdWx0LmF6dXJlLm5ldCIsInN1YiI6InJlZGFjdC10ZXN0In0"
    ".c2lnbmF0dXJlLW9mLXRoZS1yZWRhY3QtdGVzdC10b2tlbg"
)
# Never registered by any test: only its shape can get it masked.
UNREGISTERED_JWT = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJub2JvZHkiLCJhdWQiOiJ4In0.bm90LWEtcmVhbC1zaWduYXR1cmU"
BODY = json.dumps({"tenantId": "t", "clientId": "c", "clientSecret": SECRET, "expiresOn": "2030-01-01"})


def _b64(data: str, prefix: bytes = b"") -> str:
    return base64.b64encode(prefix + data.encode()).decode()


def _b64url(data: str, prefix: bytes = b"") -> str:
    return base64.urlsafe_b64encode(prefix + data.encode()).decode().rstrip("=")


def _every_char_escaped(value: str) -> str:
    return "".join(f"\\u{ord(c):04x}" for c in value)


def _every_byte_percent_encoded(value: str) -> str:
    return "".join(f"%{b:02X}" for b in value.encode())


# (the registered value, how an echo writes it): the echo must keep no recognisable piece of the value.
ECHOES: dict[str, tuple[str, Callable[[str], str]]] = {
    "base64 of the secret alone": (SECRET, _b64),
    "base64url of the secret alone, unpadded": (SECRET, _b64url),
    "base64 of the whole JSON body (secret at one alignment)": (SECRET, lambda _: _b64(BODY)),
    "base64 of the body after one more byte (the second alignment)": (SECRET, lambda _: _b64(BODY, b"x")),
    "base64 of the body after two more bytes (the third alignment)": (SECRET, lambda _: _b64(BODY, b"xy")),
    "base64url of the body at every alignment": (
        SECRET,
        lambda _: " ".join(_b64url(BODY, p) for p in (b"", b"x", b"xy")),
    ),
    "JSON with one character as a \\u escape (~ as \\u007e)": (SECRET, lambda v: v.replace("~", "\\u007e")),
    "JSON with every character as a \\u escape": (SECRET, _every_char_escaped),
    "JSON with the escapes in upper case": (SECRET, lambda v: _every_char_escaped(v).upper().replace("\\U", "\\u")),
    "a percent-encoded query value": (SECRET, lambda v: f"?code={quote(v, safe='')}&x=1"),
    "every byte percent-encoded": (SECRET, _every_byte_percent_encoded),
    "only the ~ percent-encoded": (SECRET, lambda v: v.replace("~", "%7E")),
    "a form-encoded value with spaces as +": (SPACED, lambda v: f"a=1&secret={quote_plus(v)}"),
    "non-ASCII as a percent-encoded UTF-8 sequence": (SPACED, lambda v: quote(v, safe="")),
    "non-ASCII as a \\u escape in ASCII JSON": (SPACED, lambda v: json.dumps({"s": v})),
    "a registered token as it is": (TOKEN, lambda v: f"token={v}"),
    "a registered token in base64": (TOKEN, _b64),
}


@pytest.mark.parametrize(("value", "echo"), ECHOES.values(), ids=ECHOES.keys())
def test_an_echoed_secret_is_masked_in_any_encoding(value: str, echo: Callable[[str], str]) -> None:
    redact.register(value)
    text = f"the endpoint answered 400: {echo(value)} (request id 42)"

    scrubbed = redact.scrub(text)

    assert MASK in scrubbed
    assert scrubbed.startswith("the endpoint answered 400: ")
    assert scrubbed.endswith("(request id 42)")
    # Nor does a 12-character piece of it, in the text or in anything the text decodes to.
    pieces = {value[i : i + 12] for i in range(len(value) - 11)}
    for view in canary.views(scrubbed):
        assert not any(piece in view for piece in pieces)


PATTERNS = {
    "the token after Bearer is masked": (
        "Authorization: Bearer abcdefghijklmnopqrstuvwxyz-0123456789",
        f"Authorization: Bearer {MASK}",
    ),
    "bearer in lower case is masked too": (
        '{"authorization": "bearer 0123456789abcdef0123"}',
        f'{{"authorization": "bearer {MASK}"}}',
    ),
    "an unregistered JWT is masked wherever it stands": (f"echo: {UNREGISTERED_JWT}.", f"echo: {MASK}."),
    "prose about bearer tokens stays": (
        "AKV10000: Request is missing a Bearer or PoP token.",
        "AKV10000: Request is missing a Bearer or PoP token.",
    ),
    "a challenge's parameters stay": (
        'Bearer authorization="https://login.microsoftonline.com/t", resource="https://vault.azure.net"',
        'Bearer authorization="https://login.microsoftonline.com/t", resource="https://vault.azure.net"',
    ),
    "a long challenge parameter stays": (
        'Bearer authorization_uri_of_the_tenant="https://login.microsoftonline.com/t"',
        'Bearer authorization_uri_of_the_tenant="https://login.microsoftonline.com/t"',
    ),
    "a GUID and a timestamp stay": (
        "key 5d0b1c3e-4a6f-4e0b-9a43-6c1f1d2e3f40 at 2026-01-02T03:04:05Z",
        "key 5d0b1c3e-4a6f-4e0b-9a43-6c1f1d2e3f40 at 2026-01-02T03:04:05Z",
    ),
}


@pytest.mark.parametrize(("text", "expected"), PATTERNS.values(), ids=PATTERNS.keys())
def test_bearer_tokens_and_jwts_are_masked_unregistered(text: str, expected: str) -> None:
    assert redact.scrub(text) == expected


def test_text_with_escapes_but_no_secret_is_unchanged() -> None:
    redact.register(SECRET)
    text = 'path=%2Fa%2Fb name="x\\u0041y\\n" 100%'
    assert redact.scrub(text) == text


def test_an_expired_token_is_forgotten_once_another_value_is_registered() -> None:
    token = "opaque-access-token-that-expired-0123456789"
    redact.register(token, expires_at=time.time() - 1)
    assert redact.scrub(token) == MASK, "known until the next registration sweeps it"

    redact.register("another-value-that-sweeps-0123456789")

    assert redact.scrub(token) == token


def test_a_token_registered_as_a_secret_too_is_kept() -> None:
    value = "a-value-first-seen-as-a-token-0123456789"
    redact.register(value, expires_at=time.time() - 1)
    redact.register(value)
    redact.register("one-more-value-to-sweep-0123456789")

    assert redact.scrub(value) == MASK


CLIPPED = {
    "a short message is kept": ("Secret not found: x", "Secret not found: x"),
    "newlines and control characters become spaces": ("line one\nline two\r\n\x1b[31mred", "line one line two [31mred"),
    "a long message is cut to 200 characters": ("word " * 100, ("word " * 40)[:199] + "…"),
}


@pytest.mark.parametrize(("text", "expected"), CLIPPED.values(), ids=CLIPPED.keys())
def test_clip(text: str, expected: str) -> None:
    assert redact.clip(text) == expected


def test_clip_scrubs_before_it_cuts() -> None:
    redact.register(SECRET)
    text = "x" * 190 + SECRET

    clipped = redact.clip(text)

    assert len(clipped) <= 200
    assert SECRET[:8] not in clipped
    assert clipped.endswith(MASK)
