"""The files shipped next to the code say what the code says."""

from __future__ import annotations

import json
from pathlib import Path

from service.config.document import json_schema
from service.config.loading import load_config

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_json_schema_is_the_one_the_code_generates() -> None:
    committed = json.loads((ROOT / "config" / "schema.json").read_text())
    assert committed == json_schema(), "regenerate it: secret-rotator config schema > config/schema.json"


def test_the_example_config_is_valid() -> None:
    config = load_config(ROOT / "config" / "example.yaml", environ={"DIMESCHEDULER_API_KEY": "an-api-key-value"})
    assert [t.name for t in config.targets] == ["dime-exchange"]
    assert [s.type for s in config.targets[0].sinks] == ["keyvault", "dimescheduler"]
