"""Every public class and function of the core says what it is for: a docstring each.

The core is service/ but for the emulator (a stand-in for the remote side, with its own conventions).
Public: a name without a leading underscore, at module level or inside a public class; an ``@overload``
signature needs none (its implementation has it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def core_files() -> list[Path]:
    return [p for p in sorted((ROOT / "service").rglob("*.py")) if "emulator" not in p.relative_to(ROOT).parts]


def _overload(node: ast.AST) -> bool:
    return any(
        (isinstance(d, ast.Name) and d.id == "overload") or (isinstance(d, ast.Attribute) and d.attr == "overload")
        for d in getattr(node, "decorator_list", [])
    )


def public_definitions(source: str) -> list[tuple[str, bool]]:
    """(qualified name, has a docstring) of every public class and function in ``source``."""
    found: list[tuple[str, bool]] = []

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            if node.name.startswith("_") or _overload(node):
                continue
            found.append((prefix + node.name, ast.get_docstring(node) is not None))
            if isinstance(node, ast.ClassDef):
                visit(node.body, f"{prefix}{node.name}.")

    visit(ast.parse(source).body, "")
    return found


def test_every_public_class_and_function_of_the_core_has_a_docstring() -> None:
    missing, counted = [], 0
    for path in core_files():
        for name, documented in public_definitions(path.read_text()):
            counted += 1
            if not documented:
                missing.append(f"{path.relative_to(ROOT)}: {name}")
    assert counted > 300, "the scan finds the core's definitions"
    assert not missing, f"{len(missing)} of {counted} public definitions have no docstring:\n" + "\n".join(missing)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("def f():\n    return 1\n", [("f", False)], id="a function without a docstring is counted"),
        pytest.param('def f():\n    """Why."""\n', [("f", True)], id="a function with one passes"),
        pytest.param("def _f():\n    pass\n", [], id="a private function is not public"),
        pytest.param(
            "class A:\n    def m(self):\n        pass\n    def _p(self):\n        pass\n",
            [("A", False), ("A.m", False)],
            id="a public class's public methods are counted",
        ),
        pytest.param("class _A:\n    def m(self):\n        pass\n", [], id="a private class's methods are not"),
        pytest.param("@overload\ndef f(x: int) -> int: ...\n", [], id="an overload signature needs none"),
    ],
)
def test_what_counts_as_public(source: str, expected: list[tuple[str, bool]]) -> None:
    assert public_definitions(source) == expected
