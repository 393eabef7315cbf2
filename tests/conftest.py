"""Suite-wide guard: no secret or access token the emulator ever issued may appear in anything a test produced.

After every test phase, the captured stdout, stderr and log records and the failure report are
searched (tests/canary.py) for every secret text the emulator generated or seeded in this process and
every access token it issued, as they are and decoded from base64, ``\\u`` escapes and URL encoding.
Tests that capture output themselves (a subprocess, a log stream) call `assert_no_secrets` on it.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import settings

from tests.canary import issued, leaks

# Hypothesis: the full number of examples in CI (.ci/run sets HYPOTHESIS_PROFILE=ci, and CI=true is set
# there too), a tenth of it in a developer's loop. No example database: nothing is left in the tree. No
# deadline: a loaded machine must not fail a property. CI draws the same examples on every run
# (derandomize): a gate that passes or fails by the luck of the draw says nothing about the change it
# gates. Looking for new counterexamples is a run of its own: HYPOTHESIS_PROFILE=explore draws afresh,
# HYPOTHESIS_EXPLORE_TIMES (default 10) times the full number of examples (./dev.sh explore).
PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI", "").lower() in ("1", "true") else "dev")
EXPLORE_TIMES = int(os.environ.get("HYPOTHESIS_EXPLORE_TIMES") or 10)
settings.register_profile("ci", deadline=None, database=None, derandomize=True)
settings.register_profile("explore", deadline=None, database=None, max_examples=100 * EXPLORE_TIMES)
settings.register_profile("dev", deadline=None, database=None, max_examples=20)
settings.load_profile(PROFILE)


def examples(full: int) -> int:
    """How many examples a property gets: ``full`` under the ci profile, a tenth (at least 20) under dev,
    ``HYPOTHESIS_EXPLORE_TIMES`` times it under explore."""
    if PROFILE == "explore":
        return full * EXPLORE_TIMES
    return full if PROFILE == "ci" else max(20, full // 10)


# The emulator world (`emu`, `world` fixtures) for the integration, reliability and container tests.
pytest_plugins = ["tests.world"]


def issued_secrets() -> set[str]:
    """Every secret and access token the emulators of this process issued (the canary set)."""
    return issued()


def assert_no_secrets(text: str, where: str = "output") -> None:
    leaked = leaks(text)
    assert not leaked, f"{leaked} issued secret(s) or token(s) appear in {where}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    outcome = yield
    report = outcome.get_result()
    texts = [content for _, content in report.sections]
    if report.longrepr is not None:
        texts.append(str(report.longrepr))
    for text in texts:
        if leaks(text):
            report.outcome = "failed"
            report.longrepr = (
                f"CANARY: a secret or access token issued by the emulator appears in the {report.when} phase's "
                "captured output or failure report, maybe encoded (the text is withheld so that the report itself "
                "does not leak it)"
            )
            report.sections = []
            return
