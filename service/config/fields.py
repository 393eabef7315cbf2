"""The value types the config's parts share: durations, GUIDs, https URLs, and the strict base model."""

from __future__ import annotations

import functools
import ipaddress
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from service.durations import format_duration, parse_duration

GUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str) and value.strip().startswith("-"):
        return -parse_duration(value.strip()[1:])  # refused by the bound the key sets, which says so
    return parse_duration(value)


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be positive: write it like 90d, 12h or 30m")
    return value


def _not_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("must not be negative: write it like 5m, or 0s for none")
    return value


_DURATION_SCHEMA = Field(json_schema_extra={"type": "string"})  # each key gives its own examples
_AS_TEXT = PlainSerializer(format_duration, return_type=str, when_used="json")

Duration = Annotated[timedelta, BeforeValidator(_duration), AfterValidator(_positive), _AS_TEXT, _DURATION_SCHEMA]
"""A positive duration: ``90d``, ``12h``, ``30m``, ``45s`` or ISO 8601 (``P90D``); zero or less is refused."""
DurationOrZero = Annotated[
    timedelta, BeforeValidator(_duration), AfterValidator(_not_negative), _AS_TEXT, _DURATION_SCHEMA
]
"""A duration that may be zero (``0s`` turns the thing it sets off)."""


class StrictModel(BaseModel):
    """A part of the config file: unknown keys are errors, and a parsed config never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@functools.lru_cache(maxsize=1024)  # a fleet's config names the same few hosts thousands of times
def is_loopback(host: str | None) -> bool:
    """Whether ``host`` is this machine (127.0.0.0/8, ::1, localhost): where plain http may go."""
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address((host or "").strip("[]")).is_loopback
    except ValueError:
        return False


def https_url(value: Any, *, allow_loopback_http: bool, query_instead: str) -> str:
    """``value`` as an absolute https URL without credentials, query or fragment; ValueError saying why not."""
    if not isinstance(value, str):
        raise ValueError("must be a URL like https://host/path")
    return _https_url(value, allow_loopback_http, query_instead)


@functools.lru_cache(maxsize=4096)  # the same vault and push URLs, thousands of times in a fleet's config
def _https_url(value: str, allow_loopback_http: bool, query_instead: str) -> str:
    parts = urlsplit(value)
    if not parts.netloc or parts.scheme not in ("https", "http"):
        raise ValueError("must be an absolute URL like https://host/path")
    if parts.scheme == "http" and not (allow_loopback_http and is_loopback(parts.hostname)):
        raise ValueError("plain http is refused (the secret would cross the network in clear): use https")
    if parts.username or parts.password:
        raise ValueError("credentials in a URL are refused: use the sink's api_key or secret_headers")
    # Never echoed: a query often is a key (an Azure Functions `?code=`). A URL names its sink in ids,
    # receipts, logs and `status`, so it must hold nothing secret.
    if "?" in value or "#" in value:
        raise ValueError(f"a query string or fragment is refused here (it would show in ids and logs): {query_instead}")
    return value.rstrip("/")


HttpsUrl = Annotated[
    str,
    BeforeValidator(
        lambda v: https_url(v, allow_loopback_http=False, query_instead="give the plain https://host/path")
    ),
]
PushUrl = Annotated[
    str,
    BeforeValidator(
        lambda v: https_url(
            v,
            allow_loopback_http=True,
            query_instead="give each parameter in the sink's `query:` as a reference, e.g. query: {code: {env: NAME}}",
        )
    ),
]
