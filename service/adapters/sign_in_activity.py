"""Entra's sign-in activity report through msgraph-sdk's request adapter: :class:`service.ports.SignInReport`.

``GET {graph}/beta/reports/appCredentialSignInActivities?$filter=appId eq '…'`` answers, per credential of
the app that signed in lately, its ``keyId`` and ``signInActivity.lastSignInDateTime``. The SDK has no v1.0
builder for it (the report is beta only), so the request is built by hand and sent through the tenant's
Graph request adapter: the same auth, middleware and OData error mapping as every other Graph read, and the
same translation of failures (service.adapters.graph.translate) and retries.
"""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import quote, urlencode, urlsplit

from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph.graph_service_client import GraphServiceClient

from service.adapters.graph_errors import SERVICE, parse_time
from service.adapters.graph_sdk import ODATA_ERRORS, graph_read
from service.errors import FailureReason, RemoteError
from service.metrics import DEFAULT as DEFAULT_METRICS
from service.metrics import Metrics
from service.retry import RetryPolicy

REPORT = "reports/appCredentialSignInActivities"
MAX_PAGES = 20  # an app has a handful of credentials; a report that pages on and on is not believed


def beta_url(graph_url: str) -> str:
    """Graph's beta root next to the configured v1.0 root (``…/v1.0`` -> ``…/beta``)."""
    base = graph_url.rstrip("/")
    if base.endswith("/v1.0"):
        base = base[: -len("/v1.0")]
    return f"{base}/beta"


class GraphSignInReport:
    """:class:`service.ports.SignInReport` over a tenant's Graph client."""

    def __init__(
        self,
        client: GraphServiceClient,
        tenant_id: str,
        graph_url: str,
        retry: RetryPolicy,
        metrics: Metrics = DEFAULT_METRICS,
    ) -> None:
        self._client = client
        self._tenant_id = tenant_id
        self._root = beta_url(graph_url)
        self._host = urlsplit(self._root).netloc
        self._retry = retry
        self._metrics = metrics

    async def last_sign_ins(self, client_id: str) -> dict[str, datetime]:
        """:meth:`service.ports.SignInReport.last_sign_ins`: every page, the latest sign-in per key id."""
        target = f"sign-in activity of app {client_id} in tenant {self._tenant_id}"
        query = urlencode({"$filter": f"appId eq '{client_id}'"}, quote_via=quote)
        url: str | None = f"{self._root}/{REPORT}?{query}"
        found: dict[str, datetime] = {}
        for _ in range(MAX_PAGES):
            if url is None:
                return found
            page = await self._page(url, target)
            rows = page.get("value")
            for row in rows if isinstance(rows, list) else ():
                if not isinstance(row, dict) or str(row.get("appId", client_id)).lower() != client_id.lower():
                    continue
                activity = row.get("signInActivity")
                when = parse_time(activity.get("lastSignInDateTime")) if isinstance(activity, dict) else None
                key_id = row.get("keyId")
                if isinstance(key_id, str) and when is not None:
                    key_id = key_id.lower()
                    found[key_id] = max(when, found.get(key_id, when))
            url = self._next(page.get("@odata.nextLink"), target)
        raise RemoteError(
            f"the report pages on beyond {MAX_PAGES} pages",
            service=SERVICE,
            target=target,
            reason=FailureReason.UNEXPECTED,
            transient=False,
        )

    def _next(self, link: object, target: str) -> str | None:
        if link is None:
            return None
        # The token goes only where the report lives: a next link elsewhere is not followed.
        if not isinstance(link, str) or urlsplit(link).netloc != self._host:
            raise RemoteError(
                "the report's next link leads elsewhere",
                service=SERVICE,
                target=target,
                reason=FailureReason.UNEXPECTED,
                transient=False,
            )
        return link

    async def _page(self, url: str, target: str) -> dict[str, object]:
        request = RequestInformation(Method.GET)
        request.url = url
        request.headers.try_add("Accept", "application/json")
        adapter = self._client.request_adapter

        async def fetch() -> object:
            return await adapter.send_primitive_async(request, "bytes", ODATA_ERRORS)

        raw = await graph_read(fetch, target, "read sign-in activity", self._retry, self._metrics)
        try:
            data = json.loads(raw) if isinstance(raw, bytes | str) and raw else {}
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise RemoteError(
                "the report's answer is not a JSON object",
                service=SERVICE,
                target=target,
                reason=FailureReason.UNEXPECTED,
                transient=False,
            )
        return data
