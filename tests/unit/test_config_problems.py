"""Every problem of a config file in one round, in the order of the file, each exact: what is wrong and
how to fix it, and never the value found."""

from __future__ import annotations

import pytest

from service.config.loading import parse_config
from service.config.problems import ConfigProblems

VAULT = "{type: keyvault, vault_url: 'https://my-vault.vault.azure.net', secret_name: s}"


def target(
    name: str = "dime-exchange",
    tenant: str = "00000000-0000-0000-0000-000000000000",
    extra: str = "",
    sinks: str = VAULT,
) -> str:
    return (
        f"  - name: {name}\n    tenant_id: {tenant}\n    client_id: 11111111-1111-1111-1111-111111111111\n"
        f"{extra}    sinks: [{sinks}]\n"
    )


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigProblems) as info:
        parse_config(text, "test.yaml", environ or {})
    return info.value.problems


def test_field_errors_and_cross_checks_come_together_in_the_order_of_the_file() -> None:
    text = (
        "defaults: {lifetime: 30d, renew_before: 30d}\n"
        "colour: blue\n"
        "targets:\n"
        + target(tenant="contoso.onmicrosoft.com")
        + target(name="second", sinks=f"{VAULT}, {VAULT}")
        + target(sinks="{type: dimescheduler, url: 'https://example.invalid/x', api_key: {env: API_KEY_UNSET}}")
    )

    found = problems(text)

    assert found == [
        "defaults: renew_before (30d) must be shorter than lifetime (30d), else every pass would rotate",
        "colour: unknown key: remove it or check its spelling",
        "targets[0].tenant_id: must be a GUID: the Directory (tenant) ID from the app's Overview page in the "
        "Entra portal",
        "targets[1].sinks[1]: the same sink is listed twice: keyvault:https://my-vault.vault.azure.net/s "
        "(also sinks[0])",
        "targets[2].name: target names must be unique: dime-exchange is also the name of targets[0]",
        "targets[2].sinks[0].api_key: environment variable API_KEY_UNSET is not set: set it, or use {file: PATH}",
    ]


def test_a_policy_problem_of_the_defaults_is_told_once_not_once_per_target() -> None:
    text = "defaults: {lifetime: 1d, grace_period: 1d}\ntargets:\n" + "".join(target(name=f"t{i}") for i in range(5))

    assert problems(text) == [
        "defaults: grace_period must be shorter than lifetime, else old secrets pile up to max_credentials"
    ]


def test_a_target_whose_own_keys_make_the_policy_contradict_itself_is_named() -> None:
    text = "defaults: {renew_before: 30d}\ntargets:\n" + target() + target(name="short", extra="    lifetime: 14d\n")

    assert problems(text) == [
        "targets[1] (short): renew_before (30d) must be shorter than lifetime (14d), else every pass would rotate"
    ]


def test_targets_with_windows_of_their_own_are_each_checked_with_those_windows() -> None:
    office = "{days: [mon-fri], start: '08:00', end: '17:00', time_zone: Europe/Amsterdam}"
    night = "{days: [sat], start: '22:00', end: '04:00', time_zone: UTC}"
    text = "defaults: {lifetime: 30d, window_margin: 30d}\ntargets:\n" + "".join(
        target(name=name, extra=f"    windows: [{windows}]\n" if windows is not None else "")
        for name, windows in (
            ("any-time", ""),
            ("office", office),
            ("office-too", office),
            ("night", night),
            ("d", None),
        )
    )

    margin = "window_margin (30d) must be shorter than lifetime (30d), else every pass would rotate outside the windows"
    # Without windows (an empty list, or none inherited) the margin is moot; every target with windows is named,
    # the second with the same windows as the first too.
    assert problems(text) == [
        f"targets[{i}] ({name}): {margin}" for i, name in ((1, "office"), (2, "office-too"), (3, "night"))
    ]


def test_a_broken_target_still_gets_its_policy_and_references_checked() -> None:
    text = "targets:\n" + target(
        tenant="not-a-guid",
        extra="    lifetime: 1d\n    grace_period: 2d\n",
        sinks="{type: dimescheduler, url: 'https://example.invalid/x', api_key: {env: EMPTY}}",
    )

    found = problems(text, {"EMPTY": ""})

    assert [p.split(":")[0] for p in found] == [
        "targets[0] (dime-exchange)",
        "targets[0].tenant_id",
        "targets[0].sinks[0].api_key",
    ]


@pytest.mark.parametrize(
    ("value", "said"),
    [
        pytest.param("", "is set but empty: put the secret in it, or use {file: PATH}", id="set but empty"),
        pytest.param("  \n", "is set but empty", id="set to blanks only"),
    ],
)
def test_an_environment_variable_that_is_set_but_empty_says_so(value: str, said: str) -> None:
    text = "targets:\n" + target(
        sinks="{type: dimescheduler, url: 'https://example.invalid/x', api_key: {env: API_KEY}}"
    )

    (problem,) = problems(text, {"API_KEY": value})

    assert problem.startswith(f"targets[0].sinks[0].api_key: environment variable API_KEY {said}")
    assert "not set" not in problem


UNKNOWN_KEYS = {
    "a misspelt policy key in defaults": (
        "defaults: {grace_periode: 2d}\ntargets:\n" + target(),
        "defaults.grace_periode",
        "grace_period",
    ),
    "a policy key on a target written in camel case": (
        "targets:\n" + target(extra="    gracePeriod: 2d\n"),
        "targets[0].gracePeriod",
        "grace_period",
    ),
    "a sink key with a letter missing": (
        "targets:\n"
        + target(
            sinks="{type: keyvault, vault_url: 'https://v.vault.azure.net', secret_name: s, verify_challenge: true}"
        ),
        "targets[0].sinks[0].verify_challenge",
        "verify_challenge_resource",
    ),
    "a push sink's key in the singular": (
        "targets:\n" + target(sinks="{type: webhook, url: 'https://e.invalid/x', header: {X-Tenant: contoso}}"),
        "targets[0].sinks[0].header",
        "headers",
    ),
    "a top-level key in the singular": ("target: []\ntargets:\n" + target(), "target", "targets"),
    "a state key": ("state: {backend: file, pth: /tmp}\ntargets:\n" + target(), "state.pth", "path"),
}


@pytest.mark.parametrize(("text", "where", "near"), UNKNOWN_KEYS.values(), ids=UNKNOWN_KEYS.keys())
def test_an_unknown_key_suggests_the_nearest_known_one(text: str, where: str, near: str) -> None:
    (problem,) = problems(text)

    assert problem == f"{where}: unknown key: remove it or check its spelling (did you mean `{near}`?)"


def test_an_unknown_key_near_no_known_one_gets_no_suggestion() -> None:
    (problem,) = problems("colour: blue\ntargets:\n" + target())

    assert problem == "colour: unknown key: remove it or check its spelling"


def test_a_key_under_a_secret_reference_is_never_suggested_against() -> None:
    pasted = "fil3"  # as likely a secret as a misspelling: never named, never matched
    text = "targets:\n" + target(
        sinks=f"{{type: dimescheduler, url: 'https://e.invalid/x', api_key: {{{pasted}: /run/key}}}}"
    )

    (problem,) = problems(text)

    assert pasted not in problem
    assert "did you mean" not in problem


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("defaults.grace_period", "0s", id="a zero grace period"),
        pytest.param("defaults.lifetime", "-90d", id="a negative lifetime"),
        pytest.param("defaults.verify_timeout", "PT0S", id="a zero ISO 8601 verify timeout"),
        pytest.param("targets[0].in_flight_timeout", "0m", id="a target's zero in_flight_timeout"),
        pytest.param("targets[0].sinks[0].timeout", "-2m", id="a push sink's negative timeout"),
    ],
)
def test_a_zero_or_negative_duration_must_be_positive(key: str, value: str) -> None:
    section, _, name = key.rpartition(".")
    if section == "defaults":
        text = f"defaults: {{{name}: '{value}'}}\ntargets:\n" + target()
    elif section == "targets[0]":
        text = "targets:\n" + target(extra=f"    {name}: '{value}'\n")
    else:
        text = "targets:\n" + target(sinks=f"{{type: webhook, url: 'https://e.invalid/x', timeout: '{value}'}}")

    (problem,) = problems(text)

    assert problem.startswith(f"{key}: must be positive")
    assert "write it like 90d" in problem


def test_a_zero_schedule_jitter_turns_it_off_and_a_negative_one_is_refused() -> None:
    assert parse_config("schedule_jitter: 0s\ntargets:\n" + target(), "test.yaml", {}).schedule_jitter.seconds == 0
    (problem,) = problems("schedule_jitter: -5m\ntargets:\n" + target())
    assert problem == "schedule_jitter: must not be negative: write it like 5m, or 0s for none"
