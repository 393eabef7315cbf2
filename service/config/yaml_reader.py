"""YAML to Python exactly as ``yaml.safe_load`` reads it, in a quarter of the time for a large config.

``yaml.safe_load``, even on libyaml's parser, builds a node for every scalar (asking PyYAML's
resolver, in Python, what each one is) and then constructs the Python objects from the nodes: most of
the 10,000-target config's load time. Here the parser's events become the objects directly. Plain
scalars are told apart by the resolver's own patterns and converted by the safe constructor's own
functions; anything this reader does not do itself (explicit tags other than ``!!str``, merge keys,
recursive aliases, a second document, anything unexpected) is read again by ``yaml.load`` with the safe
loader, which also words every error. So the result, and every error, is ``yaml.safe_load``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)
from yaml.nodes import ScalarNode

# libyaml's parser with the same safe constructors: a 10,000-target config parses in a fraction of the time.
SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STR = "tag:yaml.org,2002:str"
_IMPLICIT: dict[str | None, list[tuple[str, Any]]] = SAFE_LOADER.yaml_implicit_resolvers
_CONSTRUCTOR = SafeConstructor()
# The plain scalars this reader converts itself, with the safe constructor's own functions.
_CONVERT: dict[str, Callable[[Any, ScalarNode], Any]] = {
    f"tag:yaml.org,2002:{name}": SafeConstructor.yaml_constructors[f"tag:yaml.org,2002:{name}"]
    for name in ("null", "bool", "int", "float", "timestamp")
}


class _Unusual(Exception):
    """Something only the full loader reads (or words as an error)."""


def safe_load(text: str) -> Any:
    """``yaml.safe_load(text)``'s result, or its error."""
    loader = SAFE_LOADER(text)
    try:
        return _Reader(loader.get_event).document()
    except _Unusual:
        pass
    finally:
        loader.dispose()
    return yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 - a safe loader, libyaml's when installed


class _Reader:
    def __init__(self, next_event: Callable[[], Event]) -> None:
        self._next = next_event
        self._anchors: dict[str, Any] = {}
        self._building: set[str] = set()  # anchors of collections not finished: an alias to one is recursive

    def document(self) -> Any:
        self._expect(StreamStartEvent)
        event = self._next()
        if isinstance(event, StreamEndEvent):
            return None  # an empty stream, as safe_load reads it
        if not isinstance(event, DocumentStartEvent):
            raise _Unusual
        value = self._value(self._next())
        self._expect(DocumentEndEvent)
        self._expect(StreamEndEvent)  # a second document: the full loader says it expected one
        return value

    def _expect(self, kind: type[Event]) -> None:
        if not isinstance(self._next(), kind):
            raise _Unusual

    def _value(self, event: Event) -> Any:
        kind = type(event)
        if kind is ScalarEvent:
            value = _scalar(event)
        elif kind is MappingStartEvent:
            value = self._mapping(event)
        elif kind is SequenceStartEvent:
            value = self._sequence(event)
        elif kind is AliasEvent:
            anchor = event.anchor  # type: ignore[attr-defined]
            if anchor not in self._anchors or anchor in self._building:
                raise _Unusual  # undefined (an error), or recursive
            return self._anchors[anchor]
        else:
            raise _Unusual
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            if anchor in self._anchors and anchor not in self._building:
                raise _Unusual  # defined twice: the composer's error
            self._anchors[anchor] = value
            self._building.discard(anchor)
        return value

    def _collection(self, event: Event, value: Any) -> None:
        if getattr(event, "tag", None) not in (None, "!"):
            raise _Unusual
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            if anchor in self._anchors:
                raise _Unusual
            self._anchors[anchor] = value
            self._building.add(anchor)

    def _mapping(self, event: Event) -> dict[Any, Any]:
        mapping: dict[Any, Any] = {}
        self._collection(event, mapping)
        while True:
            key_event = self._next()
            if type(key_event) is MappingEndEvent:
                return mapping
            if type(key_event) is ScalarEvent and key_event.value == "<<" and key_event.implicit[0]:
                raise _Unusual  # a merge key
            key = self._value(key_event)
            if not isinstance(key, Hashable):
                raise _Unusual  # the constructor's "found unhashable key"
            mapping[key] = self._value(self._next())

    def _sequence(self, event: Event) -> list[Any]:
        sequence: list[Any] = []
        self._collection(event, sequence)
        while True:
            item = self._next()
            if type(item) is SequenceEndEvent:
                return sequence
            sequence.append(self._value(item))


def _scalar(event: Any) -> Any:
    tag, value, implicit = event.tag, event.value, event.implicit
    if tag is None or tag == "!":
        if not implicit[0]:
            return value  # quoted: a string
        tag = _resolve(value)
    if tag == _STR:
        return value
    convert = _CONVERT.get(tag)
    if convert is None:
        raise _Unusual
    return convert(_CONSTRUCTOR, ScalarNode(tag, value))


def _resolve(value: str) -> str:
    """The tag PyYAML's resolver gives a plain scalar: the first of its patterns for the first character."""
    for tag, pattern in _IMPLICIT.get(value[:1] if value else "", []) + _IMPLICIT.get(None, []):
        if pattern.match(value):
            return tag
    return _STR
