"""Microsoft Graph's reads over the pass's aiohttp session: one app, or many in JSON batches. No SDK.

A healthy pass only reads, and reads are what a fleet pays for: a plain HTTPS request with a bearer token
(asked of azure-identity once, reused until five minutes before it expires) costs a fraction of what
msgraph-sdk's request builders, URI templates and middleware cost, and needs neither kiota nor httpx.
The guards are transport.py's: no redirect is followed, no body is read past its limit, a compressed
answer is never inflated; the token is registered with the redactor by the rotator's credential.

Many apps (:meth:`GraphReads.read_apps`) go 15 to a ``$filter=appId in (...)`` request (Graph's limit of
values) and 20 such requests to a ``POST /$batch`` (Graph's limit of requests): 300 apps a round trip.
An app no filter returned (one that is not there, or one the rotator may not read: an owner-only caller
sees only its own apps), and every app of a filter Graph refused, is read again alone (those reads
batched too), so that it fails exactly as :meth:`GraphReads.read_app` would: not found, permission
denied and so on, with the same reason and hint. A request inside a batch that is throttled or
unavailable is retried on its own after its own Retry-After, within the same retry policy, and a 429
pauses the tenant's whole budget (budget.py) for as long as Graph asked.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential

from service.adapters.budget import GRAPH_LIMIT, Budget
from service.adapters.graph_errors import (
    APP_SELECT,
    NETWORK,
    SERVICE,
    TOKEN_FAILURES,
    answer_error,
    app_from_json,
    app_target,
    not_graph,
    token_error,
)
from service.adapters.transport import AnswerRefused, env_proxy, host_of, redirect_refused
from service.errors import FailureReason, RemoteError
from service.metrics import DEFAULT as DEFAULT_METRICS
from service.metrics import Metrics
from service.model import App
from service.redact import clip
from service.retry import TRANSIENT_STATUSES, RetryPolicy, delay_for, parse_retry_after, retrying

BATCH_SIZE = 20  # requests in one $batch (Graph's limit)
IN_VALUES = 15  # values in one `in` filter (Graph's limit)
_BATCHES_AT_ONCE = 4  # $batch requests of one tenant in flight together
_REFRESH = 300  # seconds before its expiry a token is asked again (as azure-core's policies do)
_TIMEOUT = aiohttp.ClientTimeout(total=30.0, connect=10.0)
_SELECT = ",".join(APP_SELECT)
READ_APP = "read the app"
READ_APPS = "read apps"


@dataclass(frozen=True)
class Answer:
    """One answer from Graph, a whole HTTP answer or one request's inside a batch; ``body`` parsed JSON
    (``NOT_JSON`` when it is not)."""

    status: int
    headers: dict[str, str]
    body: Any

    def error(self, *, target: str, operation: str) -> RemoteError:
        """This answer as the service's error for ``target`` (graph_errors.answer_error)."""
        body = self.body if isinstance(self.body, dict) else {}
        return answer_error(self.status, body.get("error"), self.headers, target=target, operation=operation)

    @property
    def retry_after(self) -> float | None:
        """The answer's Retry-After in seconds, if it has one."""
        return parse_retry_after(next((v for k, v in self.headers.items() if k.lower() == "retry-after"), None))


NOT_JSON = object()


@dataclass(frozen=True)
class _Ask:
    """One GET inside a batch: its url relative to the Graph root, and the apps it asks for."""

    url: str
    client_ids: tuple[str, ...]
    operation: str


class _BatchRefused(Exception):
    """Graph answered the ``$batch`` request itself with a refusal that plain requests may not meet."""


def _by_app_id(client_id: str) -> str:
    return f"applications(appId='{quote(client_id.replace(chr(39), chr(39) * 2), safe='')}')?$select={_SELECT}"


def _in_filter(client_ids: Sequence[str]) -> str:
    values = ",".join("'" + c.replace("'", "''") + "'" for c in client_ids)
    return f"applications?$filter={quote(f'appId in ({values})', safe=chr(39) + '(),')}&$select={_SELECT}"


def _chunks(items: Sequence[str], size: int) -> list[tuple[str, ...]]:
    return [tuple(items[i : i + size]) for i in range(0, len(items), size)]


class GraphReads:
    """The reads of :class:`service.ports.Directory` for one tenant, over the pass's aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        credential: AsyncTokenCredential,
        tenant_id: str,
        graph_url: str,
        graph_scope: str,
        retry: RetryPolicy,
        metrics: Metrics = DEFAULT_METRICS,
        budget: Budget | None = None,
        *,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self._session = session
        self._credential = credential
        self._tenant_id = tenant_id
        self._root = graph_url.rstrip("/")
        self._scope = graph_scope
        self._retry = retry
        self._metrics = metrics
        self.budget = budget or Budget(GRAPH_LIMIT)
        self._sleep = sleep
        self._proxy = env_proxy(self._root)  # looked up once: the session does not read the environment
        self._token: AccessToken | None = None
        self._token_lock = asyncio.Lock()
        self._batches = asyncio.Semaphore(_BATCHES_AT_ONCE)

    # --- one app ---------------------------------------------------------------------------------

    async def read_app(self, client_id: str) -> App:
        """The app with this appId and its password credentials: one GET (retried while transient)."""
        target = app_target(client_id, self._tenant_id)

        async def once() -> App:
            answer = await self._send("GET", f"{self._root}/{_by_app_id(client_id)}", target=target, operation=READ_APP)
            if answer.status >= 300:
                raise answer.error(target=target, operation=READ_APP)
            return self._app(answer, client_id, target)

        return await retrying(once, self._retry, observe=self._metrics.observer(SERVICE, READ_APP), sleep=self._sleep)

    def _app(self, answer: Answer, client_id: str, target: str) -> App:
        if answer.body is NOT_JSON:
            raise not_graph("Graph's answer is not JSON", target=target)
        return app_from_json(answer.body, client_id, target=target)

    # --- many apps -------------------------------------------------------------------------------

    async def read_apps(self, client_ids: Iterable[str]) -> dict[str, App | RemoteError]:
        """Every app asked for (by appId), or the RemoteError :meth:`read_app` would raise for it."""
        wanted = list(dict.fromkeys(client_ids))
        results: dict[str, App | RemoteError] = {}
        alone: list[str] = []
        filters = [_Ask(_in_filter(chunk), chunk, READ_APPS) for chunk in _chunks(wanted, IN_VALUES)]
        for ask, outcome in zip(filters, await self._run(filters), strict=True):
            if isinstance(outcome, _BatchRefused):
                alone += ask.client_ids
            elif isinstance(outcome, RemoteError):  # the batch failed as a whole (no token, no answer...)
                results.update((c, outcome.about(app_target(c, self._tenant_id))) for c in ask.client_ids)
            elif outcome.status >= 300:
                error = outcome.error(target="", operation=READ_APPS)
                if error.transient:  # what a read alone would meet too, after as many tries
                    results.update((c, error.about(app_target(c, self._tenant_id))) for c in ask.client_ids)
                else:  # refused as a query: each app alone says why
                    alone += ask.client_ids
            else:
                found = self._filtered(outcome)
                for client_id in ask.client_ids:
                    app = found.get(client_id.lower())
                    if app is None:
                        alone.append(client_id)
                    else:
                        results[client_id] = app
        singles = [_Ask(_by_app_id(c), (c,), READ_APP) for c in alone]
        for ask, outcome in zip(singles, await self._run(singles), strict=True):
            [client_id] = ask.client_ids
            results[client_id] = await self._alone(client_id, outcome)
        return {c: results[c] for c in wanted}

    def _filtered(self, answer: Answer) -> dict[str, App]:
        """The apps a filter's answer holds, by lower-cased appId; {} for an answer that cannot be read (its
        apps are then read alone, which says what is wrong)."""
        body = answer.body
        if not isinstance(body, dict) or not isinstance(body.get("value"), list):
            return {}
        found = {}
        for item in body["value"]:
            if isinstance(item, dict) and isinstance(item.get("appId"), str):
                client_id = item["appId"]
                try:
                    found[client_id.lower()] = app_from_json(item, client_id, target="")
                except RemoteError:
                    continue
        return found

    async def _alone(self, client_id: str, outcome: Answer | RemoteError | _BatchRefused) -> App | RemoteError:
        target = app_target(client_id, self._tenant_id)
        try:
            if isinstance(outcome, _BatchRefused):
                return await self.read_app(client_id)
            if isinstance(outcome, RemoteError):
                return outcome.about(target)
            if outcome.status >= 300:
                return outcome.error(target=target, operation=READ_APP)
            return self._app(outcome, client_id, target)
        except RemoteError as error:
            return error

    async def _run(self, asks: Sequence[_Ask]) -> list[Answer | RemoteError | _BatchRefused]:
        """Each ask's answer, sent in batches; a transient one sent again on its own schedule (Retry-After,
        else the policy's back-off) until it is not, or the policy's attempts or time run out."""
        results: list[Answer | RemoteError | _BatchRefused | None] = [None] * len(asks)
        todo = list(range(len(asks)))
        started, attempt = time.monotonic(), 0
        while todo:
            attempt += 1
            groups = [todo[i : i + BATCH_SIZE] for i in range(0, len(todo), BATCH_SIZE)]
            outcomes = await asyncio.gather(*(self._batch([asks[i] for i in group]) for group in groups))
            again: list[int] = []
            wait = 0.0
            for group, answers in zip(groups, outcomes, strict=True):
                for i, answer in zip(group, answers, strict=True):
                    transient, retry_after = self._transient(answer)
                    observe = self._metrics.observer(SERVICE, asks[i].operation)
                    observe("transient" if transient else "ok" if _succeeded(answer) else "error")
                    delay = delay_for(attempt, retry_after, self._retry)
                    if (
                        transient
                        and attempt < self._retry.attempts
                        and (time.monotonic() - started + delay <= self._retry.budget)
                    ):
                        again.append(i)
                        wait = max(wait, delay)
                    else:
                        results[i] = answer
            if again:
                await self._sleep(wait)
            todo = again
        return [r for r in results if r is not None]

    def _transient(self, answer: Answer | RemoteError | _BatchRefused) -> tuple[bool, float | None]:
        if isinstance(answer, RemoteError):
            return answer.transient, answer.retry_after
        if isinstance(answer, Answer) and answer.status in TRANSIENT_STATUSES:
            if answer.status == 429 and answer.retry_after is not None:
                self._pause(answer.retry_after)
            return True, answer.retry_after
        return False, None

    async def _batch(self, asks: Sequence[_Ask]) -> list[Answer | RemoteError | _BatchRefused]:
        """One ``POST /$batch`` of ``asks``: each one's answer, in the order asked (Graph's may differ)."""
        body = {"requests": [{"id": str(n), "method": "GET", "url": f"/{a.url}"} for n, a in enumerate(asks)]}
        target = f"apps in tenant {self._tenant_id}"
        async with self._batches:
            try:
                answer = await self._send(
                    "POST", f"{self._root}/$batch", target=target, operation=READ_APPS, body=body, count=len(asks)
                )
            except RemoteError as error:
                return [error] * len(asks)
        if answer.status in (400, 404, 405, 501):
            # The batch itself refused (a Graph, or something in front of it, that takes no batches).
            return [_BatchRefused()] * len(asks)
        if answer.status >= 300:
            return [answer.error(target=target, operation=READ_APPS)] * len(asks)
        responses = answer.body.get("responses") if isinstance(answer.body, dict) else None
        by_id = {str(r.get("id")): r for r in responses or () if isinstance(r, dict)}
        results: list[Answer | RemoteError | _BatchRefused] = []
        for n in range(len(asks)):
            item = by_id.get(str(n))
            status = item.get("status") if item else None
            if item is None or not isinstance(status, int):
                results.append(not_graph("Graph's batch answer left out a request", target=target, transient=True))
                continue
            headers = item.get("headers")
            results.append(
                Answer(
                    status,
                    {str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {},
                    item.get("body"),
                )
            )
        return results

    # --- one HTTP request ------------------------------------------------------------------------

    async def _send(
        self, method: str, url: str, *, target: str, operation: str, body: object = None, count: int = 1
    ) -> Answer:
        """One request, once the budget has room for ``count`` (a batch counts its requests); the answer
        whatever its status. RemoteError for no answer, an answer refused, or no token."""
        await self.budget.take(count)
        headers = {
            "Authorization": f"Bearer {await self._bearer(target)}",
            "Accept": "application/json",
            "Accept-Encoding": "identity",
        }
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            async with self._session.request(
                method, url, data=data, headers=headers, allow_redirects=False, proxy=self._proxy, timeout=_TIMEOUT
            ) as response:
                status = response.status
                if 300 <= status < 400:
                    raise redirect_refused(status, response.url, response.headers.get("Location"))
                raw = b""
                if response.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity"):
                    if status < 400:
                        raise AnswerRefused(
                            status, "answered a compressed body although none was asked for", origin=host_of(url)
                        )
                    # Asked for identity: an error's status says enough, its body is dropped unread.
                else:
                    raw = await response.read()
                answer_headers = dict(response.headers)
        except AnswerRefused as exc:
            raise not_graph(f"{operation}: {exc}", target=target, status=exc.status) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RemoteError(
                clip(f"{operation} failed: {type(exc).__name__} {exc}".strip()),
                service=SERVICE,
                target=target,
                reason=FailureReason.UNEXPECTED,
                transient=True,
                hint=NETWORK,
            ) from None
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = NOT_JSON
        answer = Answer(status, answer_headers, parsed)
        if status == 429 and answer.retry_after is not None:
            self._pause(answer.retry_after)
        return answer

    def _pause(self, retry_after: float) -> None:
        """Hold every request to this tenant as long as Graph asked (no longer than the policy waits)."""
        self.budget.pause(min(retry_after, self._retry.max_delay))

    async def _bearer(self, target: str) -> str:
        """The access token for this tenant: asked once, reused until it nears its expiry."""
        token = self._token
        if token is None or token.expires_on - time.time() < _REFRESH:
            async with self._token_lock:
                token = self._token
                if token is None or token.expires_on - time.time() < _REFRESH:
                    try:
                        token = await self._credential.get_token(self._scope, tenant_id=self._tenant_id)
                    except TOKEN_FAILURES as exc:
                        raise token_error(exc, target=target) from None
                    except AnswerRefused as exc:
                        raise token_error(exc, target=target) from None
                    self._token = token
        return token.token


def _succeeded(answer: Answer | RemoteError | _BatchRefused) -> bool:
    return isinstance(answer, Answer) and answer.status < 300
