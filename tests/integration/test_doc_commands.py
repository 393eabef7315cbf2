"""Every command line README.md, deploy/README.md and `secret-rotator emulator` print runs as printed.

The command lines are read from the documents (shell code blocks, indented code blocks, and inline code
that starts with a program) and from the emulator's own output, then run against that emulator in the
order a newcomer would. Only the placeholders the documents mark as such are filled in (``<that file>``:
the config the emulator wrote; the deploy README's ``config.yaml``: a copy of deploy/base/config.yaml).
``secret-rotator`` and ``.venv/bin/secret-rotator`` are this environment's console script. A line that
needs a cluster, podman, a registry, Azure or PyPI is listed in SKIPPED with the reason. A line this file
does not know fails the test: a new command in the docs needs a way to run it here, or a reason not to.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import assert_no_secrets

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ("README.md", "deploy/README.md")
SCRIPT = Path(sys.executable).parent / "secret-rotator"
# The first words that make inline code a command line (prose quotes plenty of other code).
PROGRAMS = (
    "secret-rotator",
    ".venv/bin/secret-rotator",
    "./dev.sh",
    "az",
    "kubectl",
    "podman",
    "docker",
    "crane",
    "apt-get",
)
SHELL_FENCES = ("sh", "bash", "shell", "console")

# --- reading command lines out of the documents -------------------------------------------------------


def _one_line(text: str) -> str:
    """A command as one line: continuations joined, a trailing comment dropped, blanks squeezed."""
    text = re.sub(r"\\\n", " ", text)
    text = re.sub(r"(^|\s)#\s.*$", "", text)
    return " ".join(text.split())


def _logical_lines(block: list[str]) -> Iterator[str]:
    joined = "\n".join(block)
    for line in re.split(r"(?<!\\)\n", joined):
        command = _one_line(line)
        if command and not command.startswith("#"):
            yield command


def document_commands(text: str) -> list[str]:
    """The command lines of a Markdown document, in order."""
    commands: list[str] = []
    prose: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"\s*```(\w*)", lines[i])
        if fence:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip().startswith("```"))
            if fence.group(1) in SHELL_FENCES:
                indent = len(lines[i]) - len(lines[i].lstrip())
                commands.extend(_logical_lines([line[indent:] for line in lines[i + 1 : end]]))
            i = end + 1
            continue
        if lines[i].startswith("    ") and (i == 0 or not lines[i - 1].strip()):
            end = i
            while end < len(lines) and (lines[end].startswith("    ") or not lines[end].strip()):
                end += 1
            commands.extend(_logical_lines([line[4:] for line in lines[i:end]]))
            i = end
            continue
        prose.append(lines[i])
        i += 1
    for span in re.findall(r"`([^`]+)`", "\n".join(prose)):
        command = " ".join(span.split())
        # The program, after any VAR=value the line sets for it; a program named alone is a command only
        # when it is a path to run (`./dev.sh`), not a name in a sentence (`secret-rotator`).
        words = [w for w in command.split() if not re.fullmatch(r"[A-Z_]+=\S*", w)] or [""]
        if words[0] in PROGRAMS and (len(words) > 1 or words[0].startswith("./")):
            commands.append(command)
    return commands


def emulator_commands(output: str) -> list[str]:
    """The command lines the emulator printed: each line that holds `--config`, without its label and comment."""
    found = []
    for line in output.splitlines():
        if " --config " in line:
            found.append(_one_line(re.sub(r"^\w+:\s+", "", line.strip())))
    return found


# --- what the test knows about each -----------------------------------------------------------------

CLUSTER = "needs a Kubernetes cluster (tests/deploy render and validate the manifests it applies)"
AZURE = "needs Azure (tests/integration run the same against the emulator)"
PODMAN = "needs podman and an image build (tests/container build and run the image)"
REGISTRY = "needs the image registry"

SKIPPED: dict[str, str] = {
    "./dev.sh demo": "sets up .venv from PyPI first; the `secret-rotator demo` it runs is tests/integration/test_demo",
    "./dev.sh test": "is this test suite",
    './dev.sh test -m "not container"': "is this test suite",
    "./dev.sh audit": "asks PyPI's advisory service (network); CI runs it (.ci/run)",
    "./dev.sh setup": "installs from PyPI (network) into .venv, which this suite runs in already",
    "./dev.sh test tests/unit -x": "is (part of) this test suite",
    "HYPOTHESIS_PROFILE=ci ./dev.sh test": "is this test suite",
    "./dev.sh explore": "is this suite's property tests, with ten times the examples",
    "apt-get install -y podman debootstrap runc": "installs system packages (root, network); .ci/run does it",
    "apt-get install -y --no-install-recommends prometheus": "installs system packages (root, network); .ci/run "
    "does it",
    "./dev.sh docs": "sets up .venv from PyPI first; tests/unit/test_shipped_files checks what it writes is current",
    "secret-rotator daemon": "serves on every interface, port 8080, until SIGTERM (the pod's probes); the suite "
    "keeps to loopback: tests/integration/test_daemon runs it with --listen 127.0.0.1:0",
    "secret-rotator demo": "is about the container image, where it exits 2: tests/container checks that",
    "secret-rotator bootstrap --tenant-id <tenant> --device-code --owner <object id of the rotator's service "
    "principal> --store keyvault://my-vault/dime-exchange-client-secret": AZURE,
    "secret-rotator bootstrap --owner $MI": AZURE,
    "secret-rotator bootstrap --store keyvault://my-vault/dime-exchange-client-secret": AZURE,
    "podman build -t ghcr.io/secret-rotator/secret-rotator:0.1.0 .": PODMAN,
    "podman run --rm --read-only -v ./config.yaml:/etc/secret-rotator/config.yaml:ro -e "
    "SECRET_ROTATOR_CONFIG=/etc/secret-rotator/config.yaml -v secret-rotator-state:/var/lib/secret-rotator "
    "ghcr.io/secret-rotator/secret-rotator:0.1.0 run": PODMAN,
    "docker buildx imagetools inspect ghcr.io/secret-rotator/secret-rotator:0.1.0": REGISTRY,
}
AZURE_CLI = re.compile(r"^(az |[A-Z]+=\$\(az )")
KUBECTL = re.compile(r"^kubectl ")


@dataclass(frozen=True)
class Run:
    """How a command line runs here: the exit code it must give, and text its output must hold."""

    code: int
    says: str = ""
    pod_environment: bool = False  # $SECRET_ROTATOR_CONFIG set, as the overlays set it in the pod


RUNS: dict[str, Run] = {
    ".venv/bin/secret-rotator --config <that file> plan": Run(0, "create"),
    ".venv/bin/secret-rotator --config <that file> run": Run(0, "credential.created"),
    ".venv/bin/secret-rotator --config <that file> status": Run(0, "in use"),
    "secret-rotator run": Run(0, "run.finished", pod_environment=True),
    # "outside the pod it also reports the API key file as missing: expected" (deploy/README.md)
    "secret-rotator config check config.yaml": Run(2, "/var/run/secrets/dimescheduler/api-key cannot be read"),
    "./dev.sh": Run(2, "usage: ./dev.sh COMMAND"),
    "./dev.sh help": Run(0, "usage: ./dev.sh COMMAND"),
}
EMULATOR = ".venv/bin/secret-rotator emulator"
# The emulator's own lines, by the command at their end (their config path changes with every start).
EMULATOR_RUNS = {"plan": Run(0, "healthy"), "run": Run(0, "run.finished"), "status": Run(0, "in use")}


def how(command: str) -> Run | str:
    """A Run, or the reason the command is not run here; KeyError for a command this file does not know."""
    if command in SKIPPED:
        return SKIPPED[command]
    if AZURE_CLI.match(command):
        return AZURE
    if KUBECTL.match(command):
        return CLUSTER
    return RUNS[command]


# --- running them --------------------------------------------------------------------------------------


def argv(command: str, config: Path) -> list[str]:
    words = shlex.split(command.replace("<that file>", str(config)))
    if words[0] in ("secret-rotator", ".venv/bin/secret-rotator", str(SCRIPT)):
        words[0] = str(SCRIPT)
    return words


@dataclass
class Served:
    process: subprocess.Popen[str]
    output: str
    config: Path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """`.venv/bin/secret-rotator emulator`, as README.md prints it, until its "ready" line."""
    command = argv(EMULATOR, tmp_path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp_path)}
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and not any(line.startswith("emulator ready") for line in lines):
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
        output = "".join(lines)
        assert "emulator ready" in output, output
        config = Path(next(line.split(": ", 1)[1].strip() for line in lines if line.startswith("Config: ")))
        yield Served(process, output, config)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run(command: str, expected: Run, config: Path, cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SECRET_ROTATOR_CONFIG"}
    if expected.pod_environment:
        env["SECRET_ROTATOR_CONFIG"] = str(config)
    done = subprocess.run(
        argv(command, config), cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    output = done.stdout + done.stderr
    assert_no_secrets(output, f"the output of `{command}`")
    assert done.returncode == expected.code, f"`{command}` exited {done.returncode}:\n{output[-3000:]}"
    assert expected.says in output, f"`{command}` did not say {expected.says!r}:\n{output[-3000:]}"


def test_the_documents_print_only_command_lines_this_test_knows() -> None:
    unknown = [
        f"{name}: {command}"
        for name in DOCUMENTS
        for command in document_commands((ROOT / name).read_text(encoding="utf-8"))
        if command != EMULATOR and not _known(command)
    ]

    assert unknown == [], "a new command line: add it to RUNS (how to run it here) or SKIPPED (why not)"


def _known(command: str) -> bool:
    try:
        how(command)
    except KeyError:
        return False
    return True


def test_every_command_line_this_test_knows_is_still_in_the_documents() -> None:
    printed = {c for name in DOCUMENTS for c in document_commands((ROOT / name).read_text(encoding="utf-8"))}

    assert {*RUNS, *SKIPPED, EMULATOR} - printed == set(), "remove what the documents no longer print"


def test_every_command_line_of_the_documents_and_the_emulator_runs_as_printed(served: Served, tmp_path: Path) -> None:
    deploy = tmp_path / "deploy-overlay"
    deploy.mkdir()
    shutil.copy(ROOT / "deploy" / "base" / "config.yaml", deploy / "config.yaml")  # "a copy of base/config.yaml"
    ran: set[str] = set()
    skipped: set[str] = set()
    for name in DOCUMENTS:
        for command in document_commands((ROOT / name).read_text(encoding="utf-8")):
            if command == EMULATOR:
                continue  # running: `served`
            plan = how(command)
            if isinstance(plan, str):
                skipped.add(command)
                continue
            if command not in ran:
                run(command, plan, served.config, deploy if name.startswith("deploy/") else ROOT)
                ran.add(command)

    printed = emulator_commands(served.output)
    assert [c.split()[-1] for c in printed] == list(EMULATOR_RUNS), served.output
    for command in printed:
        assert argv(command, served.config)[0] == str(SCRIPT), "printed with the program it was started as"
        run(command, EMULATOR_RUNS[command.split()[-1]], served.config, ROOT)

    assert ran == set(RUNS)
    assert skipped, "the skipped lines are listed, with their reasons, in SKIPPED"
    served.process.send_signal(signal.SIGINT)
    assert served.process.wait(timeout=20) == 0
