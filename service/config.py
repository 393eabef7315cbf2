"""The configuration file (YAML), validated before any network call.

Unknown keys are errors; secrets are references (``{env: NAME}`` or ``{file: PATH}``), never values;
every problem is reported with its key path and a fix, and never with the value that was found.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from service.durations import format_duration, parse_duration
from service.errors import ConfigError
from service.local_files import KIB, MIB, FileProblem, read_ca_bundle, read_limited, size_text
from service.model import Policy
from service.secret import Secret

GUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
CONFIG_ENV = "SECRET_ROTATOR_CONFIG"
# A 10,000-target config is about 4 MB; anything far beyond is not a config someone wrote.
MAX_CONFIG_BYTES = 16 * MIB
# An API key or client secret is at most a few hundred bytes.
MAX_SECRET_FILE_BYTES = 64 * KIB


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return parse_duration(value)


Duration = Annotated[
    timedelta,
    BeforeValidator(_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    Field(json_schema_extra={"type": "string", "examples": ["90d", "12h", "PT30M"]}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- secret references ---------------------------------------------------------------------------


def _no_inline_secret(value: Any) -> Any:
    if isinstance(value, str | int | float):
        # Never echo `value`: it is probably the secret itself.
        raise ValueError("an inline secret is refused: write {env: NAME} or {file: PATH} instead")
    return value


class SecretRef(_Strict):
    """Where a secret comes from: an environment variable or a file (a mounted Kubernetes Secret)."""

    env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    file: Path | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of {env: NAME} or {file: PATH}")
        return self

    def describe(self) -> str:
        return f"environment variable {self.env}" if self.env else f"file {self.file}"

    def problem(self, environ: Mapping[str, str]) -> str | None:
        """Why this reference cannot be resolved now, or None."""
        if self.env is not None:
            if not environ.get(self.env):
                return f"environment variable {self.env} is not set: set it, or use {{file: PATH}}"
            return None
        try:
            self._file_text()
        except ValueError as exc:
            return str(exc)
        return None

    def _file_text(self) -> str:
        """The secret file's text, stripped; ValueError saying what is wrong (never quoting the file)."""
        assert self.file is not None
        try:
            # Only a regular file: a secret is read at every check and pass, which a pipe would give once,
            # and a device (/dev/zero, /dev/urandom) is never a secret.
            raw = read_limited(self.file, MAX_SECRET_FILE_BYTES)
        except FileProblem as exc:
            raise ValueError(f"file {self.file} cannot be used: {exc}: point it at the secret's file "
                             "(e.g. a mounted Kubernetes Secret)") from None
        except OSError as exc:
            raise ValueError(f"file {self.file} cannot be read ({exc.strerror or exc}): mount or create it") from None
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ValueError(f"file {self.file} is not UTF-8 text: write the secret into it as text") from None
        if not text:
            raise ValueError(f"file {self.file} is empty: write the secret into it")
        return text

    def resolve(self, environ: Mapping[str, str] | None = None) -> Secret:
        """The secret; ConfigError saying why not."""
        environ = os.environ if environ is None else environ
        if self.env is not None:
            problem = self.problem(environ)
            if problem:
                raise ConfigError(problem)
            return Secret(environ[self.env])
        try:
            return Secret(self._file_text())
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


SecretReference = Annotated[SecretRef, BeforeValidator(_no_inline_secret)]


# --- URLs ----------------------------------------------------------------------------------------


def is_loopback(host: str | None) -> bool:
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address((host or "").strip("[]")).is_loopback
    except ValueError:
        return False


def _https_url(value: Any, *, allow_loopback_http: bool, query_instead: str) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a URL like https://host/path")
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
        lambda v: _https_url(v, allow_loopback_http=False, query_instead="give the plain https://host/path")
    ),
]
PushUrl = Annotated[
    str,
    BeforeValidator(
        lambda v: _https_url(
            v, allow_loopback_http=True,
            query_instead="give each parameter in the sink's `query:` as a reference, e.g. query: {code: {env: NAME}}",
        )
    ),
]


# --- cloud and identity --------------------------------------------------------------------------

CLOUDS: dict[str, dict[str, str]] = {
    "public": {
        "authority_host": "https://login.microsoftonline.com",
        "graph_url": "https://graph.microsoft.com/v1.0",
        "graph_scope": "https://graph.microsoft.com/.default",
    },
    "usgov": {
        "authority_host": "https://login.microsoftonline.us",
        "graph_url": "https://graph.microsoft.us/v1.0",
        "graph_scope": "https://graph.microsoft.us/.default",
    },
    "china": {
        "authority_host": "https://login.chinacloudapi.cn",
        "graph_url": "https://microsoftgraph.chinacloudapi.cn/v1.0",
        "graph_scope": "https://microsoftgraph.chinacloudapi.cn/.default",
    },
}


class Cloud(_Strict):
    """The Azure cloud's endpoints; a named cloud fills in what is not given explicitly."""

    name: Literal["public", "usgov", "china"] = "public"
    authority_host: HttpsUrl | None = None
    graph_url: HttpsUrl | None = None
    graph_scope: str | None = None
    ca_bundle: Path | None = None

    @model_validator(mode="after")
    def _fill_from_name(self) -> Cloud:
        preset = CLOUDS[self.name]
        for key, value in preset.items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)
        return self

    def endpoints(self) -> Endpoints:
        # All three are filled in by _fill_from_name.
        assert self.authority_host is not None
        assert self.graph_url is not None
        assert self.graph_scope is not None
        return Endpoints(self.authority_host, self.graph_url, self.graph_scope, self.ca_bundle)


@dataclass(frozen=True)
class Endpoints:
    """A cloud's endpoints once resolved: what the adapters are built from."""

    authority_host: str
    graph_url: str
    graph_scope: str
    ca_bundle: Path | None = None

    @property
    def known_authority(self) -> bool:
        """An Azure cloud MSAL knows; any other authority host needs instance discovery disabled."""
        return any(self.authority_host == preset["authority_host"] for preset in CLOUDS.values())


class IdentityConfig(_Strict):
    """Who the rotator is when it calls Graph and Key Vault."""

    type: Literal["default", "workload_identity", "managed_identity", "client_secret"] = "default"
    tenant_id: str | None = Field(default=None, pattern=GUID)
    client_id: str | None = Field(default=None, pattern=GUID)
    client_secret: SecretReference | None = None
    token_file: Path | None = None

    @model_validator(mode="after")
    def _fields_fit_type(self) -> IdentityConfig:
        if self.type == "client_secret":
            missing = [k for k in ("client_id", "client_secret") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"type client_secret needs {' and '.join(missing)}")
        elif self.client_secret is not None:
            raise ValueError(f"client_secret is only used with type client_secret, not {self.type}")
        if self.token_file is not None and self.type != "workload_identity":
            raise ValueError("token_file is only used with type workload_identity")
        return self


# --- policy --------------------------------------------------------------------------------------


class PolicyOverrides(_Strict):
    """Policy keys; in `defaults` and, to override them, on a target."""

    lifetime: Duration | None = None
    renew_before: Duration | None = None
    renew_before_ratio: float | None = Field(default=None, gt=0, lt=1)
    grace_period: Duration | None = None
    verify_timeout: Duration | None = None
    in_flight_timeout: Duration | None = None
    max_credentials: int | None = Field(default=None, ge=2, le=100)
    retire_unmanaged: bool | None = None
    marker: str | None = Field(default=None, min_length=3, max_length=60)

    @model_validator(mode="after")
    def _one_renewal_rule(self) -> PolicyOverrides:
        if self.renew_before is not None and self.renew_before_ratio is not None:
            raise ValueError("give renew_before or renew_before_ratio, not both")
        return self


def merge_policy(*layers: PolicyOverrides) -> Policy:
    """The effective policy: built-in defaults, then each layer's keys that are set."""
    values: dict[str, Any] = {}
    for layer in layers:
        given = {k: getattr(layer, k) for k in PolicyOverrides.model_fields if getattr(layer, k) is not None}
        # The two ways of saying when to renew replace each other: a target's ratio beats a default duration.
        if "renew_before_ratio" in given:
            values.pop("renew_before", None)
        if "renew_before" in given:
            values.pop("renew_before_ratio", None)
        values.update(given)
    return Policy(**values)


def policy_problems(policy: Policy) -> list[str]:
    problems = []
    if policy.lifetime < timedelta(minutes=2):
        problems.append("lifetime is shorter than 2m: no consumer could keep up; use days (90d)")
    if policy.renew_before is not None and policy.renew_before >= policy.lifetime:
        problems.append(
            f"renew_before ({format_duration(policy.renew_before)}) must be shorter than lifetime "
            f"({format_duration(policy.lifetime)}), else every pass would rotate"
        )
    if policy.grace_period >= policy.lifetime:
        problems.append("grace_period must be shorter than lifetime, else old secrets pile up to max_credentials")
    if policy.verify_timeout <= timedelta(0):
        problems.append("verify_timeout must be positive")
    return problems


# --- sinks ---------------------------------------------------------------------------------------

PUSH_FIELDS = ("tenantId", "clientId", "clientSecret", "expiresOn")
StaticValue = str | int | float | bool


class KeyVaultSink(_Strict):
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


class _PushSink(_Strict):
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


class StateConfig(_Strict):
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


class Config(_Strict):
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


# --- loading -------------------------------------------------------------------------------------


class ConfigProblems(ConfigError):
    """Every problem in a config file, each as ``key.path: what is wrong and how to fix it``."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  {p}" for p in problems))


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("keyvault", "dimescheduler", "webhook", "str", "int", "float", "bool"):
            continue  # a union's branch name, not a key: the path is clearer without it
        elif str(part).startswith(("function-", "lax-")):
            continue
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


_FIXES = {
    "extra_forbidden": "unknown key: remove it or check its spelling",
    "missing": "required: add it",
}


_PATTERN_FIXES = {
    "tenant_id": "must be a GUID: the Directory (tenant) ID from the app's Overview page in the Entra portal",
    "client_id": "must be a GUID: the Application (client) ID from the app's Overview page in the Entra portal",
    "name": "use lowercase letters, digits, '.', '_' and '-' (at most 63), e.g. dime-exchange",
    "secret_name": "a Key Vault secret name has 1-127 letters, digits and '-'",
    "env": "an environment variable name: letters, digits and '_', not starting with a digit",
}


def _inside_secret_reference(loc: tuple[int | str, ...]) -> int | None:
    """Where a secret reference's own keys begin in ``loc`` (the reference's path is ``loc[:n]``), or None."""
    for i, part in enumerate(loc):
        if part in ("api_key", "client_secret"):
            return i + 1
        if part == "secret_headers" and i + 1 < len(loc):
            return i + 2  # secret_headers.<header name>
    return None


_REFERENCE_FIX = "write {env: NAME} or {file: PATH}"


def problems_of(error: ValidationError) -> list[str]:
    """Each validation error as ``key.path: what is wrong and how to fix it``, never quoting a value.

    Under a secret reference nothing but ``env`` and ``file`` is named: a key there is as likely the
    secret itself (``api_key: {sk-live-...}`` is a one-key mapping in YAML) as a misspelling.
    """
    seen: dict[str, None] = {}
    for item in error.errors(include_input=False, include_url=False, include_context=False):
        loc = item["loc"]
        msg = _FIXES.get(item["type"]) or re.sub(r"^(Value|Assertion) error, ", "", item["msg"])
        if item["type"] == "string_pattern_mismatch":
            msg = _PATTERN_FIXES.get(str(loc[-1]), msg)
        reference = _inside_secret_reference(loc)
        if reference is not None and len(loc) == reference and item["type"] in ("model_type", "dict_type"):
            msg = f"must be a reference: {_REFERENCE_FIX}"
        elif reference is not None and len(loc) > reference and loc[reference] not in ("env", "file"):
            loc = loc[:reference]
            msg = f"a key other than env or file (not shown: it may be the secret itself): {_REFERENCE_FIX}"
        seen[f"{_key_path(loc)}: {msg}"] = None
    return list(seen)


def _references(config: Config) -> list[tuple[str, SecretRef]]:
    refs: list[tuple[str, SecretRef]] = []
    if config.credential.client_secret:
        refs.append(("credential.client_secret", config.credential.client_secret))
    for i, target in enumerate(config.targets):
        if target.credential and target.credential.client_secret:
            refs.append((f"targets[{i}].credential.client_secret", target.credential.client_secret))
        for j, sink in enumerate(target.sinks):
            if isinstance(sink, DimeSchedulerSink):
                refs.append((f"targets[{i}].sinks[{j}].api_key", sink.api_key))
            elif isinstance(sink, WebhookSink):
                refs.extend((f"targets[{i}].sinks[{j}].secret_headers.{h}", r) for h, r in sink.secret_headers.items())
            if not isinstance(sink, KeyVaultSink):
                refs.extend((f"targets[{i}].sinks[{j}].query.{q}", r) for q, r in sink.query.items())
    return refs


def semantic_problems(config: Config, environ: Mapping[str, str]) -> list[str]:
    """What pydantic cannot see: policies that contradict themselves, references that do not resolve."""
    problems = []
    for i, target in enumerate(config.targets):
        for problem in policy_problems(config.policy(target)):
            problems.append(f"targets[{i}] ({target.name}): {problem}")
    for path, ref in _references(config):
        unresolved = ref.problem(environ)
        if unresolved:
            problems.append(f"{path}: {unresolved}")
    bundle_problem = ca_bundle_problem(config.cloud.ca_bundle) if config.cloud.ca_bundle is not None else None
    if bundle_problem:
        problems.append(f"cloud.ca_bundle: {bundle_problem}")
    return problems


def ca_bundle_problem(path: Path) -> str | None:
    """Why ``path`` cannot serve as the CA bundle, or None."""
    try:
        read_ca_bundle(path)
    except FileProblem as exc:
        return f"{path} cannot be used: {exc}: give the PEM file of the CA"
    except OSError as exc:
        return f"{path} cannot be read ({exc.strerror or exc}): give the PEM file of the CA"
    return None


# libyaml's parser with the same safe constructors: a 10,000-target config parses in a fraction of the time.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_config(text: str, source: str = "config", environ: Mapping[str, str] | None = None) -> Config:
    """Validate a YAML document; raises ConfigProblems naming every problem."""
    try:
        data = yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader, libyaml's when installed
    except yaml.YAMLError as exc:
        # The YAML error's own text quotes the offending line, which may hold a pasted secret.
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigProblems(source, [f"{where}not valid YAML ({problem})"]) from None
    if not isinstance(data, dict):
        raise ConfigProblems(source, ["(top level): expected a mapping with at least `targets:`"])
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigProblems(source, problems_of(exc)) from None
    problems = semantic_problems(config, os.environ if environ is None else environ)
    if problems:
        raise ConfigProblems(source, problems)
    return config


def load_config(path: str | Path | None, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file named by ``path`` or ``$SECRET_ROTATOR_CONFIG``."""
    environ = os.environ if environ is None else environ
    name = path or environ.get(CONFIG_ENV)
    if not name:
        raise ConfigError(f"no config file: pass --config FILE or set {CONFIG_ENV}")
    return parse_config(read_config_text(name), source=str(name), environ=environ)


def read_config_text(name: str | Path) -> str:
    """The text of a config file; ConfigError saying why not (too large, not a file, not UTF-8)."""
    try:
        # A pipe is fine (`--config <(envsubst < config.yaml)`); devices, directories and sockets are not.
        raw = read_limited(name, MAX_CONFIG_BYTES, pipes=True)
    except FileProblem as exc:
        raise ConfigError(f"{name}: cannot use it as the config file: {exc} (a 10,000-target config is about "
                          f"{size_text(4 * MIB)})") from None
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read the config file ({exc.strerror or exc})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{name}: the config file is not UTF-8 text (a byte that is not UTF-8 at offset "
                          f"{exc.start}); save it as UTF-8") from None


def json_schema() -> dict[str, Any]:
    schema = Config.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "secret-rotator configuration"
    return schema
