"""The package as the container image holds it, without what .dockerignore leaves out (the emulator and the
demo): `emulator` and `demo` say they are not in this build and exit 2; the other commands are unaffected.

The package is copied without those files and run as `python -m service` from the copy. The worktree's
editable install would otherwise supply the missing modules, so the subprocess drops its import hook first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The worktree's editable install has an import hook that finds any module of the worktree's service/.
DROP_EDITABLE_FINDER = (
    "import sys; sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in f.__module__]; "
)
# Then run the package found on sys.path, as `python -m service` does.
RUN_FROM_COPY = DROP_EDITABLE_FINDER + (
    "import runpy; sys.argv[0] = 'secret-rotator'; runpy.run_module('service', run_name='__main__', alter_sys=True)"
)


def left_out_by_dockerignore() -> list[str]:
    """The paths under service/ that .dockerignore keeps out of the build context."""
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    return [line.rstrip("/") for line in lines if line.startswith("service/")]


@pytest.fixture(scope="module")
def image_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of service/ as the image's wheel holds it."""
    folder = tmp_path_factory.mktemp("image")
    shutil.copytree(ROOT / "service", folder / "service", ignore=shutil.ignore_patterns("__pycache__"))
    left_out = left_out_by_dockerignore()
    assert left_out, ".dockerignore leaves nothing of service/ out"
    for path in left_out:
        target = folder / path
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()
    return folder


def python(package: Path, code: str, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SECRET_ROTATOR_CONFIG")}
    return subprocess.run(
        [sys.executable, "-c", code, *argv],
        cwd=package,
        env={**env, "PYTHONPATH": str(package)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def secret_rotator(package: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return python(package, RUN_FROM_COPY, *argv)


def test_the_copy_runs_and_really_lacks_the_emulator(image_package: Path) -> None:
    """Guards the tests below: they would pass for the wrong reason if the copy did not run at all, and
    fail for the wrong reason if the emulator could still be imported."""
    done = secret_rotator(image_package, "config", "schema")
    probe = python(image_package, DROP_EDITABLE_FINDER + "import service.emulator")

    assert done.returncode == 0, done.stderr
    assert probe.returncode == 1
    assert "No module named 'service.emulator'" in probe.stderr


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(("emulator",), id="emulator says it is not in this build"),
        pytest.param(("emulator", "--port", "0"), id="emulator with its options says the same"),
        pytest.param(("demo",), id="demo says it is not in this build"),
        pytest.param(("demo", "--fast", "--keep"), id="demo with its options says the same"),
        pytest.param(("demo", "--help"), id="demo --help says the same"),
    ],
)
def test_a_left_out_command_says_where_to_get_it_and_exits_2(image_package: Path, argv: tuple[str, ...]) -> None:
    done = secret_rotator(image_package, *argv)

    assert done.returncode == 2, done.stderr
    assert f"`{argv[0]}` is not in this build" in done.stderr
    assert "./dev.sh" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_help_still_lists_every_command(image_package: Path) -> None:
    done = secret_rotator(image_package, "--help")

    assert done.returncode == 0, done.stderr
    for command in ("run", "plan", "status", "daemon", "bootstrap", "config", "emulator", "demo"):
        assert command in done.stdout
