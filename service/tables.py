"""Plain-text tables for the terminal: `plan`, `status`, bootstrap's steps and the demo's credentials."""

from __future__ import annotations

from collections.abc import Sequence


def table(rows: Sequence[Sequence[str]], indent: str = "") -> list[str]:
    """``rows`` (the first is the header) as lines of left-aligned columns two spaces apart, each line
    after ``indent`` and without trailing blanks."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
