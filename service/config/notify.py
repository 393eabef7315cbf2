"""The `notify:` key: Teams or Slack incoming webhooks that are told when a rotation is done or has failed.

A webhook URL is a secret (whoever has it may post to the channel), so the file names a reference to it,
never the URL; it is checked once resolved (https, or http to loopback only), and named in logs by its
type and host alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError

from service.config.fields import StrictModel, is_loopback
from service.config.problems import Problem
from service.config.references import SecretReference


class NotifyEvent(StrEnum):
    """What a webhook may be told: one message per target and kind per pass at most."""

    ROTATED = "rotated"
    FAILED = "failed"
    CONSUMER_LAGGING = "consumer_lagging"  # retire_on usage: an old secret is kept, the consumer shows no switch
    EVIDENCE_UNAVAILABLE = "evidence_unavailable"  # retire_on usage: the sign-in report gave no evidence


class NotifyConfig(StrictModel):
    """One incoming webhook of a Teams channel or a Slack channel, and what it is told."""

    type: Literal["teams", "slack"] = Field(
        description='teams: a Teams incoming webhook (a Workflows "When a Teams webhook request is received" '
        "flow, or the older connector), sent an Adaptive Card. slack: a Slack incoming webhook, sent text.",
        examples=["teams"],
    )
    url: SecretReference = Field(
        description="The webhook's URL, as a secret reference (anyone who has it can post to the channel). It "
        "must be https (http only to loopback); it is named in logs by its host alone.",
        examples=[{"env": "TEAMS_WEBHOOK_URL"}],
    )
    events: list[NotifyEvent] = Field(
        default_factory=lambda: list(NotifyEvent),
        json_schema_extra={"default": ["rotated", "failed", "consumer_lagging", "evidence_unavailable"]},
        description="What to tell: rotated (a new secret reached every sink), failed (a target's pass failed, "
        "with the reason and what to do), consumer_lagging and evidence_unavailable (retire_on: usage: an old "
        "secret is kept because the sign-in report shows no switch / the report gave no evidence, so the grace "
        "period decides). Never a secret, nor its first characters.",
        examples=[["failed"]],
    )


def webhook_url_problem(url: str) -> str | None:
    """Why a resolved webhook URL may not be posted to, or None; never quoting it."""
    parts = urlsplit(url.strip())
    if not parts.netloc or parts.scheme not in ("https", "http"):
        return "is not an absolute https URL: copy the webhook's URL as Teams or Slack gives it"
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return "is plain http: a webhook URL is a secret, use the https URL"
    if parts.username or parts.password:
        return "carries credentials before its host: use the URL as Teams or Slack gives it"
    return None


def notify_problems(data: Mapping[str, Any], environ: Mapping[str, str]) -> Iterator[Problem]:
    """Each `notify[i].url` that does not resolve, or resolves to a URL that may not be posted to."""
    raw = data.get("notify")
    for i, item in enumerate(raw if isinstance(raw, list) else []):
        try:
            hook = NotifyConfig.model_validate(item)
        except ValidationError:
            continue  # its own keys say what is wrong
        unresolved = hook.url.problem(environ)
        if unresolved:
            yield Problem(("notify", i, "url"), f"notify[{i}].url: {unresolved}")
            continue
        wrong = webhook_url_problem(hook.url.resolve(environ).reveal())
        if wrong:
            yield Problem(("notify", i, "url"), f"notify[{i}].url: the URL in {hook.url.describe()} {wrong}")
