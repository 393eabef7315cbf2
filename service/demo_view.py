"""What the demo shows: narration lines, and the app's credentials as a table kept up to date.

On a terminal the table (and a status line under it) is redrawn in place while narration scrolls
above it; elsewhere (a pipe, a CI log) narration is printed as it comes and the table once per step.
Everything written passes the redactor: key ids and dates only, never a secret.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from service import redact
from service.tables import table

_UP_AND_CLEAR = "\x1b[{n}F\x1b[J"  # to the start of the line n lines up, then clear to the end of the screen
_HIDE_CURSOR, _SHOW_CURSOR = "\x1b[?25l", "\x1b[?25h"
_KEY_ID = re.compile(r"\b([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


def short(key_id: str | None) -> str:
    """A key id's first 8 characters: enough to tell a demo's few credentials apart."""
    return key_id[:8] if key_id else "-"


def shorten_ids(text: str) -> str:
    """``text`` (a plan note, an event's detail) with each full key id cut to :func:`short`'s 8 characters."""
    return _KEY_ID.sub(r"\1", text)


def span(delta: timedelta) -> str:
    """``1m40s``, ``15s``, ``2h03m``: a duration the way the narration says it."""
    seconds = int(abs(delta).total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s" if seconds else f"{minutes}m"
    return f"{seconds}s"


@dataclass(frozen=True)
class Row:
    """One credential of the app as the demo shows it (``end`` None: it is gone from the app)."""

    key_id: str
    name: str
    managed: bool
    end: datetime | None
    vault: str  # what Key Vault holds of it: "" or a word like "holds"
    dime: str  # the same for Dime.Scheduler
    state: str
    signed_in: datetime | None = None  # its last sign-in as Entra's sign-in report shows it (it lags)


def render_table(rows: list[Row], now: datetime) -> list[str]:
    """The demo's credentials table at ``now``: one line per credential, what each consumer holds of it, and
    its last sign-in as far as Entra's report shows it."""
    header = ["KEY ID", "DISPLAY NAME", "MANAGED", "EXPIRES", "KEY VAULT", "DIME.SCHEDULER", "LAST SIGN-IN", "STATE"]
    cells = [header]
    for row in rows:
        if row.end is None:
            expires = "-"
        elif row.end <= now:
            expires = f"expired {span(now - row.end)} ago"
        else:
            expires = f"in {span(row.end - now)}"
        signed_in = f"{span(now - row.signed_in)} ago" if row.signed_in is not None else "-"
        cells.append(
            [
                short(row.key_id),
                row.name,
                "yes" if row.managed else "no",
                expires,
                row.vault or "-",
                row.dime or "-",
                signed_in,
                row.state,
            ]
        )
    return table(cells)


class Screen:
    """Narration that scrolls, and a block (the table, a status line) kept at the bottom."""

    def __init__(self, out: TextIO, *, live: bool | None = None) -> None:
        self._out = out
        self.live = out.isatty() if live is None else live
        self._block: list[str] = []
        self._status = ""
        self._drawn = 0  # lines of the block on screen now (live mode)
        self._at_gap = True  # the last line written was blank (or nothing was written yet)
        if self.live:
            self._write(_HIDE_CURSOR)

    def _write(self, text: str) -> None:
        self._out.write(redact.scrub(text))
        self._out.flush()
        if text.endswith("\n"):
            self._at_gap = text.endswith("\n\n") or text == "\n"

    def _fit(self, line: str) -> str:
        # A line wider than the terminal wraps, and the redraw would then erase too few lines.
        width = shutil.get_terminal_size().columns
        return line if len(line) < width else line[: max(width - 2, 10)] + "~"

    def _erase(self) -> None:
        if self.live and self._drawn:
            self._write(_UP_AND_CLEAR.format(n=self._drawn))
            self._drawn = 0

    def _draw(self) -> None:
        lines = ["", *self._block, *([self._status] if self._status else [])]
        self._write("".join(self._fit(line) + "\n" for line in lines))
        self._drawn = len(lines)

    def say(self, text: str = "") -> None:
        """A line of narration, above the block."""
        if not self.live:
            self._write(text + "\n")
            return
        self._erase()
        self._write(text + "\n")  # may wrap: it scrolls away and is never erased
        self._draw()

    def show(self, block: list[str], status: str = "") -> None:
        """Replace the block (redrawn at once on a terminal; printed by :meth:`snapshot` elsewhere)."""
        self._block, self._status = block, status
        if self.live:
            self._erase()
            self._draw()

    def gap(self) -> None:
        """A blank line, unless there is one already."""
        if not self._at_gap:
            self.say()

    def snapshot(self) -> None:
        """Print the block where it cannot be redrawn, so that each step's state is in the output."""
        if not self.live:
            self._write("".join(f"    {line}\n" for line in self._block) + "\n")

    def close(self) -> None:
        """Leave the block on screen as it is now; from here on, lines are printed plainly."""
        if self.live:
            self._erase()
            self._status = ""
            self._draw()
            self._write(_SHOW_CURSOR)
            self.live = False
            self._drawn = 0


class LogTail:
    """The engine's JSON log lines appended to a file since the last read."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0

    def read(self) -> list[dict[str, Any]]:
        """The complete lines appended since the last read, parsed (a line being written waits for the next)."""
        with self._path.open("rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written is read next time
        self._offset += len(complete)
        events = []
        for line in complete.decode(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # not one of ours (a stray line from a library): the log file keeps it
            if isinstance(event, dict):
                events.append(event)
        return events
