"""How a config problem is worded: ``key.path: what is wrong and how to fix it``, never the value found."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from service.config.clouds import IdentityConfig
from service.config.references import reference_keys
from service.errors import ConfigError
from service.sinks.registry import sink_types


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


def problems_of(error: ValidationError) -> list[str]:
    """Each validation error as ``key.path: what is wrong and how to fix it``, never quoting a value.

    Under a secret reference nothing but ``env`` and ``file`` is named: a key there is as likely the
    secret itself (``api_key: {sk-live-...}`` is a one-key mapping in YAML) as a misspelling.
    """
    wording = _Wording.of_the_models()
    seen: dict[str, None] = {}
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
        seen[f"{_key_path(loc, wording.branches)}: {msg}"] = None
    return list(seen)
