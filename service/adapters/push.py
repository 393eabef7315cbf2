"""The HTTPS push to Dime.Scheduler's configuration endpoint (or any webhook).

``POST url`` with a JSON body and ``Idempotency-Key: <keyId>``; 2xx is success; 408/429/5xx are
retried honouring ``Retry-After`` within the sink's timeout; redirects are refused (the secret would
follow them, perhaps to plain http). A success body is never read; of an error body at most
transport.ERROR_BODY_LIMIT bytes, and only its structured code and message are kept (an endpoint may
echo the request, secret and all, in any encoding). Query parameters that are secrets (an Azure
Functions `code`) are added at send time: the URL that names the sink in ids, receipts and logs has none.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import aiohttp

from service.adapters.transport import env_proxy, host_of
from service.errors import FailureReason, OutcomeUnknown, RemoteError
from service.metrics import DEFAULT as DEFAULT_METRICS
from service.metrics import Metrics
from service.redact import clip
from service.retry import TRANSIENT_STATUSES, RetryPolicy, parse_retry_after, retrying
from service.secret import Secret

SERVICE = "push"


@dataclass(frozen=True)
class PushRequest:
    """How to address one endpoint; header values that are secrets travel as :class:`Secret`."""

    url: str
    secret_field: str = "clientSecret"  # noqa: S105  # a JSON field name, not a password
    headers: Mapping[str, str] = field(default_factory=dict)
    secret_headers: Mapping[str, Secret] = field(default_factory=dict)
    query: Mapping[str, Secret] = field(default_factory=dict)
    timeout: float = 120.0


class HttpPusher:
    """:class:`service.ports.Pusher` over the pass's shared aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        request: PushRequest,
        retry: RetryPolicy,
        metrics: Metrics = DEFAULT_METRICS,
        proxy: str | Literal["env"] | None = "env",
    ) -> None:
        """``proxy``: the proxy for ``request.url`` (None: none) as the pass looked it up once for every
        push to that host, or ``"env"``: look it up now."""
        self._session = session
        self._request = request
        self._metrics = metrics
        # Looked up once: the session does not read the environment on every request.
        self._proxy = env_proxy(request.url) if proxy == "env" else proxy
        self._retry = RetryPolicy(
            attempts=retry.attempts,
            base_delay=retry.base_delay,
            max_delay=retry.max_delay,
            budget=min(retry.budget, request.timeout),
        )

    async def push(self, fields: Mapping[str, object], secret: Secret, idempotency_key: str) -> None:
        """:meth:`service.ports.Pusher.push`: one POST, retried on 408/429/5xx within the push's timeout."""
        request = self._request
        headers = {
            **request.headers,
            **{name: value.reveal() for name, value in request.secret_headers.items()},
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key,
        }
        body = json.dumps({**fields, request.secret_field: secret.reveal()})
        query = {name: value.reveal() for name, value in request.query.items()}

        async def once() -> None:
            try:
                async with self._session.post(
                    request.url,
                    params=query,
                    data=body,
                    headers=headers,
                    allow_redirects=False,
                    proxy=self._proxy,
                    timeout=aiohttp.ClientTimeout(total=min(60.0, request.timeout)),
                ) as response:
                    if 200 <= response.status < 300:
                        return
                    # Capped by the session's response class (transport.CappedResponse).
                    words = _their_words(await response.read())
                    raise _refused(request.url, response.status, response.headers, words)
            except (aiohttp.ClientConnectorError, aiohttp.ClientSSLError) as exc:
                raise RemoteError(
                    f"cannot connect: {type(exc).__name__}",
                    service=SERVICE,
                    target=request.url,
                    reason=FailureReason.SINK_FAILED,
                    transient=not isinstance(exc, aiohttp.ClientSSLError),
                    hint="check the URL, DNS and the endpoint's certificate (cloud.ca_bundle for a private CA)",
                ) from None
            except (TimeoutError, aiohttp.ClientError) as exc:
                # Sent, but the answer was lost: the endpoint may have the secret. Retrying is safe (the
                # Idempotency-Key dedupes it); if it never answers, the receipt stays pending.
                raise OutcomeUnknown(
                    f"no answer: {type(exc).__name__}",
                    service=SERVICE,
                    target=request.url,
                    reason=FailureReason.SINK_FAILED,
                    transient=True,
                ) from None

        await retrying(once, self._retry, observe=self._metrics.observer(SERVICE, "push"))


def _their_words(body: bytes) -> str:
    """The endpoint's own error code and message when its body is JSON that has them; never the body."""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    error = data.get("error")
    if isinstance(error, dict):  # {"error": {"code": ..., "message": ...}}, as Azure answers
        code, message = error.get("code"), error.get("message")
    else:  # {"error": "...", "error_description": ...} (OAuth), {"code", "message"}, RFC 7807's title and detail
        code = error if error is not None else data.get("code")
        message = next(
            (data[k] for k in ("message", "error_description", "detail", "title") if isinstance(data.get(k), str)), None
        )
    parts = [clip(code, 100) if isinstance(code, str | int) else "", clip(message) if isinstance(message, str) else ""]
    return ": ".join(part for part in parts if part)


def _refused(url: str, status: int, headers: Mapping[str, str], words: str) -> RemoteError:
    hint = None
    if status in (401, 403):
        hint = "the endpoint refused the credentials: check the sink's api_key (X-API-KEY) or secret_headers"
    elif 300 <= status < 400:
        where = host_of(headers.get("Location")) or "nowhere"
        hint = f"the endpoint redirects to {where}: configure the final https URL"
    elif status == 404:
        hint = "check the sink's url"
    return RemoteError(
        f"the endpoint answered {status}" + (f": {words}" if words else ""),
        service=SERVICE,
        target=url,
        reason=FailureReason.SINK_FAILED,
        transient=status in TRANSIENT_STATUSES,
        status=status,
        retry_after=parse_retry_after(headers.get("Retry-After")),
        hint=hint,
    )
