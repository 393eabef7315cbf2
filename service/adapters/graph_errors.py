"""What Graph's answers mean, shared by the reads (plain HTTPS) and the writes (msgraph-sdk): no SDK here.

One mapping from Graph's status and error code to the service's reason, transience and hint, whichever
client got the answer, so that an app read in a batch fails exactly as the same read alone would.
Error text from Graph is kept to its structured code and message, clipped (redact.clip): never a body.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from service.adapters.sign_in import SIGN_IN_CLIP
from service.adapters.utc import as_utc
from service.errors import FailureReason, RemoteError
from service.model import App, Credential
from service.redact import clip
from service.retry import TRANSIENT_STATUSES, parse_retry_after

SERVICE = "graph"
NOT_GRAPH = (
    "something other than Graph answered (a proxy, a captive portal?): check cloud.graph_url and HTTPS_PROXY/NO_PROXY"
)
NETWORK = "network trouble reaching Graph (proxy, DNS, firewall?); the next pass tries again"


def not_graph(message: str, *, target: str, status: int | None = None, transient: bool = False) -> RemoteError:
    """An answer that cannot be Graph's (not JSON, a batch that left a request out, a body refused unread):
    unexpected, with the hint that something else answered."""
    return RemoteError(
        message,
        service=SERVICE,
        target=target,
        reason=FailureReason.UNEXPECTED,
        transient=transient,
        status=status,
        hint=NOT_GRAPH,
    )


# The properties of an app the rotator reads.
APP_SELECT = ("id", "appId", "displayName", "passwordCredentials")
# The failures of the rotator's own token request that token_error sorts.
TOKEN_FAILURES = (ClientAuthenticationError, HttpResponseError, ServiceRequestError, ServiceResponseError)


def reason_and_hint(status: int | None, code: str | None, operation: str) -> tuple[FailureReason, str | None]:
    """The reason and hint for Graph's answer ``status`` with its error ``code``."""
    if status in (401, 403):
        return FailureReason.PERMISSION_DENIED, None
    if status == 404:
        return FailureReason.NOT_FOUND, (
            "no app with this client_id in the tenant: check tenant_id and client_id (the Application ID)"
        )
    if code and "Policy" in code:
        return FailureReason.POLICY_VIOLATION, None
    if code == "TooManyAppPasswords":
        return FailureReason.POLICY_VIOLATION, (
            "the app holds as many secrets as Entra allows: remove unused ones, or lower max_credentials"
        )
    if status == 429:
        return FailureReason.THROTTLED, None
    if status in TRANSIENT_STATUSES:
        return FailureReason.UNEXPECTED, f"Graph answered {status} to {operation}; the next pass tries again"
    return FailureReason.UNEXPECTED, None


def answer_error(
    status: int | None, error: object, headers: Mapping[str, str], *, target: str, operation: str
) -> RemoteError:
    """Graph's error answer (``error``: the body's ``error`` object, if it has one) as the service's error."""
    code = message = None
    if isinstance(error, Mapping):
        code = clip(error["code"], 100) if isinstance(error.get("code"), str) and error["code"] else None
        message = clip(error["message"]) if isinstance(error.get("message"), str) and error["message"] else None
    reason, hint = reason_and_hint(status, code, operation)
    lowered = {k.lower(): v for k, v in headers.items()}
    return RemoteError(
        # An error body that is not Graph's OData error (an HTML gateway page, a cut body) is not shown.
        message or f"Graph answered {status}",
        service=SERVICE,
        target=target,
        reason=reason,
        transient=status in TRANSIENT_STATUSES,
        status=status,
        code=code,
        retry_after=parse_retry_after(lowered.get("retry-after")),
        hint=hint,
    )


def token_error(exc: BaseException, *, target: str) -> RemoteError:
    """The rotator's own token request for Graph failing, as the service's error."""
    if isinstance(exc, ClientAuthenticationError):
        return RemoteError(
            f"the rotator could not get a token for Graph: {clip(exc.message, SIGN_IN_CLIP)}",
            service="entra",
            target=target,
            reason=FailureReason.PERMISSION_DENIED,
            transient=False,
            hint=getattr(exc, "hint", None)
            or "check the rotator's own credential (credential: in the config, workload identity federation)",
        )
    # An answer azure-identity could not read (its text would hold the whole body) or none at all.
    return RemoteError(
        f"the rotator's token request for Graph failed: {type(exc).__name__}",
        service="entra",
        target=target,
        reason=FailureReason.UNEXPECTED,
        transient=not isinstance(exc, HttpResponseError),
        hint="check cloud.authority_host, the network path to it and any proxy (HTTPS_PROXY/NO_PROXY)",
    )


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 time as Graph writes it (``Z`` or an offset), in UTC; None for no time."""
    if not isinstance(value, str) or not value:
        return None
    return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))


def credential_from_json(item: Mapping[str, object]) -> Credential:
    """A passwordCredential as Graph's JSON has it (no secretText: Graph returns that only once)."""
    return Credential(
        key_id=str(item.get("keyId")),
        display_name=str(item["displayName"]) if item.get("displayName") is not None else None,
        hint=str(item["hint"]) if item.get("hint") is not None else None,
        start=parse_time(item.get("startDateTime")),
        end=parse_time(item.get("endDateTime")),
    )


def app_from_json(data: object, client_id: str, *, target: str) -> App:
    """An application as Graph's JSON has it; RemoteError(not_found) for an answer that holds none."""
    if not isinstance(data, Mapping) or not data.get("id"):
        raise RemoteError(
            "Graph returned no application",
            service=SERVICE,
            target=target,
            reason=FailureReason.NOT_FOUND,
            transient=False,
            status=404,
        )
    try:
        credentials = tuple(credential_from_json(p) for p in data.get("passwordCredentials") or ())
    except (ValueError, TypeError, AttributeError):
        raise not_graph("Graph's answer holds a password credential that cannot be read", target=target) from None
    return App(
        object_id=str(data["id"]),
        app_id=str(data.get("appId") or client_id),
        display_name=str(data.get("displayName") or ""),
        credentials=credentials,
    )


def app_target(client_id: str, tenant_id: str) -> str:
    """How errors name the app a read was for."""
    return f"app {client_id} in tenant {tenant_id}"
