"""A Secret never prints, never pickles, and whatever text reaches an operator is scrubbed of it."""

from __future__ import annotations

import copy
import json
import logging
import pickle
from collections.abc import Callable
from typing import Any

import pytest

from service import redact
from service.secret import MASK, Secret

VALUE = "Q8~unit-test-secret-value-0123456789abcdefg"

SHOWN: dict[str, Callable[[Secret], str]] = {
    "repr masks it": repr,
    "str masks it": str,
    "an f-string masks it": lambda s: f"{s}",
    "an f-string with a format spec masks it": lambda s: f"{s:>60}",
    "an f-string with !r masks it": lambda s: f"{s!r}",
    "str.format masks it": "{}".format,
    "percent formatting masks it": lambda s: "%s" % s,  # noqa: UP031  the old style is what logging uses
    "a list's repr masks it": lambda s: repr([s]),
    "a dict's repr masks it": lambda s: repr({"client_secret": s}),
    "a logging record masks it": lambda s: logging.LogRecord(
        "t", logging.INFO, __file__, 1, "got %s", (s,), None
    ).getMessage(),
}


@pytest.mark.parametrize("show", SHOWN.values(), ids=SHOWN.keys())
def test_a_secret_never_shows_its_value(show: Callable[[Secret], str]) -> None:
    text = show(Secret(VALUE))
    assert VALUE not in text
    assert MASK in text


SERIALISED: dict[str, Callable[[Secret], Any]] = {
    "pickle refuses it": pickle.dumps,
    "pickle protocol 0 refuses it": lambda s: pickle.dumps(s, protocol=0),
    "a shallow copy refuses it": copy.copy,
    "json refuses it": json.dumps,
}


@pytest.mark.parametrize("serialise", SERIALISED.values(), ids=SERIALISED.keys())
def test_a_secret_is_never_serialised(serialise: Callable[[Secret], Any]) -> None:
    with pytest.raises(TypeError) as info:
        serialise(Secret(VALUE))
    assert VALUE not in str(info.value)


def test_a_deep_copy_is_the_same_secret() -> None:
    secret = Secret(VALUE)
    assert copy.deepcopy(secret) is secret
    assert copy.deepcopy({"s": secret})["s"] is secret


def test_reveal_and_hint() -> None:
    secret = Secret(VALUE)
    assert secret.reveal() == VALUE
    assert secret.hint == "Q8~"


EQUALITY = {
    "two secrets with the same value are equal": (Secret(VALUE), Secret(VALUE), True),
    "two secrets with different values differ": (Secret(VALUE), Secret(VALUE + "x"), False),
    "a secret never equals its plain text": (Secret(VALUE), VALUE, False),
}


@pytest.mark.parametrize(("left", "right", "equal"), EQUALITY.values(), ids=EQUALITY.keys())
def test_equality(left: Secret, right: object, equal: bool) -> None:
    assert (left == right) is equal
    if equal:
        assert hash(left) == hash(right)


REFUSED = {
    "an empty secret is refused": "",
    "a secret that is not a string is refused": 12345678,
    "None is no secret": None,
}


@pytest.mark.parametrize("value", REFUSED.values(), ids=REFUSED.keys())
def test_a_secret_must_be_a_non_empty_string(value: Any) -> None:
    with pytest.raises(ValueError, match="non-empty string"):
        Secret(value)


def test_a_secret_has_no_attribute_dict_to_leak_through() -> None:
    assert not hasattr(Secret(VALUE), "__dict__")


QUOTED = 'multi"line\\secret\nvalue-0123456789'
UNICODE = "sécret-välue-with-ünïcode-0123"
SHORT = "short7!"
TOO_SHORT = "ab3"
OUTER = "outer-prefix-" + VALUE + "-suffix"

SCRUBBED = {
    "a secret in a sentence is masked": (
        VALUE,
        f"token request with {VALUE} failed",
        f"token request with {MASK} failed",
    ),
    "every occurrence is masked": (VALUE, f"{VALUE}/{VALUE}", f"{MASK}/{MASK}"),
    "a secret in a JSON body is masked": (
        QUOTED,
        json.dumps({"clientSecret": QUOTED}),
        json.dumps({"clientSecret": MASK}),
    ),
    "a secret with non-ASCII in an ASCII JSON body is masked": (
        UNICODE,
        json.dumps({"clientSecret": UNICODE}),
        json.dumps({"clientSecret": MASK}),
    ),
    "a secret in a raw string is masked": (QUOTED, f"body={QUOTED}", f"body={MASK}"),
    "a secret that contains another is masked whole": (OUTER, f"[{OUTER}]", f"[{MASK}]"),
    "text without a secret is unchanged": (VALUE, "nothing to see here", "nothing to see here"),
    "a value of seven characters is masked too": (SHORT, f"value {SHORT} here", f"value {MASK} here"),
    "a value shorter than 4 characters is not registered, it would mask ordinary words": (
        TOO_SHORT,
        f"value {TOO_SHORT} here",
        f"value {TOO_SHORT} here",
    ),
}


@pytest.mark.parametrize(("value", "text", "expected"), SCRUBBED.values(), ids=SCRUBBED.keys())
def test_scrub(value: str, text: str, expected: str) -> None:
    Secret(value)
    Secret(VALUE)  # registered too, so that OUTER's inner value is a second registered secret
    assert redact.scrub(text) == expected


def test_scrub_masks_a_secret_in_a_traceback() -> None:
    secret = Secret(VALUE)
    try:
        raise RuntimeError(f"SDK said: invalid client secret {secret.reveal()}")
    except RuntimeError as exc:
        text = redact.scrub(f"{exc!r}")
    assert VALUE not in text
    assert MASK in text
