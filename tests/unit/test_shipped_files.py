"""The files shipped next to the code say what the code says."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.cli import main
from service.config.document import Config, json_schema
from service.config.loading import load_config
from service.config.reference import anchor, reference

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_json_schema_is_the_one_the_code_generates() -> None:
    committed = json.loads((ROOT / "config" / "schema.json").read_text())
    assert committed == json_schema(), "regenerate it: secret-rotator config schema > config/schema.json"


def test_the_example_config_is_valid() -> None:
    config = load_config(ROOT / "config" / "example.yaml", environ={"DIMESCHEDULER_API_KEY": "an-api-key-value"})
    assert [t.name for t in config.targets] == ["dime-exchange"]
    assert [s.type for s in config.targets[0].sinks] == ["keyvault", "dimescheduler"]


# --- every config key documented, and the reference page generated from it -------------------------


def _properties(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any], bool]]:
    """(section, key, its schema, whether it is required) for every key of the file and of each $def."""
    for section, part in [("(top level)", schema), *schema["$defs"].items()]:
        for key, prop in part.get("properties", {}).items():
            yield section, key, prop, key in part.get("required", [])


def test_every_config_key_has_a_description_an_example_and_a_default_unless_required() -> None:
    undocumented = [
        f"{section}.{key}: {', '.join(missing)}"
        for section, key, prop, required in _properties(json_schema())
        if (
            missing := [what for what in ("description", "examples") if not prop.get(what)]
            + ([] if required or "default" in prop else ["default"])
        )
    ]

    assert undocumented == [], (
        "give each key Field(description=..., examples=[...]) and a default (see service/config/reference.py), "
        "then ./dev.sh docs"
    )


def test_the_committed_config_reference_is_the_one_the_code_generates() -> None:
    committed = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert committed == reference(), "regenerate it: ./dev.sh docs"


def test_the_config_reference_names_every_key_and_links_only_to_its_own_sections() -> None:
    text = reference()
    anchors = {anchor(line[3:]) for line in text.splitlines() if line.startswith("## ")}

    assert {key for _, key, _, _ in _properties(json_schema())} <= set(re.findall(r"^\| `(\w+)` \|", text, re.M))
    assert set(re.findall(r"\]\(#([^)]+)\)", text)) <= anchors


# --- the example configs pass `config check` -----------------------------------------------------------

EXAMPLES: dict[str, Callable[[Config], bool]] = {
    "keyvault-only.yaml": lambda c: all(s.type == "keyvault" for t in c.targets for s in t.sinks),
    "push-only.yaml": lambda c: all(s.type == "dimescheduler" for t in c.targets for s in t.sinks),
    "several-tenants.yaml": lambda c: len({t.tenant_id for t in c.targets}) > 1 and len(c.targets) > 2,
    "managed-identity.yaml": lambda c: c.credential.type == "managed_identity",
    "webhook.yaml": lambda c: any(s.type == "webhook" for t in c.targets for s in t.sinks),
    "kubernetes-state.yaml": lambda c: c.state.backend == "kubernetes",
    "maintenance-windows.yaml": lambda c: all(c.policy(t).windows for t in c.targets),
}


def _env_references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if set(value) == {"env"}:
            yield value["env"]
        for item in value.values():
            yield from _env_references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _env_references(item)


def test_the_examples_folder_holds_the_examples_this_test_checks() -> None:
    assert sorted(p.name for p in (ROOT / "config" / "examples").glob("*.yaml")) == sorted(EXAMPLES)


@pytest.mark.parametrize(("name", "shows"), EXAMPLES.items(), ids=EXAMPLES.keys())
def test_each_example_config_passes_config_check_and_shows_what_it_is_named_for(
    name: str,
    shows: Callable[[Config], bool],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = ROOT / "config" / "examples" / name
    text = path.read_text(encoding="utf-8")
    for variable in _env_references(yaml.safe_load(text)):
        monkeypatch.setenv(variable, f"a-value-for-{variable}")
    monkeypatch.delenv("SECRET_ROTATOR_CONFIG", raising=False)

    code = main(["config", "check", str(path)])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith(f"{path}: OK")
    assert f"secret-rotator config check config/examples/{name}" in text, "its header says how to check it"
    assert shows(load_config(path))
