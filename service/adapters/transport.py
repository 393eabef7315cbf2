"""HTTP plumbing shared by every adapter in a pass: one TLS context, one aiohttp session.

The Azure SDKs' async transports and the push sink share one aiohttp session (one connection pool);
Graph's SDK speaks httpx, so each Graph client gets an httpx client built on the same TLS context.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from azure.core.pipeline.transport import AioHttpTransport

from service import __version__
from service.local_files import read_ca_bundle

USER_AGENT = f"secret-rotator/{__version__}"


def tls_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """The system's trust store, plus ``ca_bundle`` (a private CA, or the emulator's) when given."""
    context = ssl.create_default_context()
    if ca_bundle is not None:
        # Read with a size limit (the config check has said what is wrong with it, if anything).
        context.load_verify_locations(cadata=read_ca_bundle(ca_bundle))
    return context


def aiohttp_session(context: ssl.SSLContext, *, limit: int = 100) -> aiohttp.ClientSession:
    # Environment proxies are honoured, as operators behind a proxy expect (HTTPS_PROXY, NO_PROXY).
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=context, limit=limit, limit_per_host=limit),
        trust_env=True,
        headers={"User-Agent": USER_AGENT},
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
    }


def httpx_client(context: ssl.SSLContext, base_url: str, *, limit: int = 100) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        verify=context,
        timeout=httpx.Timeout(30.0, connect=10.0),
        limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
        trust_env=True,
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
    )
