"""The command line as an operator and a CronJob use it: exit codes, what is printed, and what is not.

Most cases call ``service.cli.main([...])`` in process; a few start ``python -m service`` as a subprocess.
The emulator serves from a thread here (``main`` runs its own event loop), so a command that wrongly
reached the network would show up in ``emu.requests``: a bad config or usage must exit 2 before any call.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml

from service import redact
from service.cli import guarded, main
from service.emulator import Emulator
from service.errors import ConfigError, FailureReason, ServiceError
from tests.conftest import assert_no_secrets
from tests.integration.conftest import SECRET_NAME, World
from tests.world import emulator_in_thread

ROOT = Path(__file__).resolve().parents[2]
INLINE_API_KEY = "inline-api-key-9f8e7d6c5b4a-do-not-echo"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """The emulator in a daemon thread: ``main`` runs ``asyncio.run`` on the test's thread."""
    yield from emulator_in_thread()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    # main() points structlog and the root logger at this test's captured stdout; later tests must not
    # write to a stream that capsys has closed.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    root.handlers, root.level = handlers, level


@pytest.fixture(autouse=True)
def _no_config_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRET_ROTATOR_CONFIG", raising=False)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``secret-rotator ARGV`` in process: exit code, stdout, stderr (checked for secrets)."""
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse's --help and usage errors
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    assert_no_secrets(out, "stdout")
    assert_no_secrets(err, "stderr")
    return code, out, err


def subprocess_cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "SECRET_ROTATOR_CONFIG"}
    completed = subprocess.run(
        [sys.executable, "-m", "service", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**environ, **(env or {})},
        check=False,
    )
    assert_no_secrets(completed.stdout, "the subprocess's stdout")
    assert_no_secrets(completed.stderr, "the subprocess's stderr")
    return completed


def write_config(world: World, data: dict[str, Any], name: str = "config.yaml") -> Path:
    path = world.tmp / name
    path.write_text(yaml.safe_dump(data))
    return path


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def network_calls(emu: Emulator) -> list[str]:
    return [f"{r.method} {r.path}" for r in emu.requests]


def writes(emu: Emulator) -> list[str]:
    """Requests that could change something (token requests are POSTs that change nothing; a Graph `$batch`
    is a POST that carries requests, each recorded on its own, which count by their own methods)."""
    return [
        f"{r.method} {r.path}"
        for r in emu.requests
        if r.method != "GET" and r.service != "entra" and r.path != "/v1.0/$batch"
    ]


# --- a broken config or usage: exit 2, say where and how to fix it, contact nothing ---------------


def _sink(data: dict[str, Any], kind: str) -> dict[str, Any]:
    sink: dict[str, Any] = next(s for s in data["targets"][0]["sinks"] if s["type"] == kind)
    return sink


def unknown_key(data: dict[str, Any]) -> None:
    data["colour"] = "blue"


def inline_api_key(data: dict[str, Any]) -> None:
    _sink(data, "dimescheduler")["api_key"] = INLINE_API_KEY


def missing_env_reference(data: dict[str, Any]) -> None:
    _sink(data, "dimescheduler")["api_key"] = {"env": "SECRET_ROTATOR_TEST_NEVER_SET"}


def bad_guid(data: dict[str, Any]) -> None:
    data["targets"][0]["tenant_id"] = "contoso.onmicrosoft.com"


def http_vault_url(data: dict[str, Any]) -> None:
    vault = _sink(data, "keyvault")
    vault["vault_url"] = vault["vault_url"].replace("https://", "http://")


def bad_duration(data: dict[str, Any]) -> None:
    data["defaults"]["lifetime"] = "ninety days"


def renew_before_the_whole_lifetime(data: dict[str, Any]) -> None:
    data["defaults"]["renew_before"] = "90d"


def unchanged(data: dict[str, Any]) -> None:
    pass


def api_key_file(content: bytes | None = None, *, path: str | None = None) -> Callable[[dict[str, Any]], None]:
    """Point the api_key at ``path``, or at a file holding ``content`` next to the written config."""

    def change(data: dict[str, Any]) -> None:
        target = path
        if target is None:
            assert content is not None
            config_dir = Path(data["state"]["path"]).parent
            target = str(config_dir / "api-key-under-test")
            Path(target).write_bytes(content)
        _sink(data, "dimescheduler")["api_key"] = {"file": target}

    return change


CONFIG = "{config}"  # replaced by the path of the written config file


@pytest.mark.parametrize(
    ("break_it", "argv", "where", "fix"),
    [
        pytest.param(
            unknown_key, ["run", "--config", CONFIG], "colour", "unknown key: remove it", id="an unknown key is named"
        ),
        pytest.param(
            inline_api_key,
            ["run", "--config", CONFIG],
            "targets[0].sinks[1].api_key",
            "{env: NAME}",
            id="an inline api_key is refused without echoing it",
        ),
        pytest.param(
            missing_env_reference,
            ["run", "--config", CONFIG],
            "targets[0].sinks[1].api_key",
            "SECRET_ROTATOR_TEST_NEVER_SET is not set",
            id="an env reference to an unset variable is named",
        ),
        pytest.param(
            bad_guid,
            ["run", "--config", CONFIG],
            "targets[0].tenant_id",
            "must be a GUID",
            id="a tenant_id that is no GUID says where to find the GUID",
        ),
        pytest.param(
            http_vault_url,
            ["run", "--config", CONFIG],
            "targets[0].sinks[0].vault_url",
            "plain http is refused",
            id="a plain http vault_url is refused",
        ),
        pytest.param(
            bad_duration,
            ["run", "--config", CONFIG],
            "defaults.lifetime",
            "write it like 90d",
            id="a duration that is not one shows how to write one",
        ),
        pytest.param(
            renew_before_the_whole_lifetime,
            ["run", "--config", CONFIG],
            "renew_before",
            "must be shorter than lifetime",
            id="renew_before as long as the lifetime is refused",
        ),
        pytest.param(
            unchanged,
            ["run", "--config", CONFIG, "--target", "nope"],
            "--target nope",
            "known: dime-exchange",
            id="--target naming no target lists the known ones",
        ),
        pytest.param(
            unchanged,
            ["run"],
            "--config FILE",
            "SECRET_ROTATOR_CONFIG",
            id="no --config and no SECRET_ROTATOR_CONFIG says how to give one",
        ),
        pytest.param(
            unchanged,
            ["run", "--config", "{tmp}/nowhere/config.yaml"],
            "nowhere/config.yaml",
            "cannot read the config file",
            id="a config path that cannot be read is named",
        ),
        pytest.param(
            api_key_file(b"\xff\xfe not utf-8"),
            ["run", "--config", CONFIG],
            "targets[0].sinks[1].api_key",
            "is not UTF-8 text",
            id="a secret file that is not UTF-8 is a config error, not a crash",
        ),
        pytest.param(
            api_key_file(path="/dev/zero"),
            ["run", "--config", CONFIG],
            "targets[0].sinks[1].api_key",
            "it is a character device, not a regular file",
            id="a secret file that is /dev/zero is refused",
        ),
        pytest.param(
            unchanged,
            ["run", "--config", "/dev/zero"],
            "/dev/zero",
            "it is a character device",
            id="a config file that is /dev/zero is refused, not read",
        ),
        pytest.param(
            inline_api_key,
            ["plan", "--config", CONFIG],
            "targets[0].sinks[1].api_key",
            "{env: NAME}",
            id="plan refuses a broken config the same way",
        ),
        pytest.param(
            inline_api_key,
            ["status", "--config", CONFIG],
            "targets[0].sinks[1].api_key",
            "{env: NAME}",
            id="status refuses a broken config the same way",
        ),
        pytest.param(
            inline_api_key,
            ["config", "check", CONFIG],
            "targets[0].sinks[1].api_key",
            "{env: NAME}",
            id="config check says exactly what is wrong",
        ),
    ],
)
def test_a_broken_config_exits_2_with_the_key_and_a_fix_and_contacts_nothing(
    world: World,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    break_it: Callable[[dict[str, Any]], None],
    argv: list[str],
    where: str,
    fix: str,
) -> None:
    monkeypatch.delenv("SECRET_ROTATOR_TEST_NEVER_SET", raising=False)
    data = world.config_data()
    break_it(data)
    path = write_config(world, data)
    args = [a.replace(CONFIG, str(path)).replace("{tmp}", str(world.tmp)) for a in argv]

    code, out, err = cli(capsys, *args)

    assert code == 2, err
    assert where in err
    assert fix in err
    assert INLINE_API_KEY not in err + out
    assert "run.started" not in out
    assert network_calls(world.emu) == []


def test_a_broken_config_in_a_subprocess_exits_2_and_contacts_nothing(world: World) -> None:
    data = world.config_data()
    inline_api_key(data)

    completed = subprocess_cli("run", "--config", str(write_config(world, data)))

    assert completed.returncode == 2, completed.stderr
    assert "targets[0].sinks[1].api_key" in completed.stderr
    assert INLINE_API_KEY not in completed.stderr + completed.stdout
    assert network_calls(world.emu) == []


def test_an_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "rotate-everything")

    assert code == 2
    assert "invalid choice" in err


# --- help, schema, check --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        pytest.param((), id="the program"),
        pytest.param(("run",), id="run"),
        pytest.param(("plan",), id="plan"),
        pytest.param(("status",), id="status"),
        pytest.param(("config",), id="config"),
        pytest.param(("config", "schema"), id="config schema"),
        pytest.param(("config", "check"), id="config check"),
        pytest.param(("daemon",), id="daemon"),
        pytest.param(("emulator",), id="emulator"),
        pytest.param(("bootstrap",), id="bootstrap"),
        pytest.param(("demo",), id="demo"),
    ],
)
def test_every_command_has_help(capsys: pytest.CaptureFixture[str], command: tuple[str, ...]) -> None:
    code, out, err = cli(capsys, *command, "--help")

    if code == 2 and "invalid choice" in err:
        pytest.skip(f"`{' '.join(command)}` is not registered in this build")
    assert code == 0, err
    assert out.startswith("usage:")
    assert "secret-rotator" in out


@pytest.mark.parametrize(
    "command",
    [pytest.param((), id="the program's help"), pytest.param(("run",), id="run's help")],
)
def test_help_states_the_exit_codes(capsys: pytest.CaptureFixture[str], command: tuple[str, ...]) -> None:
    _, out, _ = cli(capsys, *command, "--help")

    text = " ".join(out.split())
    assert "0 all" in text
    assert "1 a target failed" in text
    assert "2 bad config or usage" in text


def test_config_schema_prints_the_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "config", "schema")

    assert code == 0
    schema = json.loads(out)
    assert schema["title"] == "secret-rotator configuration"
    assert "targets" in schema["required"]
    assert {"cloud", "credential", "defaults", "state", "targets"} <= set(schema["properties"])


def test_config_check_of_a_good_file_says_ok_and_contacts_nothing(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    path = world.config_file()

    code, out, _ = cli(capsys, "config", "check", str(path))

    assert code == 0
    assert out.strip() == f"{path}: OK, 1 target(s): dime-exchange"
    assert network_calls(world.emu) == []


def test_python_dash_m_service_is_the_same_program() -> None:
    helped = subprocess_cli("--help")

    assert helped.returncode == 0
    assert helped.stdout.startswith("usage: secret-rotator")
    assert "exit codes" in helped.stdout


def test_config_schema_in_a_subprocess_prints_json() -> None:
    schema = subprocess_cli("config", "schema")

    assert schema.returncode == 0
    assert json.loads(schema.stdout)["title"] == "secret-rotator configuration"


# --- --config, --log-level and --log-format before or after the command -----------------------------

# Every command that reads a config, with the arguments it requires.
CONFIG_COMMANDS = {
    "run": ("run",),
    "plan": ("plan",),
    "status": ("status",),
    "daemon": ("daemon",),
    "config check": ("config", "check"),
    "bootstrap": ("bootstrap", "--tenant-id", "00000000-0000-0000-0000-000000000000"),
}


@pytest.mark.parametrize("command", CONFIG_COMMANDS.values(), ids=CONFIG_COMMANDS.keys())
@pytest.mark.parametrize("order", ["before the command", "after the command", "both, the one after wins"])
def test_config_is_taken_before_or_after_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: tuple[str, ...], order: str
) -> None:
    named, other = tmp_path / "named.yaml", tmp_path / "other.yaml"  # neither exists: the error names the one used
    argv = {
        "before the command": ["--config", str(named), *command],
        "after the command": [*command, "--config", str(named)],
        "both, the one after wins": ["--config", str(other), *command, "--config", str(named)],
    }[order]

    code, _, err = cli(capsys, *argv)

    assert code == 2, err
    assert f"{named}: cannot read the config file" in err
    assert str(other) not in err


def test_the_programs_help_lists_the_options_of_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = cli(capsys, "--help")

    for option in ("--config FILE", "--log-level", "--log-format"):
        assert option in out.split("options:")[1]


def test_the_emulator_takes_its_own_options_after_a_program_option(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "--log-level", "info", "emulator", "--help")

    assert code == 0, err
    assert out.startswith("usage:")
    assert "--port" in out, "the emulator's own help"


def test_options_before_the_command_drive_a_real_run(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(
        capsys, "--config", str(world.config_file()), "--log-format", "json", "--log-level", "info", "run"
    )

    assert code == 0
    events = [line["event"] for line in json_lines(out)]
    assert (events[0], events[-1]) == ("run.started", "run.finished")
    assert len(world.passwords()) == 1


@pytest.mark.parametrize(
    ("argv", "info_lines"),
    [
        pytest.param(("--log-level", "warning", "run"), False, id="a level before the command"),
        pytest.param(("run", "--log-level", "warning"), False, id="a level after the command"),
        pytest.param(
            ("--log-level", "warning", "run", "--log-level", "info"), True, id="the level after the command wins"
        ),
    ],
)
def test_the_log_level_is_taken_before_or_after_the_command(
    world: World, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], info_lines: bool
) -> None:
    code, out, _ = cli(capsys, *argv, "--config", str(world.config_file()))

    assert code == 0
    assert ("run.started" in out) is info_lines


def test_plan_takes_its_config_before_the_command(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--config", str(world.config_file()), "plan", "--output", "json")

    assert code == 0
    assert [t["target"] for t in json.loads(out)["targets"]] == ["dime-exchange"]
    assert writes(world.emu) == []


# --- run ------------------------------------------------------------------------------------------


def test_run_rotates_and_logs_json_lines_on_stdout(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "run", "--config", str(world.config_file()))

    assert code == 0
    lines = json_lines(out)
    assert all({"timestamp", "level", "event"} <= set(line) for line in lines)
    events = [line["event"] for line in lines]
    assert events[0] == "run.started"
    assert events[-1] == "run.finished"
    assert "credential.created" in events
    [created] = world.passwords()
    assert world.vault_key_id() == created.key_id
    assert world.emu.receiver.deliveries[-1].idempotency_key == created.key_id


def test_run_with_one_failing_target_exits_1_and_still_fixes_the_other(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    stranger = world.emu.add_app(world.tenant, "Not ours")
    world.target("dime-exchange")
    world.target("not-ours", app_id=stranger.app_id, sinks=("keyvault",), secret_name="not-ours-secret")

    code, out, _ = cli(capsys, "run", "--config", str(world.config_file()))

    assert code == 1
    lines = json_lines(out)
    [failed] = [line for line in lines if line["event"] == "rotation.failed"]
    assert (failed["target"], failed["reason"], failed["level"]) == ("not-ours", "permission_denied", "error")
    assert len(world.passwords()) == 1
    assert lines[-1]["event"] == "run.finished"


def test_run_in_a_subprocess_exits_0_with_json_lines(world: World) -> None:
    completed = subprocess_cli("run", "--config", str(world.config_file()))

    assert completed.returncode == 0, completed.stderr
    events = [line["event"] for line in json_lines(completed.stdout)]
    assert events[0] == "run.started"
    assert events[-1] == "run.finished"
    assert len(world.passwords()) == 1


def test_run_finds_its_config_in_the_environment_variable(world: World) -> None:
    completed = subprocess_cli("run", env={"SECRET_ROTATOR_CONFIG": str(world.config_file())})

    assert completed.returncode == 0, completed.stderr
    assert len(world.passwords()) == 1


# --- plan and status ------------------------------------------------------------------------------


def test_plan_before_the_first_run_shows_a_creation_and_changes_nothing(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "plan", "--config", str(world.config_file()), "--output", "json")

    assert code == 0, err
    [target] = json.loads(out)["targets"]
    assert (target["target"], target["status"], target["error"]) == ("dime-exchange", "changes", None)
    assert [(a["kind"], a["reason"]) for a in target["actions"]] == [("create", "no_credential_in_use")]
    assert writes(world.emu) == []
    assert world.passwords() == []
    assert world.emu.vault_versions(SECRET_NAME) == []
    assert world.emu.receiver.deliveries == []


def test_plan_as_a_table_is_readable(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "plan", "--config", str(world.config_file()))

    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "dime-exchange: changes"
    assert lines[1].split() == ["ACTION", "REASON", "WHAT"]
    assert lines[2].split()[:2] == ["create", "no_credential_in_use"]
    assert not out.lstrip().startswith("{")


def test_plan_after_a_run_is_healthy(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(world.config_file())
    cli(capsys, "run", "--config", path)
    world.emu.reset_requests()

    code, out, _ = cli(capsys, "plan", "--config", path, "--output", "json")

    assert code == 0
    [target] = json.loads(out)["targets"]
    assert (target["status"], target["actions"]) == ("healthy", [])
    assert target["in_use"] == [p.key_id for p in world.passwords()]
    assert writes(world.emu) == []


def test_status_after_a_run_shows_the_credential_held_by_both_sinks(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(world.config_file())
    cli(capsys, "run", "--config", path)

    code, out, _ = cli(capsys, "status", "--config", path, "--output", "json")

    assert code == 0
    [target] = json.loads(out)["targets"]
    [credential] = target["credentials"]
    assert credential["key_id"] == world.passwords()[0].key_id
    assert credential["managed"] is True
    assert credential["in_use"] is True
    assert sorted(credential["held_by"]) == sorted(
        [f"keyvault:{world.emu.vault_url}/{SECRET_NAME}", f"dimescheduler:{world.emu.receiver_url}"]
    )
    assert all(s["key_id"] == credential["key_id"] and not s["pending"] for s in target["sinks"])


def test_status_as_a_table_names_the_sinks(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(world.config_file())
    cli(capsys, "run", "--config", path)

    code, out, _ = cli(capsys, "status", "--config", path)

    assert code == 0
    key_id = world.passwords()[0].key_id
    assert out.splitlines()[0].startswith(f"dime-exchange: app Dime.Scheduler ({world.app_id}), renews at ")
    assert "KEY ID" in out
    assert f"sink dimescheduler:{world.emu.receiver_url}: {key_id} (held since" in out


def test_status_with_an_unreadable_target_exits_1_and_says_why(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.target("dime-exchange")
    world.target("ghost", app_id=str(uuid.uuid4()), sinks=("keyvault",), secret_name="ghost-secret")
    path = str(world.config_file())

    code, out, _ = cli(capsys, "status", "--config", path, "--output", "json")
    table_code, table, _ = cli(capsys, "status", "--config", path)

    assert (code, table_code) == (1, 1)
    errors = {t["target"]: t["error"] for t in json.loads(out)["targets"]}
    assert errors["dime-exchange"] is None
    assert errors["ghost"]["reason"] == "not_found"
    assert "client_id" in errors["ghost"]["hint"]
    assert "ghost: FAILED, could not be read (not_found)" in table
    assert writes(world.emu) == []


def test_a_secret_query_parameter_is_sent_but_stays_out_of_ids_receipts_logs_and_status(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    function_key = "function-key-in-the-query-5e6f7a8b9c0d"
    (world.tmp / "function-key").write_text(function_key)
    data = world.config_data()
    sink = _sink(data, "dimescheduler")
    sink["query"] = {"code": {"file": str(world.tmp / "function-key")}}
    path = str(write_config(world, data))
    sent: list[str] = []
    world.emu.faults.add(r"^/dimescheduler/", "POST", "hook", hook=lambda info: sent.append(info.query))

    run_code, run_out, run_err = cli(capsys, "run", "--config", path)
    status_code, status, _ = cli(capsys, "status", "--config", path, "--output", "json")
    table_code, table, _ = cli(capsys, "status", "--config", path)
    receipts = "".join(p.read_text() for p in (world.tmp / "state" / "receipts").iterdir())

    assert (run_code, status_code, table_code) == (0, 0, 0)
    assert sent == [f"code={function_key}"], "the endpoint got its key"
    for shown, where in ((run_out + run_err, "the run's output"), (status + table, "status"), (receipts, "receipts")):
        assert function_key not in shown, where
        assert "?code" not in shown, where
    assert f"dimescheduler:{world.emu.receiver_url}" in status


def test_plan_with_an_unreadable_target_exits_1_and_still_plans_the_others(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.target("dime-exchange")
    world.target("ghost", app_id=str(uuid.uuid4()), sinks=("keyvault",), secret_name="ghost-secret")

    code, out, _ = cli(capsys, "plan", "--config", str(world.config_file()), "--output", "json")

    assert code == 1, "DESIGN: plan exits 1 if any target could not be read or planned"
    status = {t["target"]: t["status"] for t in json.loads(out)["targets"]}
    assert status == {"dime-exchange": "changes", "ghost": "error"}
    assert writes(world.emu) == []


# --- the last wall: whatever escapes a command --------------------------------------------------

SECRET_IN_AN_ERROR = "leaked-into-an-exception-0123456789abcdef"


def _failing(error: BaseException) -> Callable[[argparse.Namespace], int]:
    def handler(_: argparse.Namespace) -> int:
        raise error

    return handler


@pytest.mark.parametrize(
    ("error", "code", "line", "hint"),
    [
        pytest.param(
            RuntimeError(f"boom\nwith {SECRET_IN_AN_ERROR} inside"),
            1,
            "secret-rotator: unexpected RuntimeError: boom with *** inside",
            "--log-level debug",
            id="a bug is one scrubbed line, a hint, and exit 1",
        ),
        pytest.param(
            ServiceError("the state store is gone", reason=FailureReason.SINK_FAILED, hint="mount it"),
            1,
            "secret-rotator: the state store is gone",
            "hint: mount it",
            id="a service error is its message and its hint, exit 1",
        ),
        pytest.param(
            ConfigError("state.path: not writable", hint="fix its owner"),
            2,
            "secret-rotator: state.path: not writable",
            "hint: fix its owner",
            id="a config error exits 2",
        ),
        pytest.param(
            OSError(24, "Too many open files"),
            1,
            "secret-rotator: unexpected OSError: [Errno 24] Too many open files",
            "report it",
            id="an OS error is not a traceback either",
        ),
    ],
)
def test_every_exception_ends_as_one_scrubbed_line_with_a_hint(
    capsys: pytest.CaptureFixture[str], error: Exception, code: int, line: str, hint: str
) -> None:
    redact.register(SECRET_IN_AN_ERROR)

    returned = guarded(_failing(error), argparse.Namespace(log_level="info"))

    out, err = capsys.readouterr()
    assert returned == code
    assert out == ""
    assert err.splitlines()[0] == line
    assert hint in err
    assert "Traceback" not in err
    assert SECRET_IN_AN_ERROR not in err


def test_at_debug_level_the_traceback_is_shown_scrubbed(capsys: pytest.CaptureFixture[str]) -> None:
    redact.register(SECRET_IN_AN_ERROR)

    returned = guarded(_failing(KeyError(SECRET_IN_AN_ERROR)), argparse.Namespace(log_level="debug"))

    _, err = capsys.readouterr()
    assert returned == 1
    assert "Traceback (most recent call last)" in err
    assert "KeyError: '***'" in err
    assert SECRET_IN_AN_ERROR not in err
