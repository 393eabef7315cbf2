"""Sign-ins with client secrets, and Graph's (beta) report of them: appCredentialSignInActivities.

Entra records, per credential of an app, when it last got a token; Graph serves that at
``GET /beta/reports/appCredentialSignInActivities`` (application permission AuditLog.Read.All or
Directory.Read.All; global cloud only; the data lags behind the sign-ins by hours). The token endpoint
calls :meth:`SignInLog.record` for every client-credentials token it issues for a secret, and the
report shows each credential's last sign-in that is older than ``lag``. Knobs for tests: ``lag``,
``empty`` (the report answers no rows, as for a tenant without the report's data) and ``available``
(False: the report is not there, as in a national cloud, which answers 400 for the segment).
"""

from __future__ import annotations

import base64
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

REPORT_ROLES = frozenset({"AuditLog.Read.All", "Directory.Read.All"})
_FILTER = re.compile(r"^\s*(appId|keyId)\s+eq\s+'([^']*)'\s*$")


@dataclass(frozen=True)
class SignIn:
    """One token issued for a client secret: when, in which tenant, for which app and credential."""

    at: datetime
    tenant_id: str
    app_id: str
    app_object_id: str
    key_id: str
    request_id: str


@dataclass(frozen=True)
class CredentialFacts:
    """What the report says of a credential beside its sign-in (taken from the app when it is asked)."""

    created: datetime
    end: datetime


class UnsupportedFilter(ValueError):
    """A ``$filter`` the emulator (and, for most shapes, Graph) does not take on this report."""


class SignInLog:
    """Every sign-in with a client secret, and the report's knobs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[SignIn] = []
        self.lag = timedelta(0)
        self.empty = False
        self.available = True

    def record(self, at: datetime, tenant_id: str, app_id: str, app_object_id: str, key_id: str) -> None:
        """A token was issued for this credential at ``at``."""
        with self._lock:
            self._entries.append(
                SignIn(at, tenant_id.lower(), app_id.lower(), app_object_id, key_id.lower(), str(uuid.uuid4()))
            )

    def entries(self) -> list[SignIn]:
        """Every sign-in recorded, oldest first (for tests)."""
        with self._lock:
            return list(self._entries)

    def last_sign_ins(self, tenant_id: str, now: datetime) -> dict[str, SignIn]:
        """Each credential's last sign-in in the tenant that the report shows at ``now`` (older than ``lag``)."""
        visible_until = now - self.lag
        last: dict[str, SignIn] = {}
        with self._lock:
            for entry in self._entries:
                if entry.tenant_id == tenant_id.lower() and entry.at <= visible_until:
                    seen = last.get(entry.key_id)
                    if seen is None or entry.at >= seen.at:
                        last[entry.key_id] = entry
        return last


def parse_filter(text: str | None) -> tuple[str, str] | None:
    """``appId eq '…'`` or ``keyId eq '…'`` as (property, value); None without a filter."""
    if text is None:
        return None
    match = _FILTER.match(text)
    if match is None:
        raise UnsupportedFilter(f"Invalid filter clause: {text[:100]}")
    return match.group(1), match.group(2).lower()


def _stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def activity_json(entry: SignIn, facts: CredentialFacts | None, sp_object_id: str | None) -> dict[str, Any]:
    """One appCredentialSignInActivity as Graph's JSON has it."""
    return {
        "id": base64.b64encode(f"{entry.key_id}|application".encode()).decode(),
        "keyId": entry.key_id,
        "keyType": "clientSecret",
        "keyUsage": "sign",
        "appId": entry.app_id,
        "appObjectId": entry.app_object_id,
        "servicePrincipalObjectId": sp_object_id,
        "resourceId": None,
        "credentialOrigin": "application",
        "createdDateTime": _stamp(facts.created) if facts else None,
        "expirationDateTime": _stamp(facts.end) if facts else None,
        "signInActivity": {"lastSignInDateTime": _stamp(entry.at), "lastSignInRequestId": entry.request_id},
    }
