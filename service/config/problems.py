"""How a config problem is worded: ``key.path: what is wrong and how to fix it``, never the value found;
and in which order the problems of a file are told (the order of the document)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from service.config.clouds import IdentityConfig
from service.config.references import reference_keys
from service.errors import ConfigError
from service.sinks.registry import SinkSettings, sink_types


class ConfigProblems(ConfigError):
    """Every problem in a config file, each as ``key.path: what is wrong and how to fix it``."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  {p}" for p in problems))


def _key_path(loc: tuple[int | str, ...], branches: frozenset[str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in branches:
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
    "env": "an environment variable name: letters, digits and '_', not starting with a digit",
}
# A union's branch names that are not keys: the scalar types of a union like `static:`'s values.
_SCALAR_BRANCHES = frozenset({"str", "int", "float", "bool"})


@dataclass(frozen=True)
class _Wording:
    """What the wording needs to know of the models: union branch names, reference keys, pattern fixes."""

    branches: frozenset[str]
    one_reference: frozenset[str]  # keys holding one secret reference (api_key)
    named_references: frozenset[str]  # keys mapping names to references (secret_headers.<header name>)
    pattern_fixes: Mapping[str, str]

    @classmethod
    def of_the_models(cls) -> _Wording:
        types = sink_types()
        one, named = reference_keys(IdentityConfig)
        fixes = dict(_PATTERN_FIXES)
        for sink_type in types:
            sink_one, sink_named = reference_keys(sink_type)
            one, named = one | sink_one, named | sink_named
            fixes.update(sink_type.pattern_fixes)
        return cls(frozenset(t.type_name() for t in types) | _SCALAR_BRANCHES, one, named, fixes)

    def inside_secret_reference(self, loc: tuple[int | str, ...]) -> int | None:
        """Where a secret reference's own keys begin in ``loc`` (the reference's path is ``loc[:n]``), or None."""
        for i, part in enumerate(loc):
            if part in self.one_reference:
                return i + 1
            if part in self.named_references and i + 1 < len(loc):
                return i + 2  # secret_headers.<header name>, query.<parameter name>
        return None


_REFERENCE_FIX = "write {env: NAME} or {file: PATH}"


Loc = tuple[int | str, ...]


@dataclass(frozen=True)
class Problem:
    """One problem of a config file: where it is (a pydantic-style location) and how it is worded."""

    loc: Loc
    text: str


def problems_of(error: ValidationError, root: type[BaseModel] | None = None) -> list[str]:
    """Each validation error as ``key.path: what is wrong and how to fix it``, never quoting a value."""
    return [problem.text for problem in located_problems(error, root)]


def located_problems(error: ValidationError, root: type[BaseModel] | None = None) -> list[Problem]:
    """Each validation error with its location, worded as ``key.path: what is wrong and how to fix it``.

    Under a secret reference nothing but ``env`` and ``file`` is named: a key there is as likely the
    secret itself (``api_key: {sk-live-...}`` is a one-key mapping in YAML) as a misspelling. Elsewhere an
    unknown key is answered with the nearest key ``root`` (the file's model) knows there, if one is near.
    """
    wording = _Wording.of_the_models()
    seen: dict[str, Problem] = {}
    for item in error.errors(include_input=False, include_url=False, include_context=False):
        loc = item["loc"]
        msg = _FIXES.get(item["type"]) or re.sub(r"^(Value|Assertion) error, ", "", item["msg"])
        if item["type"] == "string_pattern_mismatch":
            msg = wording.pattern_fixes.get(str(loc[-1]), msg)
        reference = wording.inside_secret_reference(loc)
        if reference is not None and len(loc) == reference and item["type"] in ("model_type", "dict_type"):
            msg = f"must be a reference: {_REFERENCE_FIX}"
        elif reference is not None and len(loc) > reference and loc[reference] not in ("env", "file"):
            loc = loc[:reference]
            msg = f"a key other than env or file (not shown: it may be the secret itself): {_REFERENCE_FIX}"
        elif item["type"] == "extra_forbidden" and root is not None:
            msg += _did_you_mean(str(loc[-1]), known_keys(root, loc[:-1], wording.branches))
        text = f"{_key_path(loc, wording.branches)}: {msg}"
        seen.setdefault(text, Problem(loc, text))
    return list(seen.values())


def _normal(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


def _did_you_mean(key: str, known: Iterable[str]) -> str:
    """`` (did you mean `grace_period`?)`` for a key near a known one; nothing when none is near."""
    by_normal = {_normal(name): name for name in known}
    near = difflib.get_close_matches(_normal(key), list(by_normal), n=1, cutoff=0.75)
    return f" (did you mean `{by_normal[near[0]]}`?)" if near else ""


def _unwrap(annotation: Any) -> Any:
    """The type under ``Annotated[...]`` and ``X | None``."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) in (Union, UnionType):
            kinds = [a for a in get_args(annotation) if a is not type(None)]
            if len(kinds) != 1:
                return annotation
            annotation = kinds[0]
        else:
            return annotation


def known_keys(root: type[BaseModel], loc: Loc, branches: frozenset[str] = frozenset()) -> list[str]:
    """The keys the mapping at ``loc`` may have, read from the models under ``root``; [] when that is no model."""
    types = {t.type_name(): t for t in sink_types()}
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int) and get_origin(current) is list:
            current = get_args(current)[0]
        elif isinstance(current, type) and issubclass(current, SinkSettings) and part in types:
            current = types[str(part)]
        elif isinstance(current, type) and issubclass(current, BaseModel) and part in current.model_fields:
            current = current.model_fields[str(part)].annotation
        elif get_origin(current) is dict and isinstance(part, str):
            current = get_args(current)[1]
        elif part in branches or str(part).startswith(("function-", "lax-")):
            continue
        else:
            return []
    current = _unwrap(current)
    return list(current.model_fields) if isinstance(current, type) and issubclass(current, BaseModel) else []


def document_position(data: Any, loc: Loc, branches: frozenset[str] = frozenset()) -> tuple[int, ...]:
    """Where ``loc`` stands in the parsed document ``data``: the index of each key and item along the way.

    A key the document lacks (a missing one) sorts after the keys of its mapping; a step that is no key of
    the document (a union's branch name) is passed over. Sorting by it gives the order of the file.
    """
    position: list[int] = []
    current = data
    for part in loc:
        if isinstance(current, dict) and part in current:
            position.append(list(current).index(part))
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            position.append(part)
            current = current[part]
        elif part in branches or str(part).startswith(("function-", "lax-")):
            continue
        else:
            position.append(len(current) if isinstance(current, dict | list) else 0)
            break
    return tuple(position)


def in_document_order(data: Any, problems: Iterable[Problem]) -> list[str]:
    """The problems' texts in the order of the file, each once; problems at one place keep their order."""
    branches = _Wording.of_the_models().branches
    unique = {problem.text: problem for problem in problems}
    ordered = sorted(unique.values(), key=lambda problem: document_position(data, problem.loc, branches))
    return [problem.text for problem in ordered]
