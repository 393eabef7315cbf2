"""The suite's secret canary: does a text hold any secret or access token an emulator issued, in any encoding?

The text is searched as it is and decoded: ``\\uXXXX`` and JSON escapes, percent-encoding, and every run of
base64 (both alphabets, at each of the four offsets a run can start at). Written apart from the
service's own scrubber on purpose: the oracle must not share the code it judges.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from urllib.parse import unquote, unquote_plus

try:
    from service.emulator import Emulator
except ImportError:  # pragma: no cover - the emulator is part of the package
    Emulator = None  # type: ignore[assignment,misc]

_JSON_ESCAPE = re.compile(r'\\u([0-9a-fA-F]{4})|\\(["\\/bfnrt])')
_SIMPLE = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{12,}")  # padding left out: a run is decoded at each offset
_TO_STANDARD = str.maketrans("-_", "+/")
# Values at least this long are found through an index of their last windows (see _Index); shorter
# ones, if any, by a plain search.
_KEY, _STRIDE = 8, 8
_LONG = _KEY + _STRIDE - 1


def issued() -> set[str]:
    """Every secret text and access token any emulator in this process generated, seeded or issued."""
    if Emulator is None:
        return set()
    return set(Emulator.issued_secrets()) | set(Emulator.issued_tokens())


def _unescape(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        return chr(int(match.group(1), 16)) if match.group(1) else _SIMPLE[match.group(2)]

    return _JSON_ESCAPE.sub(one, text)


def _base64_decoded(text: str) -> str:
    decoded = []
    for run in _BASE64_RUN.findall(text):
        standard = run.translate(_TO_STANDARD)
        for skip in range(4):
            chunk = standard[skip:]
            if len(chunk) % 4 == 1:
                chunk = chunk[:-1]  # one character alone holds no whole byte
            try:
                decoded.append(base64.b64decode(chunk + "=" * (-len(chunk) % 4)).decode("utf-8", errors="replace"))
            except (binascii.Error, ValueError):
                continue
    return "\n".join(decoded)


def views(text: str) -> list[str]:
    """``text`` and what it says once decoded; each escape and encoding decoded once, base64 after the others."""
    found = [text]
    if "\\" in text:
        found.append(_unescape(text))
    if "%" in text:
        found.extend({unquote(text), unquote_plus(text)})
    found.append(_base64_decoded("\n".join(found)))
    return found


class _Index:
    """The values by the eight windows of eight characters that end them: a text is then looked up
    only at every eighth position, fast enough to run after every test phase."""

    def __init__(self, values: set[str]) -> None:
        self.size = len(values)
        self.windows: dict[str, list[tuple[str, int]]] = {}
        self.short = [v for v in values if 0 < len(v) < _LONG]
        for value in values:
            if len(value) >= _LONG:
                for start in range(len(value) - _KEY - _STRIDE + 1, len(value) - _KEY + 1):
                    self.windows.setdefault(value[start : start + _KEY], []).append((value, start))

    def leaked(self, text: str) -> set[str]:
        found = {v for v in self.short if v in text}
        for at in range(0, len(text) - _KEY + 1, _STRIDE):
            for value, offset in self.windows.get(text[at : at + _KEY], ()):
                if at >= offset and text.startswith(value, at - offset):
                    found.add(value)
        return found


_lock = threading.Lock()
_index = _Index(set())


def leaks(text: str) -> int:
    """How many issued secrets and tokens ``text`` holds, in any of the encodings :func:`views` decodes."""
    global _index
    values = issued()
    with _lock:
        # The issued sets only grow: their size tells whether the index is current.
        if _index.size != len(values):
            _index = _Index(values)
        index = _index
    if not text or not values:
        return 0
    return len(set().union(*(index.leaked(view) for view in views(text))))
