"""Suite-wide guard: no secret the emulator ever issued may appear in anything a test produced.

After every test phase, the captured stdout, stderr and log records and the failure report are
searched for every secret text the emulator generated or seeded in this process (the canary). Tests
that capture output themselves (a subprocess, a log stream) call `assert_no_secrets` on it.
"""

from __future__ import annotations

from typing import Any

import pytest

# The emulator world (`emu`, `world` fixtures) for the integration, reliability and container tests.
pytest_plugins = ["tests.world"]

try:
    from service.emulator import Emulator
except ImportError:  # pragma: no cover - the emulator is part of the package
    Emulator = None  # type: ignore[assignment,misc]


def issued_secrets() -> set[str]:
    return set(Emulator.issued_secrets()) if Emulator is not None else set()


def assert_no_secrets(text: str, where: str = "output") -> None:
    leaked = [s for s in issued_secrets() if s and s in text]
    assert not leaked, f"{len(leaked)} issued secret(s) appear in {where}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    outcome = yield
    report = outcome.get_result()
    secrets = issued_secrets()
    if not secrets:
        return
    texts = [content for _, content in report.sections]
    if report.longrepr is not None:
        texts.append(str(report.longrepr))
    for text in texts:
        if any(s in text for s in secrets):
            report.outcome = "failed"
            report.longrepr = (
                f"CANARY: a secret issued by the emulator appears in the {report.when} phase's captured output "
                "or failure report (the text is withheld so that the report itself does not leak it)"
            )
            report.sections = []
            return
