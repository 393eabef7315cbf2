"""The registry of live secret values and the scrubber that removes them from text.

Masked types keep secrets out of ``repr``; this is the second wall: whatever text reaches a log line,
an exception message shown to an operator or a `plan` output passes through :func:`scrub`, which
replaces with ``***``:

- every registered value (client secrets, API keys, the access tokens the rotator obtains) as it is,
  JSON-escaped, percent-encoded, base64-encoded in both alphabets (alone, or anywhere inside a longer
  base64 text: all three alignments), and with any of its characters written as ``\\uXXXX``, ``\\"``
  or ``%XX`` (the text is also searched with those escapes decoded);
- the token after ``Bearer`` and anything shaped like a JWT, registered or not.

:func:`clip` is how text that a remote service wrote (an error's message) is made fit to show.
"""

from __future__ import annotations

import base64
import heapq
import json
import re
import threading
import time
from bisect import bisect_right
from collections import OrderedDict
from urllib.parse import quote, quote_plus

MASK = "***"
# Values shorter than this are not registered: masking one to three characters would blank out ordinary
# text in every line, and such a value protects nothing (at most ~100^3 guesses). A credential's `hint`
# is its first three characters, which Graph shows openly. Four to seven characters are scrubbed, at
# the price of masking the same letters inside other words.
MIN_LENGTH = 4
# Bounded so that a daemon running for years does not grow without end; a secret older than the
# newest few thousand is long retired.
_MAX_VALUES = 4096
# How much of a remote service's own message an error keeps.
CLIP_LENGTH = 200

# Forms of at least _KEY + _STRIDE - 1 characters are indexed by the _STRIDE windows of _KEY characters
# that end their text; any occurrence then covers one text window starting at a multiple of _STRIDE, so
# scrub() looks up only every _STRIDE-th window. The tail, not the head: every JWT starts the same way.
_KEY = 8
_STRIDE = 8
_LONG = _KEY + _STRIDE - 1
_URLSAFE = str.maketrans("+/", "-_")

_lock = threading.Lock()
_values: OrderedDict[str, tuple[str, ...]] = OrderedDict()  # value -> its forms, least recently used first
_expiring: dict[str, float] = {}  # tokens: value -> when it may be forgotten
_expiry_order: list[tuple[float, str]] = []  # a heap of the same, soonest first (stale entries skipped)
_form_users: dict[str, int] = {}  # two values may share a form; it is unindexed when the last one goes
_long: dict[str, set[tuple[str, int]]] = {}  # window -> (form, where the window starts in the form)
_short: dict[str, set[str]] = {}  # first MIN_LENGTH characters -> forms shorter than _LONG

# An escape that stands for one character: JSON's \uXXXX and \", \\, \/, \n..., and a percent-encoded
# ASCII byte.
_ESCAPE = re.compile(r'\\u[0-9a-fA-F]{4}|\\["\\/bfnrt]|%[0-7][0-9a-fA-F]')
_SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
# RFC 6750's b64token, at least 16 characters (so that prose like "a Bearer or PoP token" stays), not an
# auth-param of a challenge (`Bearer authorization="..."`).
_BEARER = re.compile(r'(?i)\bbearer(?:\s|%20|\\u0020)+(?>([A-Za-z0-9\-._~+/]{16,}))(?!=+\s*")=*')
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def _base64_forms(raw: bytes) -> set[str]:
    """``raw`` base64-encoded alone, and the characters it fixes wherever it sits inside a longer text."""
    forms = {base64.b64encode(raw).decode()}
    for align in range(3):
        encoded = base64.b64encode(b"\0" * align + raw).decode()
        # The first characters mix in the bytes before it, the last one the bytes after it.
        forms.add(encoded[-(-align * 4 // 3) : (align + len(raw)) * 8 // 6])
    return forms | {form.translate(_URLSAFE) for form in forms} | {form.rstrip("=") for form in forms}


def _forms(value: str) -> tuple[str, ...]:
    forms = {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""),
        quote_plus(value, safe=""),
        *_base64_forms(value.encode("utf-8")),
    }
    return tuple(form for form in forms if len(form) >= MIN_LENGTH)


def _index(form: str) -> None:
    _form_users[form] = _form_users.get(form, 0) + 1
    if _form_users[form] > 1:
        return
    if len(form) < _LONG:
        _short.setdefault(form[:MIN_LENGTH], set()).add(form)
        return
    for start in range(len(form) - _KEY - _STRIDE + 1, len(form) - _KEY + 1):
        _long.setdefault(form[start : start + _KEY], set()).add((form, start))


def _unindex(form: str) -> None:
    _form_users[form] -= 1
    if _form_users[form]:
        return
    del _form_users[form]
    if len(form) < _LONG:
        bucket = _short[form[:MIN_LENGTH]]
        bucket.discard(form)
        if not bucket:
            del _short[form[:MIN_LENGTH]]
        return
    for start in range(len(form) - _KEY - _STRIDE + 1, len(form) - _KEY + 1):
        window = form[start : start + _KEY]
        entries = _long[window]
        entries.discard((form, start))
        if not entries:
            del _long[window]


def _forget(value: str) -> None:
    for form in _values.pop(value):
        _unindex(form)
    _expiring.pop(value, None)


def _expire(value: str, until: float) -> None:
    _expiring[value] = until
    heapq.heappush(_expiry_order, (until, value))


def register(value: str, *, expires_at: float | None = None) -> None:
    """Remember ``value`` so that :func:`scrub` removes it from any text.

    ``expires_at`` (epoch seconds) is for access tokens: after it the value is forgotten, so that a
    daemon asking for a new token every hour does not fill the registry with dead ones.
    """
    if len(value) < MIN_LENGTH:
        return
    with _lock:
        now = time.time()
        while _expiry_order and _expiry_order[0][0] <= now:
            until, old = heapq.heappop(_expiry_order)
            if _expiring.get(old) == until:
                _forget(old)
        if value in _values:
            _values.move_to_end(value)
            if value not in _expiring:
                return
            if expires_at is None:
                del _expiring[value]  # registered for good now (e.g. as a Secret)
            elif expires_at > _expiring[value]:
                _expire(value, expires_at)
            return
        forms = _forms(value)
        _values[value] = forms
        for form in forms:
            _index(form)
        if expires_at is not None:
            _expire(value, expires_at)
        while len(_values) > _MAX_VALUES:
            _forget(next(iter(_values)))


def _find(text: str) -> list[tuple[int, int]]:
    """Where registered forms occur in ``text``, as (start, end) spans; the caller holds the lock."""
    found: list[tuple[int, int]] = []
    if _long:
        lookup = _long.get
        for at in range(0, len(text) - _KEY + 1, _STRIDE):
            for form, offset in lookup(text[at : at + _KEY], ()):
                start = at - offset
                if start >= 0 and text.startswith(form, start):
                    found.append((start, start + len(form)))
    if _short:
        short = _short.get
        for at in range(len(text) - MIN_LENGTH + 1):
            for form in short(text[at : at + MIN_LENGTH], ()):
                if text.startswith(form, at):
                    found.append((at, at + len(form)))
    return found


class _Decoded:
    """``text`` with its one-character escapes decoded, and the way back to positions in ``text``."""

    def __init__(self, text: str) -> None:
        pieces: list[str] = []
        # One entry per segment: where it starts in the view, where it starts and ends in the text, and
        # whether it is literal text (a character-for-character copy) or one decoded escape.
        self.view_starts: list[int] = []
        self.segments: list[tuple[int, int, bool]] = []
        view = text_at = 0
        for match in _ESCAPE.finditer(text):
            if match.start() > text_at:
                self._add(pieces, text[text_at : match.start()], view, text_at, match.start(), literal=True)
                view += match.start() - text_at
            self._add(pieces, _unescape(match.group()), view, match.start(), match.end(), literal=False)
            view += 1
            text_at = match.end()
        if text_at < len(text):
            self._add(pieces, text[text_at:], view, text_at, len(text), literal=True)
        self.text = "".join(pieces)

    def _add(self, pieces: list[str], piece: str, view: int, start: int, end: int, *, literal: bool) -> None:
        pieces.append(piece)
        self.view_starts.append(view)
        self.segments.append((start, end, literal))

    def _text_span(self, at: int) -> tuple[int, int]:
        index = bisect_right(self.view_starts, at) - 1
        start, end, literal = self.segments[index]
        if literal:
            position = start + at - self.view_starts[index]
            return position, position + 1
        return start, end

    def spans(self, found: list[tuple[int, int]]) -> list[tuple[int, int]]:
        return [(self._text_span(start)[0], self._text_span(end - 1)[1]) for start, end in found]


def _unescape(escape: str) -> str:
    if escape[0] == "%":
        return chr(int(escape[1:], 16))
    if escape[1] == "u":
        return chr(int(escape[2:], 16))
    return _SIMPLE_ESCAPES[escape[1]]


def _pattern_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    if "eyJ" in text:
        spans.extend(match.span() for match in _JWT.finditer(text))
    if "earer" in text or "EARER" in text:
        spans.extend((match.start(1), match.end()) for match in _BEARER.finditer(text))
    return spans


def _masked(text: str, spans: list[tuple[int, int]]) -> str:
    out: list[str] = []
    done = 0
    for start, end in sorted(spans):
        if end <= done:
            continue
        if start > done:
            out.append(text[done:start])
        if not out or out[-1] != MASK:  # overlapping or adjacent finds become one mask
            out.append(MASK)
        done = end
    out.append(text[done:])
    return "".join(out)


def scrub(text: str) -> str:
    """``text`` with every registered secret, bearer token and JWT replaced by ``***``."""
    if len(text) < MIN_LENGTH:
        return text
    spans = _pattern_spans(text)
    with _lock:
        if _long or _short:
            spans.extend(_find(text))
            if "\\" in text or "%" in text:
                decoded = _Decoded(text)
                if decoded.text != text:
                    spans.extend(decoded.spans(_find(decoded.text)))
    return _masked(text, spans) if spans else text


def clip(value: object, limit: int = CLIP_LENGTH) -> str:
    """Text a remote service wrote, fit for a message: scrubbed, on one line, at most ``limit`` characters.

    Scrubbed before it is cut: a cut could leave a piece of a secret no longer recognisable as one.
    """
    text = " ".join(_CONTROL.sub(" ", scrub(str(value))).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
