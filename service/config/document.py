"""The config file's top-level model: the cloud, the rotator's identity, policy defaults, the daemon's
schedule, the state store and the targets with their sinks; and its JSON schema."""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, GetCoreSchemaHandler, field_validator, model_validator
from pydantic_core import CoreSchema

from service.config.clouds import Cloud, IdentityConfig
from service.config.fields import GUID, Duration, StrictModel
from service.config.policy import PolicyOverrides, merge_policy
from service.errors import ConfigError
from service.model import Policy
from service.schedule import check_crontab
from service.shards import MAX_SHARDS
from service.sinks.registry import SinkSettings, on_change, sink_types

# --- sinks ---------------------------------------------------------------------------------------


class _EverySinkType:
    """The sinks' keys: a union of every registered sink type, told apart by ``type``.

    Read when the model is built, and again when a sink type is registered later (``_rebuild``).
    """

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        union = functools.reduce(operator.or_, sink_types())
        return handler.generate_schema(Annotated[union, Field(discriminator="type")])


SinkConfig = Annotated[SinkSettings, _EverySinkType()]


_MAX_CONFIGMAP_NAME = 253

# --- targets and the file ------------------------------------------------------------------------


def _repeated(values: Iterable[str]) -> list[str]:
    """The values that occur more than once, sorted (one pass: a fleet's config has thousands)."""
    seen: set[str] = set()
    repeated: set[str] = set()
    for value in values:
        (repeated if value in seen else seen).add(value)
    return sorted(repeated)


class Target(PolicyOverrides):
    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")
    tenant_id: str = Field(pattern=GUID)
    client_id: str = Field(pattern=GUID)
    credential: IdentityConfig | None = None
    sinks: list[SinkConfig] = Field(min_length=1)

    @field_validator("sinks")
    @classmethod
    def _unique_sinks(cls, value: list[SinkConfig]) -> list[SinkConfig]:
        duplicated = _repeated(s.sink_id() for s in value)
        if duplicated:
            raise ValueError(f"the same sink is listed twice: {', '.join(duplicated)}")
        return value


class StateConfig(StrictModel):
    backend: Literal["file", "kubernetes"] = "file"
    path: Path = Path("/var/lib/secret-rotator")
    namespace: str | None = None
    name: str = Field(default="secret-rotator-state", pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
    shards: int = Field(
        default=1, ge=1, le=MAX_SHARDS,
        description="One store per shard of the tenants, for a fleet spread over the pods of an Indexed Job "
        "(`run --shards N`, the same N): the directory <path>/shard-I-of-N or the ConfigMap <name>-I-of-N. A "
        "tenant's shard is sha256(tenant id) mod N; every command finds a target's store by it. Changing it "
        "moves tenants to new, empty stores (see README: fleets larger than one pod).",
        examples=[1, 8],
    )

    @model_validator(mode="after")
    def _shard_names_fit(self) -> StateConfig:
        longest = len(f"{self.name}-{self.shards - 1}-of-{self.shards}")
        if self.backend == "kubernetes" and self.shards > 1 and longest > _MAX_CONFIGMAP_NAME:
            raise ValueError(f"name: with {self.shards} shards the ConfigMap names reach {longest} characters, "
                             f"more than Kubernetes' {_MAX_CONFIGMAP_NAME}: shorten the name")
        return self


def _cron(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a cron expression in quotes, e.g. '0 */6 * * *'")
    try:
        check_crontab(value)  # the daemon's own reading of it, so both agree
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


def _rebuild() -> None:
    # A sink type registered after these models were built: the union of sink keys must include it.
    Target.model_rebuild(force=True)
    Config.model_rebuild(force=True)


on_change(_rebuild)


def json_schema() -> dict[str, Any]:
    """The JSON schema of the config file (`secret-rotator config schema`, config/schema.json)."""
    schema = Config.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "secret-rotator configuration"
    return schema
