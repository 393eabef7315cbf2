"""mypy analyses only the part of msgraph-sdk the service uses (pyproject.toml says why): every msgraph
module that service/ imports must be in that part, or its types would silently read as Any."""

from __future__ import annotations

import ast
import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def analysed_patterns() -> list[str]:
    overrides = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]["overrides"]
    return [module for o in overrides if o.get("follow_imports") == "normal" for module in o["module"]]


def generated_imports() -> set[str]:
    """Every ``msgraph.generated`` module that a module of service/ imports."""
    found = set()
    for path in (ROOT / "service").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("msgraph.generated"):
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names if alias.name.startswith("msgraph.generated")}
    return found


def test_the_service_imports_msgraph_modules_to_check() -> None:
    assert generated_imports()


def test_every_msgraph_module_the_service_imports_is_analysed_by_mypy() -> None:
    patterns = analysed_patterns()
    # mypy's `a.b.*` covers a.b and everything below it.
    unchecked = sorted(
        module
        for module in generated_imports()
        if not any(module == p or fnmatch.fnmatch(module, p) or module == p.removesuffix(".*") for p in patterns)
    )

    assert unchecked == [], "add them to the follow_imports = normal override of [tool.mypy] in pyproject.toml"
