"""HTTP plumbing shared by every adapter in a pass: one TLS context, one aiohttp session.

The Azure SDKs' async transports and the push sink share one aiohttp session (one connection pool);
Graph's SDK speaks httpx, so each Graph client gets an httpx client built on the same TLS context.

Both guard what comes back: redirects are never followed (a write would carry its secret, or its bearer
token, to wherever the answer points), and no body is read past a limit (a hostile or broken endpoint
could answer gigabytes): an error body is cut at ERROR_BODY_LIMIT (its status says what matters), a
success body over BODY_LIMIT is refused with :class:`AnswerRefused`.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import httpx
from azure.core.pipeline.transport import AioHttpTransport

from service import __version__
from service.local_files import read_ca_bundle
from service.redact import clip

USER_AGENT = f"secret-rotator/{__version__}"
# Graph's, Key Vault's and Entra's error bodies are well under 2 KB.
ERROR_BODY_LIMIT = 8 * 1024
# The largest answer parsed is a page of Graph applications or Key Vault versions: tens of KB.
BODY_LIMIT = 4 * 1024 * 1024


def body_limit(status: int) -> int:
    """How much of a body with this status is read."""
    return ERROR_BODY_LIMIT if status >= 400 else BODY_LIMIT


class AnswerRefused(Exception):
    """An answer the service will not take: a redirect, or a success body over its limit.

    Raised from inside an SDK call; each adapter turns it into a :class:`service.errors.RemoteError`.
    ``origin`` is who answered and ``location`` where a redirect pointed (scheme and host only).
    """

    def __init__(self, status: int, why: str, *, origin: str | None, location: str | None = None) -> None:
        super().__init__(f"{origin or 'the endpoint'} {why}")
        self.status = status
        self.origin = origin
        self.location = location


def redirect_refused(status: int, url: object, location: str | None) -> AnswerRefused:
    """The error for a 3xx answer from ``url`` pointing at ``location``."""
    where = host_of(location)
    return AnswerRefused(
        status, f"answered {status}, a redirect to {where or 'nowhere'}: redirects are never followed",
        origin=host_of(str(url)), location=where,
    )


def host_of(url: str | None) -> str | None:
    """The scheme and host of a URL an endpoint gave: enough to tell where, never a path or query."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "an unreadable location"
    if not parts.scheme or not host:
        return "a relative location"
    return clip(f"{parts.scheme}://{host}" + (f":{port}" if port else ""))


async def _read_at_most(content: aiohttp.StreamReader, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = await content.read(size - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


class CappedResponse(aiohttp.ClientResponse):
    """aiohttp's response, read only up to :func:`body_limit`; the rest is never read and the connection goes.

    Every body the Azure SDKs' aiohttp transport loads, and every error body the push sink reads, comes
    through :meth:`read`.
    """

    _cut = False

    async def read(self) -> bytes:
        """The body, up to :func:`body_limit` for its status; AnswerRefused for a success that is larger."""
        if self._body is None:
            limit = body_limit(self.status)
            if self.status < 400 and (self.content_length or 0) > limit:
                self.close()
                raise AnswerRefused(
                    self.status, f"answered {self.content_length} bytes, more than the {limit} read",
                    origin=host_of(str(self.url)),
                )
            try:
                data = await _read_at_most(self.content, limit + 1)
            except BaseException:
                self.close()
                raise
            if len(data) > limit:
                self.close()
                if self.status < 400:
                    raise AnswerRefused(
                        self.status, f"answered more than the {limit} bytes read", origin=host_of(str(self.url))
                    )
                self._cut = True
                self._body = data[:limit]
            else:
                self._body = data
        if self._cut:
            return self._body
        return await super().read()


def tls_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """The system's trust store, plus ``ca_bundle`` (a private CA, or the emulator's) when given."""
    context = ssl.create_default_context()
    if ca_bundle is not None:
        # Read with a size limit (the config check has said what is wrong with it, if anything).
        context.load_verify_locations(cadata=read_ca_bundle(ca_bundle))
    return context


def aiohttp_session(context: ssl.SSLContext, *, limit: int = 100) -> aiohttp.ClientSession:
    # Environment proxies are honoured, as operators behind a proxy expect (HTTPS_PROXY, NO_PROXY).
    """The one aiohttp session of a pass: TLS ``context``, capped bodies, proxies from the environment."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=context, limit=limit, limit_per_host=limit),
        trust_env=True,
        headers={"User-Agent": USER_AGENT},
        response_class=CappedResponse,
    )


def azure_transport(session: aiohttp.ClientSession) -> AioHttpTransport:
    """An Azure SDK transport over the shared session; closing the client leaves the session open."""
    return AioHttpTransport(session=session, session_owner=False)


def azure_client_kwargs(session: aiohttp.ClientSession) -> dict[str, Any]:
    """Keyword arguments every Azure SDK client and credential of a pass gets."""
    return {
        "transport": azure_transport(session),
        # Retries are ours (service.retry): one budget, one notion of transient.
        "retry_total": 0,
        "user_agent": USER_AGENT,
        # azure-core's RedirectPolicy would send a PUT, secret and all, wherever a 307 points; a 3xx comes
        # back as an HttpResponseError instead.
        "permit_redirects": False,
    }


class _CappedStream(httpx.AsyncByteStream):
    """A response body stream that ends (an error body) or fails (a success body) after ``limit`` bytes."""

    def __init__(self, inner: httpx.AsyncByteStream, status: int, origin: str | None, limit: int) -> None:
        self._inner = inner
        self._status = status
        self._origin = origin
        self._limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        limit, read = self._limit, 0
        async for chunk in self._inner:
            if read + len(chunk) > limit:
                await self._inner.aclose()  # unread: httpcore closes the connection rather than reuse it
                if self._status < 400:
                    raise AnswerRefused(self._status, f"answered more than the {limit} bytes read", origin=self._origin)
                yield chunk[: limit - read]
                return
            read += len(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


async def _guard(response: httpx.Response) -> None:
    """httpx's response hook, run before the body is read: refuse redirects, cap the body."""
    origin, status = host_of(str(response.request.url)), response.status_code
    if 300 <= status < 400:
        await response.aclose()
        raise redirect_refused(status, response.request.url, response.headers.get("Location"))
    limit = body_limit(status)
    if response.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity"):
        # Asked for identity: httpx would inflate a compressed body after the cap, a bomb whole.
        if status < 400:
            await response.aclose()
            raise AnswerRefused(status, "answered a compressed body although none was asked for", origin=origin)
        del response.headers["Content-Encoding"]
        limit = 0  # an error's status says enough; its body is dropped unread
    assert isinstance(response.stream, httpx.AsyncByteStream)  # an AsyncClient's transport answers async streams
    response.stream = _CappedStream(response.stream, status, origin, limit)


def httpx_client(context: ssl.SSLContext, base_url: str, *, limit: int = 100) -> httpx.AsyncClient:
    """The httpx client under msgraph-sdk: TLS ``context``, no redirects, capped bodies, no compression."""
    return httpx.AsyncClient(
        base_url=base_url,
        verify=context,
        timeout=httpx.Timeout(30.0, connect=10.0),
        limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
        trust_env=True,
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        follow_redirects=False,
        event_hooks={"response": [_guard]},
    )
