"""Podman for the image tests: a private storage, an offline Debian base, the image built once.

Everything podman keeps lives under ``$SECRET_ROTATOR_CACHE`` (default /var/tmp/secret-rotator-ci):
its config files, its image storage, the debootstrap root filesystem and the base imported from it.
The base and the build's layer cache survive between runs; the image and containers a run makes
are removed at its end. Delete the folder to start over.

The machine's settings come from measurements on the CI machine (Debian 12, root, no Docker engine,
no registry): runc, because crun refuses its hybrid cgroups; cgroupfs; events to a file; ulimits no
higher than the host's hard limits; the overlay driver (vfs works, 3-10x slower). No image can be
pulled, so the Dockerfile's ``ARG BASE`` is pointed at a base made with debootstrap.

Where podman cannot run (absent, not root, no runc, no nested containers) the tests are skipped
with the reason, which the summary repeats. With ``SECRET_ROTATOR_REQUIRE_CONTAINER=1`` (set by
.ci/run) that is a failure instead: CI must not pass by skipping them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Kept across reboots, unlike /tmp; the `podman` fixture refuses it unless root alone can write it.
CACHE = Path(os.environ.get("SECRET_ROTATOR_CACHE", "/var/tmp/secret-rotator-ci"))  # noqa: S108 - checked, see above
REQUIRED = os.environ.get("SECRET_ROTATOR_REQUIRE_CONTAINER", "") not in ("", "0")
DEBIAN_MIRROR = os.environ.get("SECRET_ROTATOR_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SUITE = "bookworm"
BASE_IMAGE = f"localhost/secret-rotator-base:{SUITE}"
TEST_IMAGE = "localhost/secret-rotator"
# The host's trust store, mounted for the build only, for pip behind a TLS-inspecting proxy.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
USER = "10001"
STATE_DIR = "/var/lib/secret-rotator"

CONTAINERS_CONF = """\
[containers]
# The host's hard limits; podman's defaults ask for more and the container fails to start.
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{cache}/events.log"
tmp_dir = "{run}/libpod"
"""

STORAGE_CONF = """\
[storage]
driver = "overlay"
graphroot = "{cache}/storage"
runroot = "{run}/storage"
"""


@dataclass
class Report:
    """What the summary prints: why the tests were skipped, or what they measured."""

    skipped: str | None = None
    numbers: dict[str, str] = field(default_factory=dict)

    def measure(self, name: str, seconds: float) -> None:
        self.numbers[name] = f"{seconds:.1f} s"


REPORT = Report()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORT.skipped:
        terminalreporter.write_sep("-", "container tests skipped")
        terminalreporter.write_line(REPORT.skipped)
    elif REPORT.numbers:
        terminalreporter.write_sep("-", "container image")
        for name, value in REPORT.numbers.items():
            terminalreporter.write_line(f"{name:<34} {value}")


def unavailable(reason: str) -> None:
    """Skip (or, where the tests are required, fail) every container test with this reason."""
    REPORT.skipped = reason
    if REQUIRED:
        pytest.fail(f"SECRET_ROTATOR_REQUIRE_CONTAINER is set, but: {reason}", pytrace=False)
    pytest.skip(reason)


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class Podman:
    """The podman command with this suite's private config and storage."""

    def __init__(self, cache: Path) -> None:
        # runroot and tmp_dir belong on a tmpfs, which podman uses to notice a reboot.
        run = Path("/run/secret-rotator-ci")
        conf_dir = cache / "conf"
        conf_dir.mkdir(parents=True, exist_ok=True)
        containers_conf = conf_dir / "containers.conf"
        storage_conf = conf_dir / "storage.conf"
        containers_conf.write_text(CONTAINERS_CONF.format(cache=cache, run=run))
        storage_conf.write_text(STORAGE_CONF.format(cache=cache, run=run))
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(containers_conf),
            "CONTAINERS_STORAGE_CONF": str(storage_conf),
        }

    def __call__(
        self, *args: str, timeout: float = 120, check: bool = True, stdin: Any = None
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["podman", *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False, stdin=stdin
        )
        if check and done.returncode != 0:
            pytest.fail(f"podman {args[0]} exited {done.returncode}:\n{_tail(done.stderr)}", pytrace=False)
        return done

    def inspect(self, image: str) -> dict[str, Any]:
        data: list[dict[str, Any]] = json.loads(self("image", "inspect", image).stdout)
        return data[0]

    def inspect_container(self, name: str) -> dict[str, Any]:
        data: list[dict[str, Any]] = json.loads(self("container", "inspect", name).stdout)
        return data[0]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One session at a time makes the base or prunes the cache; the others wait for it."""
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def podman() -> Podman:
    if os.name != "posix" or os.geteuid() != 0:
        unavailable("podman tests need root (rootful podman with runc and cgroupfs, as on the CI machine)")
    missing = [tool for tool in ("podman", "runc") if shutil.which(tool) is None]
    if missing:
        unavailable(f"not installed: {', '.join(missing)} (apt-get install podman debootstrap runc; .ci/run does)")
    CACHE.mkdir(mode=0o700, parents=True, exist_ok=True)
    owner = CACHE.stat()
    if owner.st_uid != 0 or owner.st_mode & 0o022:
        # Its storage holds the base the image is built on: nobody else may have put anything there.
        unavailable(f"{CACHE} must belong to root and be writable by root alone (or set SECRET_ROTATOR_CACHE)")
    tool = Podman(CACHE)
    info = tool("info", "--format", "{{.Host.OCIRuntime.Name}}", check=False, timeout=60)
    if info.returncode != 0:
        unavailable(f"podman cannot run here: {_tail(info.stderr, 5)}")
    return tool


def _debootstrap(rootfs: Path) -> None:
    """A minimal Debian with Python 3.11 and its venv module, without apt's caches and the docs."""
    if shutil.which("debootstrap") is None:
        unavailable("debootstrap is not installed and the offline base is not cached (apt-get install debootstrap)")
    partial = rootfs.with_name(rootfs.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    log = CACHE / "debootstrap.log"
    with log.open("w") as out:
        done = subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,ca-certificates",
                SUITE,
                str(partial),
                DEBIAN_MIRROR,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=900,
            check=False,
        )
    if done.returncode != 0:
        unavailable(
            f"debootstrap {SUITE} from {DEBIAN_MIRROR} failed (exit {done.returncode}): {_tail(log.read_text(), 5)}"
        )
    for leftover in ("var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale"):
        for child in (partial / leftover).glob("*"):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    partial.rename(rootfs)


def _import(podman: Podman, rootfs: Path) -> None:
    with subprocess.Popen(["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE) as tar:
        podman(
            "import",
            "--quiet",
            "--message",
            f"debootstrap --variant=minbase {SUITE} with python3",
            "--change",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "-",
            BASE_IMAGE,
            stdin=tar.stdout,
            timeout=600,
        )
    assert tar.returncode == 0, f"tar of {rootfs} failed"


def _prune_stale_build_cache(podman: Podman) -> None:
    """Drop the layers of older Dockerfiles and lock files, so the cache does not grow without end.

    Layers of the current ones are kept: a rerun with an unchanged lock skips the dependency install.
    """
    digest = hashlib.sha256((ROOT / "Dockerfile").read_bytes() + (ROOT / "requirements.lock").read_bytes())
    stamp = CACHE / "build-inputs.sha256"
    if stamp.is_file() and stamp.read_text() == digest.hexdigest():
        return
    podman("image", "prune", "--force", timeout=600)
    stamp.write_text(digest.hexdigest())


@pytest.fixture(scope="session")
def base_image(podman: Podman) -> str:
    """The offline Debian base, made on the first run and kept in the cache."""
    rootfs = CACHE / f"rootfs-{SUITE}"
    with _locked(CACHE / "base.lock"):
        if podman("image", "exists", BASE_IMAGE, check=False).returncode == 0:
            REPORT.numbers["base image"] = f"{BASE_IMAGE} (cached)"
        else:
            if not rootfs.is_dir():
                started = time.monotonic()
                _debootstrap(rootfs)
                REPORT.measure("debootstrap", time.monotonic() - started)
            started = time.monotonic()
            _import(podman, rootfs)
            REPORT.measure("base import", time.monotonic() - started)
        _prune_stale_build_cache(podman)
    smoke = podman("run", "--rm", "--network=none", BASE_IMAGE, "/usr/bin/python3", "--version", check=False)
    if smoke.returncode != 0:
        unavailable(f"podman cannot start a container here: {_tail(smoke.stderr, 5)}")
    return BASE_IMAGE


def _remove_leftovers(podman: Podman) -> None:
    """Images and containers of earlier sessions that were killed before they could clean up."""
    listed = podman(
        "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", f"reference={TEST_IMAGE}", check=False
    ).stdout.split()
    for name in listed:
        pid = name.rpartition(":test-")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            podman("rmi", "--force", name, check=False, timeout=600)


def build_args(base_image: str, tag: str, *, network: str) -> list[str]:
    """`podman build` and its options, but the context. The same build arguments give the same layer cache."""
    args = ["build", f"--network={network}", "--build-arg", f"BASE={base_image}", "--tag", tag]
    if HOST_CA_BUNDLE.is_file():
        args += ["--volume", f"{HOST_CA_BUNDLE}:/run/pip-ca.pem:ro", "--build-arg", "PIP_CERT=/run/pip-ca.pem"]
    return args


@pytest.fixture(scope="session")
def image(podman: Podman, base_image: str) -> Iterator[str]:
    """The image, built from the Dockerfile at the repository root on the offline base."""
    _remove_leftovers(podman)
    tag = f"{TEST_IMAGE}:test-{os.getpid()}"
    started = time.monotonic()
    done = podman(*build_args(base_image, tag, network="host"), str(ROOT), timeout=1500, check=False)
    elapsed = time.monotonic() - started
    (CACHE / "build.log").write_text(done.stdout + done.stderr)
    assert done.returncode == 0, f"podman build failed ({CACHE / 'build.log'}):\n{_tail(done.stdout + done.stderr)}"
    REPORT.measure("image build", elapsed)
    size = int(podman.inspect(tag)["Size"])
    REPORT.numbers["image size"] = f"{size / 1e6:.0f} MB"
    try:
        yield tag
    finally:
        podman("rmi", "--force", tag, check=False, timeout=600)
