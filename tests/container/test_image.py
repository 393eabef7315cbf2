"""The container image, built from the Dockerfile and run the way the manifests in deploy/ run it.

Read-only root filesystem, user 10001, no network for the commands that need none; with the host's
network for a full `run` pass against the emulator on loopback (started here, in a thread), the CA,
the config and the secret files mounted read-only and the state directory as a volume.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.emulator import Emulator
from tests.conftest import assert_no_secrets
from tests.container.conftest import REPORT, ROOT, STATE_DIR, USER, Podman, build_args

pytestmark = [
    pytest.mark.container,
    pytest.mark.slow,
    # The first run on a machine makes the Debian base and builds the image inside the first test's
    # setup: minutes, not the suite's per-test 300 s.
    pytest.mark.timeout(1800),
]

SECRET_NAME = "dime-exchange-client-secret"
# How the manifests run the pod: read-only root, non-root numeric user, no added privileges.
LOCKED_DOWN = ("--read-only", f"--user={USER}", "--security-opt=no-new-privileges", "--cap-drop=all")
MOUNTED = "/etc/secret-rotator"
CONTAINER_TMP = "/tmp"  # noqa: S108 - the container's /tmp, where the host folder `World.tmp` is mounted
EVENTS_OF_A_ROTATION = ("run.started", "credential.created", "credential.verified", "sink.updated", "run.finished")


def mounted(config: Path, *, api_key: bool = True) -> tuple[str, ...]:
    """podman arguments that mount ``config`` read-only as the image's config file and, unless told not
    to, set the API key its `{env: DIMESCHEDULER_API_KEY}` reference asks for."""
    key = ("--env", "DIMESCHEDULER_API_KEY=not-a-real-key") if api_key else ()
    return ("--volume", f"{config}:{MOUNTED}/config.yaml:ro", *key)


def made_for_a_mount(path: str) -> bool:
    """`podman diff` lists the mount points the runtime created (and their parents), not the process's writes."""
    parent = path.rstrip("/") + "/"
    return any(target == path or target.startswith(parent) for target in (MOUNTED, STATE_DIR, CONTAINER_TMP))


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --- what the image says about itself ----------------------------------------------------------------


def test_the_image_runs_its_command_as_user_10001_with_a_state_volume(podman: Podman, image: str) -> None:
    config = podman.inspect(image)["Config"]

    assert config["User"] == f"{USER}:{USER}"
    assert config["Entrypoint"] == ["secret-rotator"]
    assert config["Cmd"] == ["daemon"]
    assert STATE_DIR in config["Volumes"]
    assert "8080/tcp" in config["ExposedPorts"]
    assert config["Labels"]["org.opencontainers.image.title"] == "secret-rotator"
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert "PIP_CERT" not in env, "the build's CA bundle setting leaked into the image"


def test_without_user_flag_the_container_is_not_root(podman: Podman, image: str) -> None:
    done = podman("run", "--rm", "--read-only", "--network=none", "--entrypoint=id", image)

    assert done.stdout.split()[0] == f"uid={USER}(secret-rotator)"


def test_the_venv_holds_no_installer_and_the_state_directory_belongs_to_the_user(podman: Podman, image: str) -> None:
    done = podman(
        "run",
        "--rm",
        *LOCKED_DOWN,
        "--network=none",
        "--entrypoint=/bin/sh",
        image,
        "-c",
        f"stat -c '%u %a' {STATE_DIR}; ls /opt/venv/bin",
    )

    owner_and_mode, *venv_bin = done.stdout.split()
    assert owner_and_mode == USER
    assert "secret-rotator" in venv_bin
    assert not [name for name in venv_bin if name.startswith("pip")]


# --- commands that need no network -------------------------------------------------------------------


def test_help_runs_read_only_as_the_user_without_network(podman: Podman, image: str) -> None:
    done = podman("run", "--rm", *LOCKED_DOWN, "--network=none", image, "--help", check=False)

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: secret-rotator")
    for command in ("run", "plan", "status", "config"):
        assert command in done.stdout


def test_config_check_accepts_the_shipped_example(podman: Podman, image: str) -> None:
    # config check resolves secret references: the example's api_key is {env: DIMESCHEDULER_API_KEY}.
    done = podman(
        "run",
        "--rm",
        *LOCKED_DOWN,
        "--network=none",
        *mounted(ROOT / "config" / "example.yaml"),
        "--env",
        f"SECRET_ROTATOR_CONFIG={MOUNTED}/config.yaml",
        image,
        "config",
        "check",
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "OK, 1 target(s): dime-exchange" in done.stdout


def test_the_image_knows_the_time_zones_maintenance_windows_name(podman: Podman, image: str) -> None:
    # zoneinfo reads the base's tz database (or the tzdata wheel): a base without either would refuse
    # every `windows:` entry as "not a time zone this system knows".
    example = ROOT / "config" / "examples" / "maintenance-windows.yaml"
    done = podman(
        "run",
        "--rm",
        *LOCKED_DOWN,
        "--network=none",
        *mounted(example),
        image,
        "config",
        "check",
        f"{MOUNTED}/config.yaml",
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "dime-exchange" in done.stdout


def test_config_check_names_the_missing_environment_variable_and_exits_2(podman: Podman, image: str) -> None:
    done = podman(
        "run",
        "--rm",
        *LOCKED_DOWN,
        "--network=none",
        *mounted(ROOT / "config" / "example.yaml", api_key=False),
        image,
        "config",
        "check",
        f"{MOUNTED}/config.yaml",
        check=False,
    )

    assert done.returncode == 2
    assert "DIMESCHEDULER_API_KEY" in done.stderr


def test_the_default_command_is_the_daemon_which_serves_healthz_and_stops_on_sigterm(
    podman: Podman, image: str
) -> None:
    # No network: its first pass fails (the example's workload identity is absent), the daemon stays up.
    name = f"secret-rotator-daemon-{os.getpid()}"
    podman(
        "run",
        "--detach",
        "--name",
        name,
        *LOCKED_DOWN,
        "--network=none",
        *mounted(ROOT / "config" / "example.yaml"),
        "--env",
        f"SECRET_ROTATOR_CONFIG={MOUNTED}/config.yaml",
        image,
    )
    try:
        probe = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8080/healthz').status)"
        deadline = time.monotonic() + 60
        while True:
            health = podman("exec", name, "python", "-c", probe, check=False)
            if health.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert health.stdout.strip() == "200", health.stderr[-2000:]
        podman("stop", "--time", "30", name, timeout=60)
        state = podman.inspect_container(name)["State"]
        output = podman("logs", name).stdout
    finally:
        podman("rm", "--force", name, check=False)

    assert state["ExitCode"] == 0
    names = [e["event"] for e in json_lines(output)]
    assert names[0] == "daemon.started"
    assert names[-1] == "daemon.stopped"


# --- what the image leaves out, and how it is built ---------------------------------------------------

LEFT_OUT_MODULES = ("service.emulator", "service.demo", "service.demo_view")
BUILD_TOOLS = ("pip", "setuptools", "wheel", "_distutils_hack")


def test_the_image_holds_neither_the_emulator_nor_the_demo_nor_any_build_tool(podman: Podman, image: str) -> None:
    probe = (
        "import importlib.util, sys; "
        "print(*[m for m in sys.argv[1:] if importlib.util.find_spec(m) is not None]); "
        "import service.cli, service.adapters.graph"
    )  # what a pass needs still imports
    done = podman(
        "run",
        "--rm",
        *LOCKED_DOWN,
        "--network=none",
        "--entrypoint=python",
        image,
        "-c",
        probe,
        *LEFT_OUT_MODULES,
        *BUILD_TOOLS,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [], "present in the image"


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(("emulator",), id="emulator"),
        pytest.param(("demo", "--fast"), id="demo"),
    ],
)
def test_a_left_out_command_says_so_and_exits_2(podman: Podman, image: str, argv: tuple[str, ...]) -> None:
    done = podman("run", "--rm", *LOCKED_DOWN, "--network=none", image, *argv, check=False)

    assert done.returncode == 2, done.stderr
    assert f"`{argv[0]}` is not in this build" in done.stderr
    assert "./dev.sh demo" in done.stderr
    assert "Traceback" not in done.stderr


def _allowed_context(into: Path) -> None:
    """The build context the Dockerfile sees: what .dockerignore lets through, and the two build files."""
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    names = ["Dockerfile", ".dockerignore", *(line[1:].rstrip("/") for line in lines if line.startswith("!"))]
    for name in names:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, into / name)


def test_the_project_wheel_is_built_and_installed_without_any_network(
    podman: Podman, image: str, base_image: str, tmp_path: Path
) -> None:
    """No unpinned download: with the locked dependencies installed (cached by the image's own build), the
    steps that build and install the project's wheel run again with no network at all, and succeed.

    A file that differs on every run makes the COPY of the sources, and so the wheel's step, miss the cache.
    """
    context = tmp_path / "context"
    context.mkdir()
    _allowed_context(context)
    (context / "service" / "cache-buster.txt").write_text(f"{os.getpid()} {time.time_ns()}\n")
    tag = f"localhost/secret-rotator-builder:test-{os.getpid()}"
    args = build_args(base_image, tag, network="none")
    try:
        done = podman(*args, "--target", "builder", str(context), timeout=600, check=False)
    finally:
        podman("rmi", "--force", tag, check=False, timeout=600)
    output = done.stdout + done.stderr

    assert done.returncode == 0, (
        "the builder stage failed without network (a step that downloads, or a dependency layer that was "
        f"not taken from the cache):\n{output[-3000:]}"
    )
    assert "Successfully built secret-rotator" in output, "the wheel's step came from the cache: nothing was proved"
    assert "Installing build dependencies" not in output


# --- a full pass against the emulator ----------------------------------------------------------------


@dataclass
class World:
    emu: Emulator
    tenant: str
    app_id: str
    etc: Path  # mounted read-only at /etc/secret-rotator: config, CA, the two secret files
    state: Path  # mounted read-write at the state directory
    tmp: Path  # mounted at /tmp, as the manifests' emptyDir


def _owned_by_the_user(path: Path, mode: int) -> Path:
    os.chown(path, int(USER), int(USER))
    path.chmod(mode)
    return path


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A tenant with the Dime.Scheduler app, owned by the rotator; the files the container mounts."""
    emu = Emulator(state_dir=tmp_path / "emulator")
    emu.start_in_thread()
    try:
        tenant = emu.add_tenant()
        rotator = emu.add_rotator(tenant, roles=("Application.ReadWrite.OwnedBy",))
        app = emu.add_app(tenant, "Dime.Scheduler", owners=[rotator.object_id])
        etc, state, tmp = (tmp_path / name for name in ("etc", "state", "tmp"))
        for folder in (etc, state, tmp):
            folder.mkdir()
            _owned_by_the_user(folder, 0o700)
        (etc / "ca.pem").write_bytes(emu.ca_file.read_bytes())
        (etc / "rotator-secret").write_text(rotator.secret)
        (etc / "dimescheduler-api-key").write_text(emu.receiver.api_key)
        config = {
            "cloud": {"authority_host": emu.url, "graph_url": emu.graph_url, "ca_bundle": f"{MOUNTED}/ca.pem"},
            "credential": {
                "type": "client_secret",
                "tenant_id": tenant,
                "client_id": rotator.client_id,
                "client_secret": {"file": f"{MOUNTED}/rotator-secret"},
            },
            "defaults": {"lifetime": "90d", "grace_period": "1d", "verify_timeout": "60s"},
            "state": {"backend": "file", "path": STATE_DIR},
            "targets": [
                {
                    "name": "dime-exchange",
                    "tenant_id": tenant,
                    "client_id": app.app_id,
                    "sinks": [
                        {
                            "type": "keyvault",
                            "vault_url": emu.vault_url,
                            "secret_name": SECRET_NAME,
                            "verify_challenge_resource": False,
                        },
                        {
                            "type": "dimescheduler",
                            "url": emu.receiver_url,
                            "api_key": {"file": f"{MOUNTED}/dimescheduler-api-key"},
                        },
                    ],
                }
            ],
        }
        (etc / "config.yaml").write_text(yaml.safe_dump(config))
        for file in etc.iterdir():
            _owned_by_the_user(file, 0o400)
        yield World(emu, tenant, app.app_id, etc, state, tmp)
    finally:
        emu.stop_thread()


def test_a_run_pass_in_the_container_rotates_the_target(podman: Podman, image: str, world: World) -> None:
    name = f"secret-rotator-run-{os.getpid()}"
    started = time.monotonic()
    done = podman(
        "run",
        "--name",
        name,
        *LOCKED_DOWN,
        # The emulator listens on the host's loopback.
        "--network=host",
        "--volume",
        f"{world.etc}:{MOUNTED}:ro",
        "--volume",
        f"{world.state}:{STATE_DIR}",
        "--volume",
        f"{world.tmp}:{CONTAINER_TMP}",
        "--env",
        f"SECRET_ROTATOR_CONFIG={MOUNTED}/config.yaml",
        image,
        "run",
        check=False,
        timeout=240,
    )
    wall = time.monotonic() - started
    try:
        changed = podman("diff", name).stdout
    finally:
        podman("rm", "--force", name, check=False)
    assert_no_secrets(done.stdout + done.stderr, "the container's output")

    assert done.returncode == 0, done.stderr[-4000:]
    events = json_lines(done.stdout)
    names = [e["event"] for e in events]
    for event in EVENTS_OF_A_ROTATION:
        assert event in names, f"{event} missing from the pass's log: {names}"
    assert names[0] == "run.started"
    assert names[-1] == "run.finished"
    assert events[-1]["changed"] == 1
    assert events[-1]["failed"] == 0
    assert {e["level"] for e in events} <= {"debug", "info"}

    [password] = world.emu.passwords(world.tenant, world.app_id)
    assert password.display_name is not None
    assert password.display_name.startswith("secret-rotator ")
    [created] = [e for e in events if e["event"] == "credential.created"]
    assert created["key_id"] == password.key_id
    latest = world.emu.vault_secret(SECRET_NAME)
    assert latest is not None
    assert latest.tags["key-id"] == password.key_id
    [delivery] = world.emu.receiver.deliveries
    assert delivery.idempotency_key == password.key_id
    assert delivery.signin_ok is True

    # Writes: the receipt in the state volume, nothing in the root filesystem, nothing in /tmp.
    receipt = json.loads((world.state / "receipts" / "dime-exchange.json").read_text())
    assert [r["key_id"] for r in receipt.values()] == [password.key_id]
    written = [line for line in changed.splitlines() if line.strip() and not made_for_a_mount(line.split()[-1])]
    assert written == [], f"the container changed its root filesystem: {written}"
    assert list(world.tmp.iterdir()) == []

    REPORT.measure("run pass (podman run, wall)", wall)
    REPORT.numbers["run pass (run.finished seconds)"] = f"{events[-1]['seconds']:.2f} s"
