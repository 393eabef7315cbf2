"""The registry of live secret values and the scrubber that removes them from text.

Masked types keep secrets out of ``repr``; this is the second wall: whatever text reaches a log line,
an exception message shown to an operator or a `plan` output passes through :func:`scrub`, which
replaces every registered value (and its JSON-escaped form) with ``***``.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict

MASK = "***"
# Bounded so that a daemon running for years does not grow without end; a secret older than the
# newest few thousand is long retired.
_MAX_VALUES = 4096
# Shorter strings would scrub ordinary words; Entra secrets are 40 characters, API keys longer.
_MIN_LENGTH = 8

_lock = threading.Lock()
_values: OrderedDict[str, None] = OrderedDict()
# First _MIN_LENGTH characters -> the values starting with them: scrub() looks up each window of
# the text once instead of searching the text once per registered value.
_by_prefix: dict[str, set[str]] = {}


def _forms(value: str) -> set[str]:
    return {value, json.dumps(value)[1:-1]}


def register(value: str) -> None:
    """Remember ``value`` so that :func:`scrub` removes it from any text."""
    if len(value) < _MIN_LENGTH:
        return
    with _lock:
        if value in _values:
            _values.move_to_end(value)
            return
        _values[value] = None
        for form in _forms(value):
            _by_prefix.setdefault(form[:_MIN_LENGTH], set()).add(form)
        while len(_values) > _MAX_VALUES:
            old, _ = _values.popitem(last=False)
            for form in _forms(old):
                bucket = _by_prefix.get(form[:_MIN_LENGTH])
                if bucket is not None:
                    bucket.discard(form)
                    if not bucket:
                        del _by_prefix[form[:_MIN_LENGTH]]


def scrub(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    if len(text) < _MIN_LENGTH or not _by_prefix:
        return text
    with _lock:
        found = {
            form
            for i in range(len(text) - _MIN_LENGTH + 1)
            for form in _by_prefix.get(text[i : i + _MIN_LENGTH], ())
            if text.startswith(form, i)
        }
    # Longest first, so that a value containing another is masked whole.
    for form in sorted(found, key=len, reverse=True):
        text = text.replace(form, MASK)
    return text
