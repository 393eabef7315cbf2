"""The config's YAML reader gives exactly what ``yaml.safe_load`` gives: the same values of the same types,
shared where an alias shares them, and the same error where it refuses."""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from service.config.yaml_reader import SAFE_LOADER, safe_load


def reference(text: str) -> Any:
    return yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 - the safe loader itself


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (True == 1 in Python; not here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


DOCUMENTS = {
    "a config's shape": """
cloud: {authority_host: 'https://127.0.0.1:8443', ca_bundle: null}
defaults: {lifetime: 90d, max_credentials: 4, retire_unmanaged: false, renew_before_ratio: 0.25}
targets:
  - name: app-00001
    tenant_id: 00000000-0000-0000-0000-000000000001
    sinks:
      - {type: keyvault, vault_url: "https://v.vault.azure.net", verify_challenge_resource: no}
""",
    "YAML 1.1 booleans in every spelling": "[yes, No, TRUE, off, On, y, n, 'yes', \"on\"]",
    "nulls": "[~, null, Null, NULL, '', 'null', {a: }]",
    "integers in every base": "[0, -17, +3, 0x1F, 0o17, 017, 0b101, 1_000, 190:20:30, '42']",
    "floats": "[1.5, -0.5e3, .inf, -.Inf, .NaN, 1_0.5, 6.8523015e+5, 190:20:30.15, 1e3]",
    "timestamps and dates": "[2001-12-14, 2001-12-14t21:59:43.10-05:00, 2001-12-14 21:59:43.10, '2001-12-14']",
    "strings that look like something": "[1.2.3, 0x, 12:30, --1, =x, '=', a: b, 'a: b', '-', v1.0, 1e, .5.]",
    "block scalars": "a: |\n  line one\n  line two\nb: >\n  folded\n  text\nc: |-\n  kept\n",
    "anchors and aliases": "a: &x {k: [1, 2]}\nb: *x\nc: &y 7\nd: *y\ne: [*x, *y]\n",
    "explicit string tag": "[!!str 3, !!str yes, ! 5, !!str , x]",
    "keys of every kind": "{1: a, 2.5: b, true: c, ~: d, 2001-12-14: e, '1': f}",
    "duplicate keys: the last wins": "a: 1\na: 2\n",
    "an empty document": "",
    "a comment alone": "# nothing\n",
    "a scalar document": "just text",
    "an explicit document": "--- \na: 1\n...\n",
    "unicode": 'name: \u00e9t\u00e9 \u2603\nq: "\\u263a \\x41"\n',
    "a merge key": "base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n",
    "other explicit tags": "[!!int '3', !!float '2', !!bool 'yes', !!binary aGVsbG8=, !!set {a, b}]",
    "an ordered map": "!!omap [a: 1, b: 2]",
}
RECURSIVE = "a: &r [1, *r]\n"


@pytest.mark.parametrize("text", DOCUMENTS.values(), ids=DOCUMENTS.keys())
def test_it_reads_what_safe_load_reads(text: str) -> None:
    assert same(safe_load(text), reference(text))


def test_an_alias_is_the_same_object_as_its_anchor() -> None:
    data = safe_load(DOCUMENTS["anchors and aliases"])
    assert data["b"] is data["a"]
    assert data["e"][0] is data["a"]


def test_a_recursive_alias_refers_to_itself() -> None:
    data = safe_load(RECURSIVE)
    assert data["a"][1] is data["a"]


ERRORS = {
    "two documents": "a: 1\n---\nb: 2\n",
    "an undefined alias": "a: *nowhere\n",
    "a duplicate anchor": "a: &x 1\nb: &x 2\n",
    "an unhashable key": "? [1, 2]\n: a\n",
    "a bad indentation": "a:\n  b: 1\n c: 2\n",
    "an unclosed flow": "a: [1, 2\n",
    "an unknown tag": "a: !thing 1\n",
    "the value tag": "a: =\n",
    "a tab where YAML refuses one": "a:\n\t- 1\n",
}


@pytest.mark.parametrize("text", ERRORS.values(), ids=ERRORS.keys())
def test_it_refuses_what_safe_load_refuses_in_the_same_words(text: str) -> None:
    with pytest.raises(yaml.YAMLError) as expected:
        reference(text)
    with pytest.raises(yaml.YAMLError) as found:
        safe_load(text)
    assert type(found.value) is type(expected.value)
    assert str(found.value) == str(expected.value)


TRICKY = [
    "yes",
    "no",
    "on",
    "~",
    "null",
    "",
    "0x1F",
    "017",
    "1_000",
    "1:20",
    ".inf",
    ".nan",
    "2001-12-14",
    "-",
    "=",
    "<<",
    "1e3",
    "+.5",
    "0o7",
    "true",
    "False",
    "12:30:45.5",
    "0b11",
]
scalars = st.one_of(
    st.sampled_from(TRICKY),
    st.text(alphabet="ab019.:-+_ xeEyYnN~", max_size=12),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
)
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), inner, max_size=5)
    ),
    max_leaves=30,
)


@given(documents, st.booleans())
def test_any_document_safe_dump_writes_reads_the_same(data: Any, flow: bool) -> None:
    text = yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True)
    assert same(safe_load(text), reference(text))


@given(st.lists(st.sampled_from(TRICKY) | st.text(alphabet="ab019.:-+_ xeEyYnN~#&*!'\"[]{},", max_size=10), max_size=6))
def test_any_plain_scalars_in_a_flow_sequence_read_the_same(words: list[str]) -> None:
    """Text no dumper wrote: plain scalars as a person types them, errors included."""
    text = "[" + ", ".join(words) + "]"
    try:
        expected = reference(text)
    except yaml.YAMLError as error:
        refused = error
    else:
        assert same(safe_load(text), expected)
        return
    with pytest.raises(type(refused)) as found:
        safe_load(text)
    assert str(found.value) == str(refused)
