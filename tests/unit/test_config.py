"""The configuration file: what is refused (with the key and the fix, never the value) and what is accepted."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from service.config.clouds import CLOUDS
from service.config.document import Config, json_schema
from service.config.loading import load_config, parse_config
from service.config.problems import ConfigProblems
from service.errors import ConfigError
from service.model import Credential, Policy
from service.policy import renewal_time
from service.sinks.dimescheduler import DimeSchedulerSink
from service.sinks.registry import sink_id

ENV = {"DIMESCHEDULER_API_KEY": "api-key-from-the-environment"}
DAY = timedelta(days=1)

# DESIGN.md's example, verbatim.
DESIGN_EXAMPLE = """\
cloud:                    # optional; public cloud by default; `name: usgov|china` switches all three
  authority_host: https://login.microsoftonline.com
  graph_url: https://graph.microsoft.com/v1.0
  graph_scope: https://graph.microsoft.com/.default
  ca_bundle: null         # extra CA file to trust (private CA, emulator)
credential:               # who the rotator itself is; default: DefaultAzureCredential
  type: default           # default | workload_identity | managed_identity | client_secret
                          # a target may override it (a rotator serving several tenants)
defaults:                 # policy, overridable per target; durations like 90d, 12h, 30m or ISO 8601
  lifetime: 90d
  renew_before: 30d
  grace_period: 1d
  verify_timeout: 5m
  in_flight_timeout: 15m
  max_credentials: 4
  retire_unmanaged: false
schedule: "0 */6 * * *"   # daemon only
state: {backend: file, path: /var/lib/secret-rotator}
targets:
  - name: dime-exchange
    tenant_id: 00000000-0000-0000-0000-000000000000
    client_id: 11111111-1111-1111-1111-111111111111   # appId of the app whose secret is rotated
    sinks:
      - type: keyvault
        vault_url: https://my-vault.vault.azure.net
        secret_name: dime-exchange-client-secret
        verify_challenge_resource: true               # false only for emulators
      - type: dimescheduler                           # an HTTP push, see below
        url: https://example.invalid/exchange-settings
        api_key: {env: DIMESCHEDULER_API_KEY}         # or {file: /path}; never inline
"""

TARGET = """\
targets:
  - name: dime-exchange
    tenant_id: 00000000-0000-0000-0000-000000000000
    client_id: 11111111-1111-1111-1111-111111111111
    sinks:
      - type: keyvault
        vault_url: https://my-vault.vault.azure.net
        secret_name: dime-exchange-client-secret
"""


def with_sink(sink: str) -> str:
    """The minimal target with a second sink, given as flow-style YAML."""
    return TARGET + f"      - {sink}\n"


def push(url: str = "https://example.invalid/exchange-settings", api_key: str = "{env: DIMESCHEDULER_API_KEY}") -> str:
    return with_sink(f"{{type: dimescheduler, url: '{url}', api_key: {api_key}}}")


def problems_of(text: str, environ: dict[str, str] | None = None) -> ConfigProblems:
    with pytest.raises(ConfigProblems) as info:
        parse_config(text, "test.yaml", ENV if environ is None else environ)
    return info.value


BROKEN = {
    "an unknown top-level key is refused": (TARGET + "colour: blue\n", "colour", "unknown key"),
    "an unknown key inside a sink is named with its full path": (
        TARGET + "        colour: blue\n",
        "targets[0].sinks[0].colour",
        "unknown key",
    ),
    "a misspelt policy key is refused": ("defaults: {lifetme: 90d}\n" + TARGET, "defaults.lifetme", "unknown key"),
    "a bare number as a duration is refused, it could mean days or seconds": (
        "defaults: {lifetime: 90}\n" + TARGET,
        "defaults.lifetime",
        "needs a unit",
    ),
    "a duration that is no duration is refused": (
        "defaults: {grace_period: one day}\n" + TARGET,
        "defaults.grace_period",
        "not a duration",
    ),
    "renew_before as long as lifetime is refused, every pass would rotate": (
        "defaults: {lifetime: 30d, renew_before: 30d}\n" + TARGET,
        "defaults: ",
        "renew_before (30d) must be shorter than lifetime (30d)",
    ),
    "renew_before longer than a target's own lifetime is refused": (
        "defaults: {renew_before: 30d}\n" + TARGET.replace("    sinks:", "    lifetime: 14d\n    sinks:"),
        "targets[0] (dime-exchange)",
        "must be shorter than lifetime",
    ),
    "a grace period as long as lifetime is refused": (
        "defaults: {lifetime: 1d, grace_period: 1d}\n" + TARGET,
        "defaults: ",
        "grace_period must be shorter than lifetime",
    ),
    "a lifetime shorter than two minutes is refused": (
        "defaults: {lifetime: 1m}\n" + TARGET,
        "defaults: ",
        "lifetime is shorter than 2m",
    ),
    "max_credentials below two is refused, no rotation could ever happen": (
        "defaults: {max_credentials: 1}\n" + TARGET,
        "defaults.max_credentials",
        "greater than or equal to 2",
    ),
    "an inline api_key is refused": (
        push(api_key="'an-inline-api-key-value'"),
        "targets[0].sinks[1].api_key",
        "inline secret is refused",
    ),
    "an api_key with both env and file is refused": (
        push(api_key="{env: A, file: /b}"),
        "targets[0].sinks[1].api_key",
        "exactly one of",
    ),
    "an api_key naming no variable and no file is refused": (
        push(api_key="{}"),
        "targets[0].sinks[1].api_key",
        "exactly one of",
    ),
    "an env reference that is no variable name is refused": (
        push(api_key="{env: 'not a name'}"),
        "targets[0].sinks[1].api_key.env",
        "environment variable name",
    ),
    "a push to plain http is refused": (
        push(url="http://example.invalid/exchange-settings"),
        "targets[0].sinks[1].url",
        "plain http is refused",
    ),
    "a Key Vault at plain http is refused, even on loopback": (
        TARGET.replace("https://my-vault.vault.azure.net", "http://127.0.0.1:8443"),
        "targets[0].sinks[0].vault_url",
        "plain http is refused",
    ),
    "an authority host at plain http is refused": (
        "cloud: {authority_host: 'http://login.example'}\n" + TARGET,
        "cloud.authority_host",
        "plain http is refused",
    ),
    "a URL that is not absolute is refused": (
        push(url="example.invalid/exchange-settings"),
        "targets[0].sinks[1].url",
        "absolute URL",
    ),
    "a URL with a password in it is refused": (
        push(url="https://user:pa55word@example.invalid/x"),
        "targets[0].sinks[1].url",
        "credentials in a URL are refused",
    ),
    "a tenant id that is no GUID is refused with where to find it": (
        TARGET.replace("00000000-0000-0000-0000-000000000000", "contoso.onmicrosoft.com"),
        "targets[0].tenant_id",
        "Directory (tenant) ID",
    ),
    "a client id that is no GUID is refused with where to find it": (
        TARGET.replace("11111111-1111-1111-1111-111111111111", "dime-exchange"),
        "targets[0].client_id",
        "Application (client) ID",
    ),
    "a target name with capitals and spaces is refused": (
        TARGET.replace("name: dime-exchange", "name: Dime Exchange"),
        "targets[0].name",
        "lowercase letters",
    ),
    "a missing tenant id is named": (
        TARGET.replace("    tenant_id: 00000000-0000-0000-0000-000000000000\n", ""),
        "targets[0].tenant_id",
        "required",
    ),
    "a target without sinks is refused": (
        TARGET.split("    sinks:")[0] + "    sinks: []\n",
        "targets[0].sinks",
        "at least 1",
    ),
    "a config without targets is refused": ("targets: []\n", "targets", "at least 1"),
    "two targets with the same name are refused": (
        TARGET + TARGET.removeprefix("targets:\n"),
        "targets",
        "target names must be unique: dime-exchange",
    ),
    "the same sink listed twice is refused": (
        with_sink(
            "{type: keyvault, vault_url: 'https://my-vault.vault.azure.net', secret_name: dime-exchange-client-secret}"
        ),
        "targets[0].sinks",
        "the same sink is listed twice",
    ),
    "an unknown sink type is refused with the known ones": (
        with_sink("{type: s3, bucket: secrets}"),
        "targets[0].sinks[1]",
        "'keyvault', 'dimescheduler', 'webhook'",
    ),
    "a Key Vault secret name Key Vault would refuse is refused": (
        TARGET.replace("secret_name: dime-exchange-client-secret", "secret_name: dime_exchange"),
        "targets[0].sinks[0].secret_name",
        "letters, digits and '-'",
    ),
    "a push field that does not exist cannot be renamed": (
        with_sink("{type: webhook, url: 'https://example.invalid/x', fields: {password: pw}}"),
        "targets[0].sinks[1].fields",
        "can rename only",
    ),
    "a static field that would overwrite the secret is refused": (
        with_sink("{type: webhook, url: 'https://example.invalid/x', static: {clientSecret: x}}"),
        "targets[0].sinks[1]",
        "would overwrite the pushed values",
    ),
    "an env reference to a variable that is not set is named": (
        push(api_key="{env: NOT_SET_ANYWHERE}"),
        "targets[0].sinks[1].api_key",
        "environment variable NOT_SET_ANYWHERE is not set",
    ),
    "a file reference to a file that cannot be read is named": (
        push(api_key="{file: /nonexistent/secret-rotator/api-key}"),
        "targets[0].sinks[1].api_key",
        "file /nonexistent/secret-rotator/api-key cannot be read",
    ),
    "a schedule that is no cron expression is refused": (
        "schedule: every six hours\n" + TARGET,
        "schedule",
        "not a cron expression with 5 fields",
    ),
    "a cron expression with an impossible hour is refused": (
        "schedule: '0 25 * * *'\n" + TARGET,
        "schedule",
        "not a cron expression",
    ),
    "an unknown cloud name is refused with the known ones": (
        "cloud: {name: mars}\n" + TARGET,
        "cloud.name",
        "'public', 'usgov' or 'china'",
    ),
    "a CA bundle that does not exist is named": (
        "cloud: {ca_bundle: /nonexistent/ca.pem}\n" + TARGET,
        "cloud.ca_bundle",
        "cannot be read (No such file or directory): give the PEM file of the CA",
    ),
    "invalid YAML names the line and column": (
        TARGET + "    lifetime: [90d\n",
        "line ",
        "not valid YAML",
    ),
    "a list at the top level is refused": ("- targets\n- sinks\n", "(top level)", "expected a mapping"),
    "an empty file is refused": ("", "(top level)", "expected a mapping"),
    "a client_secret identity without client_id is refused": (
        "credential: {type: client_secret, client_secret: {env: DIMESCHEDULER_API_KEY}}\n" + TARGET,
        "credential",
        "type client_secret needs client_id",
    ),
    "a client_secret identity without its secret is refused": (
        "credential: {type: client_secret, client_id: 11111111-1111-1111-1111-111111111111}\n" + TARGET,
        "credential",
        "needs client_secret",
    ),
    "a client secret for an identity of another type is refused": (
        "credential: {type: managed_identity, client_secret: {env: DIMESCHEDULER_API_KEY}}\n" + TARGET,
        "credential",
        "only used with type client_secret",
    ),
    "a token file outside workload identity is refused": (
        "credential: {type: default, token_file: /var/run/token}\n" + TARGET,
        "credential",
        "only used with type workload_identity",
    ),
    "a query string in a push URL is refused, it would show in ids, receipts and logs": (
        push(url="https://fn.example.invalid/api/hook?code=abc"),
        "targets[0].sinks[1].url",
        "query: {code: {env: NAME}}",
    ),
    "a fragment in a push URL is refused": (
        push(url="https://example.invalid/hook#part"),
        "targets[0].sinks[1].url",
        "query string or fragment",
    ),
    "a query string in a vault URL is refused": (
        TARGET.replace("vault.azure.net", "vault.azure.net?x=1"),
        "targets[0].sinks[0].vault_url",
        "give the plain https://host/path",
    ),
    "an inline query value is refused": (
        with_sink("{type: webhook, url: 'https://example.invalid/x', query: {code: abc}}"),
        "targets[0].sinks[1].query.code",
        "inline secret is refused",
    ),
    "a query reference that does not resolve is named": (
        with_sink("{type: webhook, url: 'https://example.invalid/x', query: {code: {env: FUNCTION_KEY}}}"),
        "targets[0].sinks[1].query.code",
        "FUNCTION_KEY is not set",
    ),
    "an inline Authorization header is refused": (
        with_sink("{type: webhook, url: 'https://example.invalid/x', headers: {Authorization: Basic abc}}"),
        "targets[0].sinks[1].headers",
        "Authorization carries a credential: an inline value is refused; move it to secret_headers",
    ),
    "an inline header named like a key is refused": (
        with_sink("{type: webhook, url: 'https://example.invalid/x', headers: {x-functions-key: abc}}"),
        "targets[0].sinks[1].headers",
        "x-functions-key carries a credential",
    ),
    "an inline token header is refused": (
        with_sink("{type: webhook, url: 'https://example.invalid/x', headers: {X-AuthToken: abc}}"),
        "targets[0].sinks[1].headers",
        "X-AuthToken carries a credential",
    ),
    "an inline cookie is refused": (
        with_sink("{type: webhook, url: 'https://example.invalid/x', headers: {Cookie: session=abc}}"),
        "targets[0].sinks[1].headers",
        "Cookie carries a credential",
    ),
    "a header the sink sets itself is refused": (
        with_sink("{type: webhook, url: 'https://example.invalid/x', headers: {Idempotency-Key: k}}"),
        "targets[0].sinks[1].headers",
        "Idempotency-Key is set by the sink itself",
    ),
    "an unverified challenge of a vault that is not on loopback is refused": (
        TARGET + "        verify_challenge_resource: false\n",
        "targets[0].sinks[0].verify_challenge_resource",
        "only for an emulator on loopback",
    ),
}


@pytest.mark.parametrize(("text", "path", "fragment"), BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_config_names_the_key_and_the_fix(text: str, path: str, fragment: str) -> None:
    problems = problems_of(text).problems
    assert any(p.startswith(path) and fragment in p for p in problems), problems


@pytest.mark.parametrize(("text", "path", "fragment"), BROKEN.values(), ids=BROKEN.keys())
def test_every_problem_is_also_in_the_error_text(text: str, path: str, fragment: str) -> None:
    error = problems_of(text)
    assert str(error).startswith("test.yaml: ")
    assert all(p in str(error) for p in error.problems)
    assert isinstance(error, ConfigError)


INLINE = "pasted-secret-Q8~abcdefghijklmnopqrstuvwxyz012345"

INLINE_SECRETS = {
    "an inline api_key": push(api_key=f"'{INLINE}'"),
    "an inline api_key in a mapping of the wrong shape": push(api_key=f"{{value: '{INLINE}'}}"),
    "an inline api_key in a list": push(api_key=f"['{INLINE}']"),
    "an inline client secret of the rotator's identity": (
        "credential: {type: client_secret, client_id: 11111111-1111-1111-1111-111111111111, "
        f"client_secret: '{INLINE}'}}\n" + TARGET
    ),
    "an inline secret header of a webhook": with_sink(
        f"{{type: webhook, url: 'https://example.invalid/x', secret_headers: {{X-Key: '{INLINE}'}}}}"
    ),
    "a secret pasted as an env variable name": push(api_key=f"{{env: '{INLINE}'}}"),
    "a secret pasted as the key of a reference (a one-key YAML mapping)": push(api_key=f"{{'{INLINE}'}}"),
    "a secret pasted as a key next to env": push(api_key=f"{{env: X, '{INLINE}': 1}}"),
    "a secret pasted as the key of the rotator's client secret": (
        "credential: {type: client_secret, client_id: 11111111-1111-1111-1111-111111111111, "
        f"client_secret: {{'{INLINE}': null}}}}\n" + TARGET
    ),
    "a secret pasted as the key of a secret header's reference": with_sink(
        f"{{type: webhook, url: 'https://example.invalid/x', secret_headers: {{X-Key: {{'{INLINE}': 1}}}}}}"
    ),
    "a secret pasted into a URL": push(url=f"https://user:{INLINE}@example.invalid/x"),
    "a secret in a URL's query string": push(url=f"https://fn.example.invalid/api/hook?code={INLINE}"),
    "a secret inline in a webhook's Authorization header": with_sink(
        f"{{type: webhook, url: 'https://example.invalid/x', headers: {{Authorization: 'Bearer {INLINE}'}}}}"
    ),
    "a secret inline as a query parameter": with_sink(
        f"{{type: webhook, url: 'https://example.invalid/x', query: {{code: '{INLINE}'}}}}"
    ),
    "a secret pasted as the key of a query parameter's reference": with_sink(
        f"{{type: webhook, url: 'https://example.invalid/x', query: {{code: {{'{INLINE}': 1}}}}}}"
    ),
    "a secret pasted as a duration": f"defaults: {{lifetime: '{INLINE}'}}\n" + TARGET,
    "a secret pasted as a cloud name": f"cloud: {{name: '{INLINE}'}}\n" + TARGET,
    "a secret on a line that breaks the YAML": TARGET + f"    api_key: '{INLINE}': [\n",
    "a secret on a line with an unterminated quote": TARGET + f'    api_key: "{INLINE}\n',
    "a secret after a tab that breaks the YAML": TARGET + f"\tapi_key: {INLINE}\n",
}


@pytest.mark.parametrize("text", INLINE_SECRETS.values(), ids=INLINE_SECRETS.keys())
def test_a_refused_value_is_never_echoed(text: str) -> None:
    error = problems_of(text)
    assert INLINE not in str(error)
    assert INLINE not in repr(error)
    assert not any(INLINE in p for p in error.problems)
    assert error.__cause__ is None
    assert error.__suppress_context__


def test_the_design_example_parses_with_its_env_variable_set() -> None:
    config = parse_config(DESIGN_EXAMPLE, "DESIGN.md", ENV)
    (target,) = config.targets
    assert target.name == "dime-exchange"
    assert [s.type for s in target.sinks] == ["keyvault", "dimescheduler"]
    policy = config.policy(target)
    assert (policy.lifetime, policy.renew_before, policy.grace_period) == (90 * DAY, 30 * DAY, DAY)
    assert (policy.verify_timeout, policy.in_flight_timeout) == (timedelta(minutes=5), timedelta(minutes=15))
    assert (policy.max_credentials, policy.retire_unmanaged) == (4, False)
    push_sink = target.sinks[1]
    assert isinstance(push_sink, DimeSchedulerSink)
    assert push_sink.api_key.resolve(ENV).reveal() == ENV["DIMESCHEDULER_API_KEY"]
    assert config.cloud.endpoints().known_authority


def test_the_design_example_needs_its_env_variable() -> None:
    problems = problems_of(DESIGN_EXAMPLE, environ={}).problems
    assert problems == [
        "targets[0].sinks[1].api_key: environment variable DIMESCHEDULER_API_KEY is not set: "
        "set it, or use {file: PATH}"
    ]


def sink(config: Config, index: int) -> Any:
    return config.targets[0].sinks[index]


def minimal_defaults(config: Config) -> None:
    assert config.policy(config.targets[0]) == Policy()
    assert (config.state.backend, config.state.path) == ("file", Path("/var/lib/secret-rotator"))
    assert (config.schedule, config.concurrency_per_tenant) == ("0 */6 * * *", 4)
    assert config.cloud.endpoints().authority_host == CLOUDS["public"]["authority_host"]
    assert config.credential.type == "default"


def sink_url(url: str) -> Callable[[Config], None]:
    def check(config: Config) -> None:
        assert str(sink(config, 1).url) == url

    return check


def lifetimes(lifetime: timedelta, renew_before: timedelta | None) -> Callable[[Config], None]:
    def check(config: Config) -> None:
        policy = config.policy(config.targets[0])
        assert (policy.lifetime, policy.renew_before) == (lifetime, renew_before)

    return check


def api_key_from_the_file(config: Config) -> None:
    assert sink(config, 1).api_key.resolve(ENV).reveal() == "api-key-from-a-file"


def query_reference(config: Config) -> None:
    webhook = sink(config, 1)
    assert webhook.query["code"].resolve({"FUNCTION_KEY": "function-key-0123456789"}).reveal() == (
        "function-key-0123456789"
    )
    assert "?" not in str(webhook.url)


def headers_kept(config: Config) -> None:
    assert sink(config, 1).headers == {"X-Tenant": "contoso", "Accept": "*/*"}


def challenge_unchecked(config: Config) -> None:
    assert sink(config, 0).verify_challenge_resource is False


GOOD: dict[str, tuple[str, dict[str, str], Callable[[Config], None]]] = {
    "a minimal config gets every default": (TARGET, {}, minimal_defaults),
    "a push to loopback may use plain http (an emulator or a sidecar)": (
        push(url="http://127.0.0.1:8443/exchange-settings"),
        {},
        sink_url("http://127.0.0.1:8443/exchange-settings"),
    ),
    "a webhook to localhost may use plain http": (
        with_sink("{type: webhook, url: 'http://localhost:9000/hook'}"),
        {},
        sink_url("http://localhost:9000/hook"),
    ),
    "a push to IPv6 loopback may use plain http": (
        push(url="http://[::1]:8443/x"),
        {},
        sink_url("http://[::1]:8443/x"),
    ),
    "ISO 8601 durations are accepted": (
        "defaults: {lifetime: P60D, renew_before: PT480H}\n" + TARGET,
        {},
        lifetimes(60 * DAY, 20 * DAY),
    ),
    "a file reference to a readable file is accepted": (push(api_key="{file: FILE}"), {}, api_key_from_the_file),
    "a null policy key means the default": (
        "defaults: {lifetime: null}\n" + TARGET,
        {},
        lifetimes(Policy().lifetime, None),
    ),
    "a secret query parameter is a reference": (
        with_sink("{type: webhook, url: 'https://fn.example.invalid/api/hook', query: {code: {env: FUNCTION_KEY}}}"),
        {"FUNCTION_KEY": "function-key-0123456789"},
        query_reference,
    ),
    "harmless inline headers are kept": (
        with_sink("{type: webhook, url: 'https://example.invalid/x', headers: {X-Tenant: contoso, Accept: '*/*'}}"),
        {},
        headers_kept,
    ),
    "an emulator's vault on loopback may skip the challenge check": (
        TARGET.replace("https://my-vault.vault.azure.net", "https://127.0.0.1:8443")
        + "        verify_challenge_resource: false\n",
        {},
        challenge_unchecked,
    ),
}


@pytest.mark.parametrize(("text", "environ", "check"), GOOD.values(), ids=GOOD.keys())
def test_a_good_config_parses(
    text: str, environ: dict[str, str], check: Callable[[Config], None], tmp_path: Path
) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text("api-key-from-a-file\n", encoding="utf-8")
    config = parse_config(text.replace("FILE", str(key_file)), "test.yaml", {**ENV, **environ})
    check(config)


def test_an_empty_secret_file_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text("\n", encoding="utf-8")
    (problem,) = problems_of(push(api_key=f"{{file: {key_file}}}")).problems
    assert problem == f"targets[0].sinks[1].api_key: file {key_file} is empty: write the secret into it"


def test_a_per_target_key_beats_the_default() -> None:
    text = "defaults: {lifetime: 90d, grace_period: 2d, max_credentials: 5}\n" + TARGET.replace(
        "    sinks:", "    lifetime: 30d\n    retire_unmanaged: true\n    sinks:"
    )
    config = parse_config(text, "test.yaml", ENV)
    policy = config.policy(config.targets[0])
    assert policy.lifetime == 30 * DAY  # the target's
    assert policy.grace_period == 2 * DAY  # the defaults'
    assert policy.max_credentials == 5  # the defaults'
    assert policy.retire_unmanaged is True  # the target's
    assert policy.verify_timeout == timedelta(minutes=5)  # built in


def test_each_target_gets_its_own_policy() -> None:
    second = TARGET.removeprefix("targets:\n").replace("dime-exchange\n", "other\n", 1)
    text = "defaults: {lifetime: 60d}\n" + TARGET.replace("    sinks:", "    lifetime: 30d\n    sinks:") + second
    config = parse_config(text, "test.yaml", ENV)
    assert [config.policy(t).lifetime for t in config.targets] == [30 * DAY, 60 * DAY]


def test_retire_on_usage_is_opt_in_in_defaults_or_per_target_with_its_lag() -> None:
    second = TARGET.removeprefix("targets:\n").replace("dime-exchange\n", "other\n", 1)
    text = "defaults: {usage_lag: 3h}\n" + TARGET.replace("    sinks:", "    retire_on: usage\n    sinks:") + second
    config = parse_config(text, "test.yaml", ENV)
    policies = [config.policy(t) for t in config.targets]
    assert [(p.retire_on, p.usage_lag) for p in policies] == [
        ("usage", timedelta(hours=3)),
        ("grace_period", timedelta(hours=3)),
    ]
    plain = parse_config(TARGET, "test.yaml", ENV)
    assert plain.policy(plain.targets[0]).retire_on == "grace_period"


def test_an_unknown_retire_on_names_the_key_and_the_choices() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("defaults: {retire_on: sign_ins}\n" + TARGET, "test.yaml", ENV)
    assert "retire_on" in str(caught.value)
    assert "usage" in str(caught.value)


def test_a_usage_lag_as_long_as_the_lifetime_is_refused_with_retire_on_usage() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("defaults: {retire_on: usage, lifetime: 30d, usage_lag: 30d}\n" + TARGET, "test.yaml", ENV)
    assert "usage_lag must be shorter than lifetime" in str(caught.value)
    # Without retire_on: usage the lag is never used, so it is no problem.
    parse_config("defaults: {lifetime: 30d, usage_lag: 30d}\n" + TARGET, "test.yaml", ENV)


def test_a_per_target_renew_before_ratio_beats_a_default_renew_before() -> None:
    text = "defaults: {lifetime: 90d, renew_before: 30d}\n" + TARGET.replace(
        "    sinks:", "    renew_before_ratio: 0.5\n    sinks:"
    )
    config = parse_config(text, "test.yaml", ENV)
    policy = config.policy(config.targets[0])
    start = datetime(2025, 1, 1, tzinfo=UTC)
    credential = Credential("k", "secret-rotator", None, start, start + 90 * DAY)
    assert renewal_time(credential, policy) == start + 45 * DAY


@pytest.mark.parametrize(
    "name",
    ["usgov", "china"],
    ids=["cloud name usgov fills all three endpoints", "cloud name china fills all three endpoints"],
)
def test_a_cloud_name_fills_all_three_endpoints(name: str) -> None:
    config = parse_config(f"cloud: {{name: {name}}}\n" + TARGET, "test.yaml", ENV)
    cloud = config.cloud
    assert (cloud.authority_host, cloud.graph_url, cloud.graph_scope) == tuple(CLOUDS[name].values())
    assert cloud.endpoints().known_authority


def test_no_cloud_means_the_public_cloud() -> None:
    cloud = parse_config(TARGET, "test.yaml", ENV).cloud
    assert cloud.authority_host == "https://login.microsoftonline.com"
    assert cloud.graph_url == "https://graph.microsoft.com/v1.0"
    assert cloud.graph_scope == "https://graph.microsoft.com/.default"


def test_an_explicit_endpoint_beats_the_cloud_name() -> None:
    text = "cloud: {name: usgov, graph_url: 'https://graph.example/v1.0/', authority_host: 'https://login.example'}\n"
    cloud = parse_config(text + TARGET, "test.yaml", ENV).cloud
    assert cloud.graph_url == "https://graph.example/v1.0"  # trailing slash dropped
    assert cloud.authority_host == "https://login.example"
    assert cloud.graph_scope == CLOUDS["usgov"]["graph_scope"]
    assert not cloud.endpoints().known_authority  # so credentials disable instance discovery


def test_the_json_schema_is_a_json_schema_of_the_file() -> None:
    schema = json_schema()
    json.dumps(schema)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "targets" in schema["properties"]
    assert schema["required"] == ["targets"]
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(yaml.safe_load(DESIGN_EXAMPLE))) == []
    assert list(validator.iter_errors({"targets": [], "colour": "blue"}))


def test_load_config_reads_the_file_it_is_given(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(DESIGN_EXAMPLE, encoding="utf-8")
    assert load_config(path, ENV).targets[0].name == "dime-exchange"


def test_load_config_reads_the_file_named_by_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(DESIGN_EXAMPLE, encoding="utf-8")
    assert load_config(None, {**ENV, "SECRET_ROTATOR_CONFIG": str(path)}).targets[0].name == "dime-exchange"


def test_load_config_names_its_file_in_problems(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("colour: blue\n" + TARGET, encoding="utf-8")
    with pytest.raises(ConfigProblems) as info:
        load_config(path, ENV)
    assert info.value.source == str(path)
    assert str(info.value).startswith(f"{path}: 1 problem(s)")


LOAD_ERRORS = {
    "without --config nor SECRET_ROTATOR_CONFIG there is no config file": (None, "pass --config FILE"),
    "a config file that does not exist is named": ("/nonexistent/config.yaml", "/nonexistent/config.yaml"),
}


@pytest.mark.parametrize(("path", "fragment"), LOAD_ERRORS.values(), ids=LOAD_ERRORS.keys())
def test_load_config_errors(path: str | None, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert fragment in str(info.value)


NON_STRING_SCHEDULES = {
    "a schedule given as a number is a problem, not a crash": "schedule: 5\n",
    "a schedule given as null is a problem, not a crash": "schedule: null\n",
}


@pytest.mark.parametrize("top", NON_STRING_SCHEDULES.values(), ids=NON_STRING_SCHEDULES.keys())
def test_a_schedule_that_is_not_a_string(top: str) -> None:
    problems = problems_of(top + TARGET).problems
    assert any(p.startswith("schedule: ") for p in problems), problems


def test_a_header_name_starting_like_a_type_name_stays_in_the_key_path() -> None:
    text = with_sink("{type: webhook, url: 'https://example.invalid/x', secret_headers: {integration-key: x}}")
    (problem,) = problems_of(text).problems
    assert problem.startswith("targets[0].sinks[1].secret_headers.integration-key: ")


def test_a_query_parameter_stays_out_of_the_sink_id() -> None:
    text = with_sink("{type: webhook, url: 'https://fn.example.invalid/api/hook', query: {code: {env: FUNCTION_KEY}}}")
    config = parse_config(text, "test.yaml", {"FUNCTION_KEY": "function-key-0123456789"})

    assert sink_id(config.targets[0].sinks[1]) == "webhook:https://fn.example.invalid/api/hook"
