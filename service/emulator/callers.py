"""Who is calling Graph or Key Vault, read from a validated bearer token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Caller:
    """The identity behind an access token: an app (app-only) or a user (delegated)."""

    tenant_id: str
    object_id: str  # the service principal's object id (app-only) or the user's (delegated)
    app_id: str
    roles: frozenset[str]  # app roles on the resource (app-only tokens)
    scopes: frozenset[str]  # delegated permissions (the `scp` claim)
    role_ids: frozenset[str]  # directory role template ids (the `wids` claim)
    delegated: bool

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Caller:
        roles = claims.get("roles") or []
        wids = claims.get("wids") or []
        return cls(
            tenant_id=str(claims.get("tid", "")),
            object_id=str(claims.get("oid", "")),
            app_id=str(claims.get("appid") or claims.get("azp") or ""),
            roles=frozenset(str(r) for r in roles),
            scopes=frozenset(str(claims.get("scp", "")).split()),
            role_ids=frozenset(str(w) for w in wids),
            delegated=claims.get("idtyp") == "user" or "scp" in claims,
        )


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
