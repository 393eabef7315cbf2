"""The config file's top-level model: the cloud, the rotator's identity, policy defaults, the daemon's
schedule, the state store and the targets with their sinks; and its JSON schema."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from service.config.clouds import Cloud, IdentityConfig
from service.config.fields import GUID, Duration, HttpsUrl, PushUrl, StrictModel, is_loopback
from service.config.policy import PolicyOverrides, merge_policy
from service.config.references import SecretRef, SecretReference
from service.errors import ConfigError
from service.model import Policy

# --- sinks ---------------------------------------------------------------------------------------

PUSH_FIELDS = ("tenantId", "clientId", "clientSecret", "expiresOn")
StaticValue = str | int | float | bool


class KeyVaultSink(StrictModel):
    type: Literal["keyvault"]
    vault_url: HttpsUrl
    secret_name: str = Field(pattern=r"^[0-9a-zA-Z-]{1,127}$")
    verify_challenge_resource: bool = True

    @field_validator("verify_challenge_resource")
    @classmethod
    def _only_an_emulator_skips_the_check(cls, value: bool, info: ValidationInfo) -> bool:
        vault_url = info.data.get("vault_url")
        if not value and isinstance(vault_url, str) and not is_loopback(urlsplit(vault_url).hostname):
            # Unchecked, any host that answers for vault_url could name its own token audience.
            raise ValueError(
                "false is only for an emulator on loopback (127.0.0.1, ::1, localhost); a real vault's "
                "challenge is always verified: remove the key"
            )
        return value


class _PushSink(StrictModel):
    url: PushUrl
    # Query parameters added when pushing, each a secret reference (an Azure Functions `code`); kept out
    # of the URL, which names the sink in ids, receipts, logs and `status`.
    query: dict[str, SecretReference] = Field(default_factory=dict)
    fields: dict[str, str] = Field(default_factory=dict)
    static: dict[str, StaticValue] = Field(default_factory=dict)
    timeout: Duration = timedelta(minutes=2)

    @field_validator("query")
    @classmethod
    def _query_names(cls, value: dict[str, SecretRef]) -> dict[str, SecretRef]:
        if any(not re.fullmatch(r"[A-Za-z0-9_.~-]{1,64}", name) for name in value):
            raise ValueError("a query parameter's name has 1-64 letters, digits and '_', '.', '~', '-'")
        return value

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(PUSH_FIELDS))
        if unknown:
            raise ValueError(f"can rename only {', '.join(PUSH_FIELDS)}; not {', '.join(unknown)}")
        return value

    @model_validator(mode="after")
    def _static_does_not_shadow(self) -> _PushSink:
        names = {self.fields.get(f, f) for f in PUSH_FIELDS}
        clash = sorted(names & set(self.static))
        if clash:
            raise ValueError(f"static fields {', '.join(clash)} would overwrite the pushed values: rename them")
        return self


class DimeSchedulerSink(_PushSink):
    """Dime.Scheduler's configuration endpoint: the push contract with the X-API-KEY header."""

    type: Literal["dimescheduler"]
    api_key: SecretReference


# Header names that carry credentials: their values must be references (secret_headers), never inline.
_CREDENTIAL_WORDS = re.compile(r"auth|token|secret|passw|cookie|credential|signature|session|api-?key|jwt|bearer", re.I)
_CREDENTIAL_PARTS = frozenset({"key", "sig", "pwd", "pass", "code"})
_OWN_HEADERS = frozenset({"idempotency-key"})  # the credential's keyId, set by the sink


def credential_header(name: str) -> bool:
    """Whether a header named so carries a credential (Authorization, X-API-Key, *Token*, Cookie, ...)."""
    parts = set(re.split(r"[-_.\s]+", name.lower()))
    return bool(_CREDENTIAL_WORDS.search(name)) or bool(parts & _CREDENTIAL_PARTS)


class WebhookSink(_PushSink):
    """Any HTTPS endpoint taking the same JSON body; authentication through headers."""

    type: Literal["webhook"]
    headers: dict[str, str] = Field(default_factory=dict)
    secret_headers: dict[str, SecretReference] = Field(default_factory=dict)

    @field_validator("headers")
    @classmethod
    def _no_inline_credentials(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name.lower() in _OWN_HEADERS:
                raise ValueError(f"{name} is set by the sink itself: remove it")
            if credential_header(name):
                # The name, never the value: the value is probably the credential itself.
                raise ValueError(
                    f"{name} carries a credential: an inline value is refused; move it to "
                    f"secret_headers: {{{name}: {{env: NAME}}}} (or {{file: PATH}})"
                )
        return value


SinkConfig = Annotated[KeyVaultSink | DimeSchedulerSink | WebhookSink, Field(discriminator="type")]


def sink_id(sink: SinkConfig) -> str:
    """The sink's stable id within a target: what receipts and logs call it."""
    if isinstance(sink, KeyVaultSink):
        return f"keyvault:{sink.vault_url}/{sink.secret_name}"
    return f"{sink.type}:{sink.url}"


# --- targets and the file ------------------------------------------------------------------------


def _repeated(values: Iterable[str]) -> list[str]:
    """The values that occur more than once, sorted (one pass: a fleet's config has thousands)."""
    return sorted(value for value, count in Counter(values).items() if count > 1)


class Target(PolicyOverrides):
    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")
    tenant_id: str = Field(pattern=GUID)
    client_id: str = Field(pattern=GUID)
    credential: IdentityConfig | None = None
    sinks: list[SinkConfig] = Field(min_length=1)

    @field_validator("sinks")
    @classmethod
    def _unique_sinks(cls, value: list[SinkConfig]) -> list[SinkConfig]:
        duplicated = _repeated(sink_id(s) for s in value)
        if duplicated:
            raise ValueError(f"the same sink is listed twice: {', '.join(duplicated)}")
        return value


class StateConfig(StrictModel):
    backend: Literal["file", "kubernetes"] = "file"
    path: Path = Path("/var/lib/secret-rotator")
    namespace: str | None = None
    name: str = Field(default="secret-rotator-state", pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def _cron(value: Any) -> str:
    from service.schedule import cron_trigger  # the daemon's own reading of it, so both agree

    if not isinstance(value, str):
        raise ValueError("must be a cron expression in quotes, e.g. '0 */6 * * *'")
    try:
        cron_trigger(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a cron expression with 5 fields ({exc}); e.g. '0 */6 * * *'") from None
    return value


class Config(StrictModel):
    cloud: Cloud = Field(default_factory=Cloud)
    credential: IdentityConfig = Field(default_factory=IdentityConfig)
    defaults: PolicyOverrides = Field(default_factory=PolicyOverrides)
    schedule: Annotated[str, BeforeValidator(_cron)] = "0 */6 * * *"
    schedule_jitter: Duration = timedelta(minutes=5)
    concurrency_per_tenant: int = Field(default=4, ge=1, le=64)
    state: StateConfig = Field(default_factory=StateConfig)
    targets: list[Target] = Field(min_length=1)

    @field_validator("targets")
    @classmethod
    def _unique_names(cls, value: list[Target]) -> list[Target]:
        duplicated = _repeated(t.name for t in value)
        if duplicated:
            raise ValueError(f"target names must be unique: {', '.join(duplicated)} appears twice")
        return value

    def policy(self, target: Target) -> Policy:
        return merge_policy(self.defaults, target)

    def identity(self, target: Target) -> IdentityConfig:
        return target.credential or self.credential

    def target(self, name: str) -> Target:
        for target in self.targets:
            if target.name == name:
                return target
        known = ", ".join(t.name for t in self.targets)
        raise ConfigError(f"--target {name}: no such target in the config (known: {known})")


def json_schema() -> dict[str, Any]:
    """The JSON schema of the config file (`secret-rotator config schema`, config/schema.json)."""
    schema = Config.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "secret-rotator configuration"
    return schema
