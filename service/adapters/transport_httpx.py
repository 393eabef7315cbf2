"""The httpx client of Graph's SDK (used for writes only), with transport.py's guards: no redirect is
followed, no body is read past its limit, and a compressed answer is never inflated.

Apart from transport.py so that a pass that only reads never imports httpx.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import httpx

from service.adapters.transport import USER_AGENT, AnswerRefused, body_limit, host_of, redirect_refused


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
