"""Reading the config file: size and encoding limits, YAML, validation, and the checks pydantic cannot
make (policies that contradict themselves, secret references that do not resolve, the CA bundle)."""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import yaml
from pydantic import ValidationError

from service.config import CONFIG_ENV
from service.config.clouds import ca_bundle_problem
from service.config.document import Config
from service.config.policy import PolicyOverrides, policy_problems
from service.config.problems import ConfigProblems, problems_of
from service.config.references import SecretRef
from service.config.yaml_reader import safe_load
from service.errors import ConfigError
from service.local_files import MIB, FileProblem, read_limited, size_text

# A 10,000-target config is about 4 MB; anything far beyond is not a config someone wrote.
MAX_CONFIG_BYTES = 16 * MIB


def _references(config: Config) -> list[tuple[str, SecretRef]]:
    refs: list[tuple[str, SecretRef]] = []
    if config.credential.client_secret:
        refs.append(("credential.client_secret", config.credential.client_secret))
    for i, target in enumerate(config.targets):
        if target.credential and target.credential.client_secret:
            refs.append((f"targets[{i}].credential.client_secret", target.credential.client_secret))
        for j, sink in enumerate(target.sinks):
            refs.extend((f"targets[{i}].sinks[{j}].{path}", ref) for path, ref in sink.references())
    return refs


def semantic_problems(config: Config, environ: Mapping[str, str]) -> list[str]:
    """What pydantic cannot see: policies that contradict themselves, references that do not resolve.

    Each distinct policy and reference is checked once: a fleet's 10,000 targets mostly share the defaults
    and one API key file.
    """
    problems: list[str] = []
    policies: dict[tuple[object, ...], list[str]] = {}
    for i, target in enumerate(config.targets):
        overrides = tuple(getattr(target, key) for key in PolicyOverrides.model_fields)
        if overrides not in policies:
            policies[overrides] = policy_problems(config.policy(target))
        problems.extend(f"targets[{i}] ({target.name}): {problem}" for problem in policies[overrides])
    unresolved: dict[SecretRef, str | None] = {}
    for path, ref in _references(config):
        if ref not in unresolved:
            unresolved[ref] = ref.problem(environ)
        if unresolved[ref]:
            problems.append(f"{path}: {unresolved[ref]}")
    bundle_problem = ca_bundle_problem(config.cloud.ca_bundle) if config.cloud.ca_bundle is not None else None
    if bundle_problem:
        problems.append(f"cloud.ca_bundle: {bundle_problem}")
    return problems


@contextlib.contextmanager
def _no_garbage_collection() -> Iterator[None]:
    """Building a large config makes a few hundred thousand objects and no reference cycles: the collector,
    running every few hundred allocations, would spend a fifth of the load time finding nothing."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_config(text: str, source: str = "config", environ: Mapping[str, str] | None = None) -> Config:
    """Validate a YAML document; raises ConfigProblems naming every problem."""
    with _no_garbage_collection():
        return _parse_config(text, source, environ)


def _parse_config(text: str, source: str, environ: Mapping[str, str] | None) -> Config:
    try:
        data = safe_load(text)
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
