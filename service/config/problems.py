"""How a config problem is worded: ``key.path: what is wrong and how to fix it``, never the value found."""

from __future__ import annotations

import re

from pydantic import ValidationError

from service.errors import ConfigError


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
        if part in ("secret_headers", "query") and i + 1 < len(loc):
            return i + 2  # secret_headers.<header name>, query.<parameter name>
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
