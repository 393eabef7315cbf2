"""RS256 JSON Web Tokens as Entra issues them, and their validation as Graph and Key Vault do it.

The emulator signs access tokens with one RSA key whose public half it publishes as a JWKS, exactly the
way a client or a resource would find Entra's keys. Graph and Key Vault handlers validate what they are
sent (signature, expiry against the emulator clock, audience) instead of trusting claims blindly, so a
token minted for the wrong resource is refused the way Azure refuses it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# Entra accepts tokens a few minutes past `exp`; the resources the emulator stands in for do too.
CLOCK_SKEW_SECONDS = 300
# Tokens whose signature was checked, remembered: a client sends one token with thousands of requests,
# and an RSA verification costs more than the rest of a request's handling.
_VERIFIED_TOKENS = 4096


class TokenError(Exception):
    """A token that is malformed, badly signed, expired or meant for someone else."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int_b64(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a JWT without checking its signature (client assertions, tests)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("not a JWT: expected three dot-separated parts")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TokenError("not a JWT: a part is not base64url JSON") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError("not a JWT: header or payload is not a JSON object")
    return header, claims


class TokenSigner:
    """Holds the signing key; mints and validates the emulator's access and ID tokens."""

    def __init__(self) -> None:
        # 2048 bits, as Entra's own signing keys; generation takes a few tens of milliseconds.
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = self._key.public_key().public_numbers()
        self._jwk = {"kty": "RSA", "use": "sig", "n": _int_b64(numbers.n), "e": _int_b64(numbers.e)}
        # Entra's kid is the base64url SHA-1 thumbprint of the signing certificate; this is the same
        # idea computed over the public key.
        self.kid = b64url(hashlib.sha1(self._jwk["n"].encode(), usedforsecurity=False).digest())
        self._verified: dict[str, dict[str, Any]] = {}  # token -> its claims, signature checked

    def jwks(self, issuer: str | None = None) -> dict[str, Any]:
        key: dict[str, Any] = {**self._jwk, "kid": self.kid, "x5t": self.kid}
        if issuer is not None:
            key["issuer"] = issuer
        return {"keys": [key]}

    def sign(self, claims: Mapping[str, Any]) -> str:
        header = {"typ": "JWT", "alg": "RS256", "x5t": self.kid, "kid": self.kid}
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(dict(claims), separators=(",", ":")).encode())
        )
        signature = self._key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(signature)

    def verify(self, token: str, *, now: datetime, audiences: frozenset[str]) -> dict[str, Any]:
        """The claims of a token this signer issued, or :class:`TokenError` saying why it is refused."""
        claims = self._verified.get(token)
        if claims is None:
            claims = self._signed_claims(token)
            if len(self._verified) >= _VERIFIED_TOKENS:
                self._verified.clear()
            self._verified[token] = claims
        timestamp = now.timestamp()
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp + CLOCK_SKEW_SECONDS < timestamp:
            raise TokenError("token expired")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf - CLOCK_SKEW_SECONDS > timestamp:
            raise TokenError("token not yet valid")
        if claims.get("aud") not in audiences:
            raise TokenError(f"invalid audience {claims.get('aud')!r}")
        return dict(claims)

    def _signed_claims(self, token: str) -> dict[str, Any]:
        """The claims of a token whose signature is this signer's; TokenError if it is not."""
        header, claims = decode_unverified(token)
        if header.get("alg") != "RS256" or header.get("kid") != self.kid:
            raise TokenError("signature key not found")
        signing_input, _, signature = token.rpartition(".")
        try:
            self._key.public_key().verify(
                b64url_decode(signature), signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
            )
        except (InvalidSignature, ValueError) as exc:
            raise TokenError("signature validation failed") from exc
        return claims
