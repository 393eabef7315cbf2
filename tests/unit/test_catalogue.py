"""service/catalogue.py is the one list of event names and reasons: the code logs nothing else, README
documents the contract ones, and rotation.failed's reasons are the fixed set README names."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from service.catalogue import CONTRACT_EVENTS, Event, FailureReason, Reason
from service.errors import FailureReason as ErrorsFailureReason
from service.model import Reason as ModelReason

ROOT = Path(__file__).resolve().parents[2]
LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical", "msg"}
# Helpers that take an event and log it (http_endpoints: rate-limited warnings).
LOGGING_HELPERS = {"_warn"}


def core_files() -> list[Path]:
    """The service's modules, the emulator (which imports nothing of the service and has its own lines) aside."""
    return [p for p in sorted((ROOT / "service").rglob("*.py")) if "emulator" not in p.relative_to(ROOT).parts]


def log_calls(source: str) -> list[ast.Call]:
    """Every call of a logger method (or of a helper that logs) with a first argument, but the one inside a
    logging helper that passes on its own ``event: Event`` parameter (mypy holds its callers to Event)."""
    tree = ast.parse(source)
    passed_on = set()
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef) and function.name in LOGGING_HELPERS:
            typed = {
                a.arg for a in function.args.args if a.annotation is not None and ast.unparse(a.annotation) == "Event"
            }
            passed_on |= {
                id(n)
                for n in ast.walk(function)
                if isinstance(n, ast.Call) and n.args and isinstance(n.args[0], ast.Name) and n.args[0].id in typed
            }
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.args
        and node.func.attr in LOG_METHODS | LOGGING_HELPERS
        and id(node) not in passed_on
    ]


def named_event(call: ast.Call) -> str | None:
    """The Event member the call logs, or None when its event is anything but ``Event.<NAME>``."""
    event = call.args[0]
    if isinstance(event, ast.Attribute) and isinstance(event.value, ast.Name) and event.value.id == "Event":
        return event.attr
    return None


def test_every_log_call_names_an_event_of_the_catalogue() -> None:
    wrong, seen = [], set()
    for path in core_files():
        for call in log_calls(path.read_text()):
            name = named_event(call)
            if name is None or name not in Event.__members__:
                wrong.append(f"{path.relative_to(ROOT)}:{call.lineno}: {ast.unparse(call.args[0])}")
            else:
                seen.add(Event[name])
    assert not wrong, "log events must be service.catalogue.Event members:\n" + "\n".join(wrong)
    # Not vacuous: the scan finds the pass's and the daemon's events, and (nearly) every event is logged.
    assert {Event.RUN_STARTED, Event.ROTATION_FAILED, Event.DAEMON_STARTED, Event.HTTP_BAD_REQUEST} <= seen
    assert set(Event) - seen == set(), "an event no code logs: remove it from the catalogue"


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        pytest.param('log.info("run.started", targets=1)', True, id="a string literal is flagged"),
        pytest.param('log.warning(f"sink.{kind}")', True, id="an f-string is flagged"),
        pytest.param("self._warn(NAME, 'text')", True, id="a constant from elsewhere is flagged"),
        pytest.param("log.info(Event.RUN_STARTED, targets=1)", False, id="an Event member passes"),
        pytest.param(
            "def _warn(self, event: str) -> None:\n    log.warning(event)",
            True,
            id="a helper's parameter that is no Event is flagged",
        ),
    ],
)
def test_the_scan_tells_a_catalogue_event_from_anything_else(source: str, flagged: bool) -> None:
    [call] = log_calls(source)
    assert (named_event(call) is None) is flagged


def test_a_helper_may_pass_on_its_event_parameter() -> None:
    assert log_calls("def _warn(self, event: Event) -> None:\n    log.warning(event)") == []


def readme_events() -> set[str]:
    """The event names README's "Log events" table lists (every back-quoted name in its first column)."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Log events") :]
    table = section[section.index("| event |") :].split("\n\n", 1)[0]
    names: set[str] = set()
    for row in table.splitlines()[2:]:
        names |= set(re.findall(r"`([a-z_]+\.[a-z_]+)`", row.split("|")[1]))
    return names


def test_readme_lists_every_contract_event_and_no_event_that_is_not_one() -> None:
    listed = readme_events()
    assert {str(e) for e in CONTRACT_EVENTS} <= listed
    assert listed <= {str(e) for e in Event}


def test_readme_names_every_failure_reason() -> None:
    text = (ROOT / "README.md").read_text()
    sentence = text[text.index("`reason` of `rotation.failed` is one of") :].split(";", 1)[0]
    assert set(re.findall(r"`([a-z_]+)`", sentence)) - {"reason"} == {str(r) for r in FailureReason}


def test_model_and_errors_speak_the_catalogues_words() -> None:
    assert ModelReason is Reason
    assert ErrorsFailureReason is FailureReason
