"""The config file's top-level model: the cloud, the rotator's identity, policy defaults, the daemon's
schedule, the state store and the targets with their sinks; and its JSON schema."""

from __future__ import annotations

import functools
import operator
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, GetCoreSchemaHandler, model_validator
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import CoreSchema

from service.config.clouds import Cloud, IdentityConfig
from service.config.fields import GUID, DurationOrZero, StrictModel
from service.config.notify import NotifyConfig
from service.config.policy import PolicyOverrides, merge_policy
from service.durations import format_duration
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


def repeated(values: Iterable[str]) -> list[str]:
    """The values that occur more than once, sorted (one pass: a fleet's config has thousands)."""
    return sorted(value for value, count in Counter(values).items() if count > 1)


# A mapping whose keys all have defaults: the schema's default says "every key at its default".
_ALL_DEFAULTS: dict[str, Any] = {"default": {}}
_GUID_EXAMPLE = "00000000-0000-0000-0000-000000000000"


class Target(PolicyOverrides):
    """One app registration whose secret is rotated, and the sinks its secret goes to. Every policy key of
    `defaults` may be given here too, for this target alone. Names and sinks are unique (loading checks
    them with the rest: service.config.checks)."""

    name: str = Field(
        pattern=r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$",
        description="The target's name in logs, metrics, receipts and `--target`: lowercase letters, digits, "
        "'.', '_' and '-' (at most 63), unique in the file.",
        examples=["dime-exchange"],
    )
    tenant_id: str = Field(
        pattern=GUID,
        description="The Directory (tenant) ID of the app whose secret is rotated (the app's Overview page).",
        examples=[_GUID_EXAMPLE],
    )
    client_id: str = Field(
        pattern=GUID,
        description="The Application (client) ID, or appId, of the app whose secret is rotated.",
        examples=["11111111-1111-1111-1111-111111111111"],
    )
    credential: IdentityConfig | None = Field(
        default=None,
        description="The rotator's own identity for this target, instead of the top-level credential: a "
        "rotator serving tenants where it has separate identities. Default: the top-level credential.",
        examples=[
            {
                "type": "client_secret",
                "tenant_id": _GUID_EXAMPLE,
                "client_id": "22222222-2222-2222-2222-222222222222",
                "client_secret": {"env": "ROTATOR_CLIENT_SECRET"},
            }
        ],
    )
    sinks: list[SinkConfig] = Field(
        min_length=1,
        description="Where each new secret goes: a Key Vault secret (`keyvault`) and/or an HTTPS push "
        "(`dimescheduler`, `webhook`). At least one, each at most once.",
        examples=[
            [
                {
                    "type": "keyvault",
                    "vault_url": "https://my-vault.vault.azure.net",
                    "secret_name": "dime-exchange-client-secret",
                }
            ]
        ],
    )


class StateConfig(StrictModel):
    """Where push receipts and intents are kept: what a push sink was last given cannot be read back."""

    backend: Literal["file", "kubernetes"] = Field(
        default="file",
        description="`file`: a folder on a persistent volume. `kubernetes`: a ConfigMap, for pods without a "
        "volume (deploy/components/kubernetes-state ships it and the Role it needs).",
        examples=["kubernetes"],
    )
    path: Path = Field(
        default=Path("/var/lib/secret-rotator"),
        description="For backend file: the folder of receipts and intents. It must be writable and outlive the "
        "process (a volume): lost receipts cost a rotation.",
        examples=["/var/lib/secret-rotator"],
    )
    namespace: str | None = Field(
        default=None,
        description="For backend kubernetes: the ConfigMap's namespace. Default: the pod's own namespace.",
        examples=["secret-rotator"],
    )
    name: str = Field(
        default="secret-rotator-state",
        pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$",
        description="For backend kubernetes: the ConfigMap's name. It must exist; the rotator needs get and "
        "update on it.",
        examples=["secret-rotator-state"],
    )
    shards: int = Field(
        default=1,
        ge=1,
        le=MAX_SHARDS,
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
            raise ValueError(
                f"name: with {self.shards} shards the ConfigMap names reach {longest} characters, "
                f"more than Kubernetes' {_MAX_CONFIGMAP_NAME}: shorten the name"
            )
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
    """The config file: the cloud, the rotator's identity, policy defaults, the daemon's schedule, the state
    store and the targets."""

    cloud: Cloud = Field(
        default_factory=Cloud,
        json_schema_extra=_ALL_DEFAULTS,
        description="The Azure cloud whose Entra ID, Microsoft Graph and Key Vault the rotator calls. Default: "
        "the public cloud.",
        examples=[{"name": "usgov"}],
    )
    credential: IdentityConfig = Field(
        default_factory=IdentityConfig,
        json_schema_extra=_ALL_DEFAULTS,
        description="Who the rotator itself is when it calls Graph and Key Vault (not the app it rotates). "
        "Default: DefaultAzureCredential.",
        examples=[{"type": "workload_identity"}],
    )
    defaults: PolicyOverrides = Field(
        default_factory=PolicyOverrides,
        json_schema_extra=_ALL_DEFAULTS,
        description="The rotation policy of every target; a target may override each key. Default: every key "
        "at its built-in value.",
        examples=[{"lifetime": "90d", "renew_before": "30d", "grace_period": "1d"}],
    )
    schedule: Annotated[str, BeforeValidator(_cron)] = Field(
        default="0 */6 * * *",
        description="When the daemon runs a pass: a cron expression with 5 fields, in UTC. `run` ignores it "
        "(a CronJob has a schedule of its own).",
        examples=["0 */6 * * *"],
    )
    schedule_jitter: DurationOrZero = Field(
        default=timedelta(minutes=5),
        description="The daemon starts each scheduled pass up to this much later, at random, so that many "
        "rotators do not call Graph in the same second (a pass moved to a maintenance window's opening: up to "
        "this much or a minute, whichever is less); 0s turns it off.",
        examples=["5m"],
    )
    concurrency_per_tenant: int = Field(
        default=4,
        ge=1,
        le=64,
        description="How many targets of one tenant a pass works on at once (1-64); targets in different "
        "tenants go side by side regardless.",
        examples=[4],
    )
    state: StateConfig = Field(
        default_factory=StateConfig,
        json_schema_extra=_ALL_DEFAULTS,
        description="Where the push sinks' receipts are kept: what Dime.Scheduler was last given, which it "
        "cannot be asked. Default: files in /var/lib/secret-rotator.",
        examples=[{"backend": "kubernetes", "name": "secret-rotator-state"}],
    )
    notify: list[NotifyConfig] = Field(
        default_factory=list,
        json_schema_extra={"default": []},
        description="Teams or Slack incoming webhooks told when a rotation is done or has failed (`run` and "
        "`daemon`): at most one message per target and kind per pass, never a secret. A webhook that cannot be "
        "reached is logged (notify.failed) and never fails the pass. Default: none.",
        examples=[[{"type": "teams", "url": {"env": "TEAMS_WEBHOOK_URL"}}]],
    )
    targets: list[Target] = Field(
        min_length=1,
        description="The app registrations whose client secret is rotated, each with its sinks. At least one.",
        examples=[
            [
                {
                    "name": "dime-exchange",
                    "tenant_id": _GUID_EXAMPLE,
                    "client_id": "11111111-1111-1111-1111-111111111111",
                    "sinks": [
                        {
                            "type": "dimescheduler",
                            "url": "https://dimescheduler.example.com/api/exchange",
                            "api_key": {"env": "DIMESCHEDULER_API_KEY"},
                        }
                    ],
                }
            ]
        ],
    )

    def policy(self, target: Target) -> Policy:
        """The target's policy: ``defaults`` with the target's own keys over them."""
        return merge_policy(self.defaults, target)

    def identity(self, target: Target) -> IdentityConfig:
        """Who the rotator is for ``target``: its own ``credential:``, else the config's."""
        return target.credential or self.credential

    def target(self, name: str) -> Target:
        """The target named ``name``; ConfigError (naming the known ones) when there is none."""
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


class _Schema(GenerateJsonSchema):
    """Durations' defaults as the file writes them (``5m``, not ``PT5M``); examples in the order written."""

    def encode_default(self, dft: Any) -> Any:
        return format_duration(dft) if isinstance(dft, timedelta) else super().encode_default(dft)

    def sort(self, value: JsonSchemaValue, parent_key: str | None = None) -> JsonSchemaValue:
        sorted_value: JsonSchemaValue = _sorted(value, parent_key)
        return sorted_value


def _sorted(value: Any, parent_key: str | None) -> Any:
    """pydantic's order (keys sorted, but properties and defaults as declared), and examples as written."""
    if parent_key == "examples":
        return value
    if isinstance(value, dict):
        keys = list(value) if parent_key in ("properties", "default") else sorted(value)
        return {key: _sorted(value[key], key) for key in keys}
    if isinstance(value, list):
        return [_sorted(item, parent_key) for item in value]
    return value


def json_schema() -> dict[str, Any]:
    """The JSON schema of the config file (`secret-rotator config schema`, config/schema.json)."""
    schema = Config.model_json_schema(mode="validation", schema_generator=_Schema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "secret-rotator configuration"
    return schema
