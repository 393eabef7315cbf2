"""The checks pydantic cannot make key by key: names and sinks that repeat, policies that contradict
themselves, secret references that do not resolve, the CA bundle.

They run on every part of the file that validates, also when another part does not, so that one round of
`config check` reports every problem at once. Each problem keeps its location, for the order of the file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from service.config.clouds import Cloud, IdentityConfig, ca_bundle_problem
from service.config.document import Config, SinkConfig, Target, repeated
from service.config.notify import notify_problems
from service.config.policy import PolicyOverrides, merge_policy, policy_problems
from service.config.problems import Loc, Problem
from service.config.references import SecretRef
from service.sinks.registry import SinkSettings


@dataclass
class _TargetParts:
    """What of one target validated: the whole target, or the policy keys, identity and sinks that did."""

    index: int
    name: str | None
    policy: PolicyOverrides | None
    credential: IdentityConfig | None
    sinks: list[tuple[int, SinkSettings]] = field(default_factory=list)


@dataclass
class _Parts:
    """The parts of a config file that validated (all of them, when the file did)."""

    cloud: Cloud | None
    credential: IdentityConfig | None
    defaults: PolicyOverrides | None
    targets: list[_TargetParts]


def cross_checks(data: Mapping[str, Any], config: Config | None, environ: Mapping[str, str]) -> list[Problem]:
    """Every problem no single key shows, in the parts of ``data`` that validated (``config``: all of it)."""
    parts = _from_config(config) if config is not None else _from_document(data)
    return [
        *_repeated_names(data),
        *_policy_problems(parts),
        *(problem for target in parts.targets for problem in _repeated_sinks(target)),
        *_reference_problems(parts, environ),
        *_ca_bundle_problem(parts),
        *notify_problems(data, environ),
    ]


# --- the parts ------------------------------------------------------------------------------------


def _from_config(config: Config) -> _Parts:
    return _Parts(
        config.cloud,
        config.credential,
        config.defaults,
        [_TargetParts(i, t.name, t, t.credential, list(enumerate(t.sinks))) for i, t in enumerate(config.targets)],
    )


def _valid(model: type[BaseModel], value: Any) -> Any:
    try:
        return model.model_validate({} if value is None else value)
    except ValidationError:
        return None


def _from_document(data: Mapping[str, Any]) -> _Parts:
    # Built here, not once: a sink type may be registered after this module is imported.
    sink_config: TypeAdapter[SinkSettings] = TypeAdapter(SinkConfig)
    targets = []
    raw_targets = data.get("targets")
    for i, raw in enumerate(raw_targets if isinstance(raw_targets, list) else []):
        if not isinstance(raw, dict):
            continue
        target = _valid(Target, raw)
        if target is not None:
            targets.append(_TargetParts(i, target.name, target, target.credential, list(enumerate(target.sinks))))
            continue
        policy = _valid(PolicyOverrides, {k: raw[k] for k in PolicyOverrides.model_fields if k in raw})
        credential = _valid(IdentityConfig, raw["credential"]) if isinstance(raw.get("credential"), dict) else None
        sinks = []
        raw_sinks = raw.get("sinks")
        for j, sink in enumerate(raw_sinks if isinstance(raw_sinks, list) else []):
            with contextlib.suppress(ValidationError):
                sinks.append((j, sink_config.validate_python(sink)))
        name = raw.get("name") if isinstance(raw.get("name"), str) else None
        targets.append(_TargetParts(i, name, policy, credential, sinks))
    return _Parts(
        _valid(Cloud, data.get("cloud")),
        _valid(IdentityConfig, data.get("credential")),
        _valid(PolicyOverrides, data.get("defaults")),
        targets,
    )


# --- the checks -----------------------------------------------------------------------------------


def _repeated_names(data: Mapping[str, Any]) -> Iterator[Problem]:
    """Each target that takes a name an earlier target has (read from the document: also of broken targets)."""
    raw = data.get("targets")
    named = [
        (i, t["name"])
        for i, t in enumerate(raw if isinstance(raw, list) else [])
        if isinstance(t, dict) and isinstance(t.get("name"), str)
    ]
    twice = set(repeated(name for _, name in named))
    first: dict[str, int] = {}
    for i, name in named:
        if name not in twice:
            continue
        if name in first:
            yield Problem(
                ("targets", i, "name"),
                f"targets[{i}].name: target names must be unique: {name} is also the name of targets[{first[name]}]",
            )
        else:
            first[name] = i


def _repeated_sinks(target: _TargetParts) -> Iterator[Problem]:
    ids = [(j, sink.sink_id()) for j, sink in target.sinks]
    twice = set(repeated(sink_id for _, sink_id in ids))
    first: dict[str, int] = {}
    for j, sink_id in ids:
        if sink_id not in twice:
            continue
        if sink_id in first:
            i = target.index
            yield Problem(
                ("targets", i, "sinks", j),
                f"targets[{i}].sinks[{j}]: the same sink is listed twice: {sink_id} (also sinks[{first[sink_id]}])",
            )
        else:
            first[sink_id] = j


def _hashable(value: object) -> object:
    """A policy value as a cache key: a target's own ``windows`` list as the windows it means."""
    if isinstance(value, list):
        return tuple(w.window() for w in value)
    return value


def _policy_problems(parts: _Parts) -> Iterator[Problem]:
    """A policy that contradicts itself: once at `defaults` when targets inherit it, else at each target."""
    if parts.defaults is None:
        return  # its own keys are wrong, and say so
    inherited = set(policy_problems(merge_policy(parts.defaults)))
    told: set[str] = set()
    # Each distinct policy is checked once: a fleet's 10,000 targets mostly share the defaults.
    checked: dict[tuple[object, ...], list[str]] = {}
    for target in parts.targets:
        if target.policy is None:
            continue
        overrides = tuple(_hashable(getattr(target.policy, key)) for key in PolicyOverrides.model_fields)
        found = checked.get(overrides)
        if found is None:
            found = checked[overrides] = policy_problems(merge_policy(parts.defaults, target.policy))
        for problem in found:
            if problem in inherited:
                if problem not in told:
                    told.add(problem)
                    yield Problem(("defaults",), f"defaults: {problem}")
            else:
                label = f"targets[{target.index}]" + (f" ({target.name})" if target.name else "")
                yield Problem(("targets", target.index), f"{label}: {problem}")


def _references(parts: _Parts) -> Iterator[tuple[Loc, str, SecretRef]]:
    if parts.credential is not None and parts.credential.client_secret is not None:
        yield ("credential", "client_secret"), "credential.client_secret", parts.credential.client_secret
    for target in parts.targets:
        i = target.index
        if target.credential is not None and target.credential.client_secret is not None:
            yield (
                ("targets", i, "credential", "client_secret"),
                f"targets[{i}].credential.client_secret",
                target.credential.client_secret,
            )
        for j, sink in target.sinks:
            for path, ref in sink.references():
                loc: Loc = ("targets", i, "sinks", j, *path.split(".", 1))
                yield loc, f"targets[{i}].sinks[{j}].{path}", ref


def _reference_problems(parts: _Parts, environ: Mapping[str, str]) -> Iterator[Problem]:
    # Each distinct reference is resolved once: a fleet's targets mostly share one API key file.
    resolved: dict[SecretRef, str | None] = {}
    for loc, path, ref in _references(parts):
        if ref not in resolved:
            resolved[ref] = ref.problem(environ)
        unresolved = resolved[ref]
        if unresolved:
            yield Problem(loc, f"{path}: {unresolved}")


def _ca_bundle_problem(parts: _Parts) -> Iterator[Problem]:
    bundle = parts.cloud.ca_bundle if parts.cloud is not None else None
    problem = ca_bundle_problem(bundle) if bundle is not None else None
    if problem:
        yield Problem(("cloud", "ca_bundle"), f"cloud.ca_bundle: {problem}")
