"""Posting a pass's notices to the configured Teams and Slack incoming webhooks.

Hardened as the push sinks are: https only (http to loopback alone), redirects never followed, the
answer's body never read (the session's bodies are capped anyway), every request bounded in time. A
webhook that fails is logged as ``notify.failed`` (its type and host, never its URL: that is a secret) and
the pass goes on: telling people is never worth failing a rotation for. One attempt per message: a
notice is no state to converge, and the log has it all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path

import aiohttp

from service import logs
from service.adapters.transport import aiohttp_session, host_of, tls_context
from service.catalogue import Event
from service.config.notify import NotifyConfig, webhook_url_problem
from service.errors import ConfigError
from service.notify import BODIES, Notice

TIMEOUT_SECONDS = 10.0


async def send_notices(
    hooks: Sequence[NotifyConfig],
    notices: Sequence[Notice],
    ca_bundle: Path | None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Post each notice to each webhook that asked for its kind; log what failed; never raise."""
    wanted = [(hook, notice) for hook in hooks for notice in notices if notice.kind in hook.events]
    if not wanted:
        return
    log = logs.get_logger()
    try:
        context = tls_context(ca_bundle)
    except (OSError, ValueError) as error:
        log.warning(Event.NOTIFY_FAILED, error=f"the CA bundle cannot be used: {type(error).__name__}")
        return
    async with aiohttp_session(context, limit=8) as session:
        await asyncio.gather(*(_post(session, hook, notice, environ) for hook, notice in wanted))


async def _post(
    session: aiohttp.ClientSession, hook: NotifyConfig, notice: Notice, environ: Mapping[str, str] | None
) -> None:
    log = logs.get_logger(target=notice.target)
    where = {"kind": notice.kind.value, "channel": hook.type}
    try:
        url = hook.url.resolve(environ).reveal()
    except ConfigError as error:
        log.warning(Event.NOTIFY_FAILED, **where, error=str(error), hint="set the webhook's URL where notify.url says")
        return
    where["host"] = host_of(url) or "?"
    wrong = webhook_url_problem(url)
    if wrong:
        log.warning(Event.NOTIFY_FAILED, **where, error=f"the webhook URL {wrong}", hint="fix notify.url")
        return
    try:
        async with session.post(
            url,
            data=BODIES[hook.type](notice),
            headers={"Content-Type": "application/json"},
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
        ) as response:
            status = response.status
    except (TimeoutError, aiohttp.ClientError) as error:
        log.warning(
            Event.NOTIFY_FAILED,
            **where,
            error=f"no answer: {type(error).__name__}",
            hint="check that the webhook's host can be reached from here (proxy, firewall)",
        )
        return
    except Exception as error:  # noqa: BLE001 - a notice must never fail the pass, whatever goes wrong
        log.warning(Event.NOTIFY_FAILED, **where, error=f"{type(error).__name__} while posting")
        return
    if 200 <= status < 300:
        log.info(Event.NOTIFY_SENT, **where)
        return
    hint = (
        "the webhook was removed or its URL is wrong: make a new one and update notify.url"
        if status in (401, 403, 404, 410)
        else "the webhook redirects: give its final https URL"
        if 300 <= status < 400
        else "the channel's service refused or failed: the next pass tells again if it happens again"
    )
    log.warning(Event.NOTIFY_FAILED, **where, status=status, error=f"the webhook answered {status}", hint=hint)
