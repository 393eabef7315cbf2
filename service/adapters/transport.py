"""HTTP plumbing shared by every adapter in a pass: one TLS context, one aiohttp session.

The Azure SDKs' async transports, Graph's reads and the push sink share one aiohttp session (one
connection pool); Graph's SDK, used for writes only, speaks httpx: transport_httpx.py builds its client on
the same TLS context, with the same guards.

Both guard what comes back: redirects are never followed (a write would carry its secret, or its bearer
token, to wherever the answer points), and no body is read past a limit (a hostile or broken endpoint
could answer gigabytes): an error body is cut at ERROR_BODY_LIMIT (its status says what matters), a
success body over BODY_LIMIT is refused with :class:`AnswerRefused`.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from azure.core.pipeline.transport import AioHttpTransport
from yarl import URL

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
        status,
        f"answered {status}, a redirect to {where or 'nowhere'}: redirects are never followed",
        origin=host_of(str(url)),
        location=where,
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
                    self.status,
                    f"answered {self.content_length} bytes, more than the {limit} read",
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
    """The pass's one session. It does not read the environment on every request (``trust_env`` would look
    for a proxy and a netrc in a thread, twice a request): each client of a pass asks :func:`env_proxy` once
    for its host and names that proxy on its requests, so HTTPS_PROXY and NO_PROXY are honoured all the same."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=context, limit=limit, limit_per_host=limit),
        trust_env=False,
        headers={"User-Agent": USER_AGENT},
        response_class=CappedResponse,
    )


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url`` (HTTP(S)_PROXY unless NO_PROXY exempts its host; the
    proxy's credentials from its URL or ~/.netrc), or None for a direct connection."""
    try:
        proxy, auth = get_env_proxy_for_url(URL(url))
    except LookupError:
        return None
    if auth is not None:
        proxy = proxy.with_user(auth.login).with_password(auth.password)
    return str(proxy)


class ProxyLookup:
    """:func:`env_proxy` per scheme, host and port, looked up once per pass however many targets go there."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, str | None, int | None], str | None] = {}

    def __call__(self, url: str) -> str | None:
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname, parts.port)
        if key not in self._found:
            self._found[key] = env_proxy(url)
        return self._found[key]


def azure_transport(session: aiohttp.ClientSession) -> AioHttpTransport:
    """An Azure SDK transport over the shared session; closing the client leaves the session open."""
    return AioHttpTransport(session=session, session_owner=False)


def azure_client_kwargs(session: aiohttp.ClientSession, url: str | None = None) -> dict[str, Any]:
    """Keyword arguments every Azure SDK client and credential of a pass gets; ``url``: where it sends its
    requests, whose proxy (if any) is looked up now, once."""
    kwargs: dict[str, Any] = {
        "transport": azure_transport(session),
        # Retries are ours (service.retry): one budget, one notion of transient.
        "retry_total": 0,
        "user_agent": USER_AGENT,
        # azure-core's RedirectPolicy would send a PUT, secret and all, wherever a 307 points; a 3xx comes
        # back as an HttpResponseError instead.
        "permit_redirects": False,
    }
    return {**kwargs, **(proxy_kwargs(url) if url else {})}


def proxy_kwargs(url: str) -> dict[str, Any]:
    """The Azure SDK keyword naming the environment's proxy for ``url`` (none for a direct connection)."""
    proxy = env_proxy(url)
    return {"proxies": {urlsplit(url).scheme: proxy}} if proxy else {}
