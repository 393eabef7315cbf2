"""The command line: `secret-rotator COMMAND` (the same program as `python -m service`).

Exit codes (a contract): 0 all well; 1 a target failed (run) or is unreadable (status); 2 bad config or
usage, always before any network call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from service import __version__, logs, redact
from service.clock import SystemClock
from service.config import CONFIG_ENV
from service.config.document import Config, json_schema
from service.config.loading import load_config
from service.errors import ConfigError, ServiceError
from service.metrics import DEFAULT as METRICS
from service.model import Flags
from service.reconcile import Outcome
from service.runner import PassOptions, exit_code, plan_pass, run_pass

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

DESCRIPTION = """\
Keeps the client secret of Microsoft Entra ID app registrations from ever expiring: reads the app's
secrets through Microsoft Graph, adds a new one before the one in use nears expiry, proves it gets a
token, stores it in Azure Key Vault and/or pushes it to Dime.Scheduler, and removes old secrets after
a grace period.
"""

EPILOG = f"""\
config: --config FILE or ${CONFIG_ENV}. Check it with `secret-rotator config check FILE`.
exit codes: 0 all targets healthy or fixed; 1 a target failed (run) or could not be read or planned
            (plan, status), or the command itself failed; 2 bad config or usage (nothing was contacted).
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="secret-rotator", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=_Formatter)
    parser.add_argument("--version", action="version", version=f"secret-rotator {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help=f"the config file (default: ${CONFIG_ENV})")
    common.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    common.add_argument("--log-format", default="auto", choices=["auto", "json", "console"],
                        help="auto: JSON lines, or a console renderer when the output is a terminal")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", parents=[common], formatter_class=_Formatter,
                              help="one reconcile pass over all targets (the CronJob's command)",
                              description="One reconcile pass: rotate what is due, re-sync lagging sinks, retire "
                              "old secrets. Logs JSON lines on stdout.\nexit: 0 all healthy or fixed, 1 a target "
                              "failed, 2 bad config or usage.")
    run.add_argument("--target", metavar="NAME", help="only this target")
    run.add_argument("--force", action="store_true", help="rotate even if nothing is due")
    run.add_argument("--revoke-previous", action="store_true",
                     help="a secret leaked: rotate, and retire the previous secrets as soon as the new one is "
                     "verified and in every sink, skipping the grace period")

    plan = commands.add_parser("plan", parents=[common], formatter_class=_Formatter,
                               help="what `run` would do, per target, with reasons (read-only)")
    plan.add_argument("--target", metavar="NAME")
    plan.add_argument("--force", action="store_true", help="plan as `run --force` would")
    plan.add_argument("--revoke-previous", action="store_true", help="plan as `run --revoke-previous` would")
    plan.add_argument("--output", choices=["table", "json"], default="table")

    status = commands.add_parser("status", parents=[common], formatter_class=_Formatter,
                                 help="every target's credentials: managed or not, expiry, which sink holds which")
    status.add_argument("--target", metavar="NAME")
    status.add_argument("--output", choices=["table", "json"], default="table")

    config = commands.add_parser("config", help="print the config's JSON schema, or check a config file")
    config_commands = config.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    config_commands.add_parser("schema", help="print the JSON schema of the config file")
    check = config_commands.add_parser("check", parents=[common],
                                       help="validate a config file; say exactly what is wrong (exit 2)")
    check.add_argument("file", nargs="?", help="the file (default: --config or $SECRET_ROTATOR_CONFIG)")

    emulator = commands.add_parser("emulator", add_help=False,
                                   help="serve the built-in emulator of Entra ID, Graph, Key Vault and "
                                   "Dime.Scheduler on loopback, and print the config to use with it")
    emulator.add_argument("args", nargs=argparse.REMAINDER)

    _add_optional_commands(commands, common)
    return parser


def _add_optional_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Commands whose modules register themselves (daemon, demo, bootstrap)."""
    for module_name in ("service.daemon", "service.demo", "service.bootstrap_cli"):
        try:
            module = __import__(module_name, fromlist=["register"])
        except ModuleNotFoundError as exc:
            if module_name == "service.demo" and _left_out(exc):
                _add_left_out_command(commands, "demo")
            elif exc.name != module_name:
                raise
            continue
        module.register(commands, common)


# The container image leaves these out (.dockerignore): they serve tests and newcomers, not a cluster.
_LEFT_OUT_OF_THE_IMAGE = ("service.emulator", "service.demo", "service.demo_view")


def _left_out(error: ModuleNotFoundError) -> bool:
    name = error.name or ""
    return any(name == module or name.startswith(f"{module}.") for module in _LEFT_OUT_OF_THE_IMAGE)


def _add_left_out_command(commands: Any, name: str) -> None:
    """A command this build lacks says so, whatever its arguments, rather than being an 'invalid choice'."""
    # A prefix no argument starts with: options and --help are collected like any other argument.
    stub = commands.add_parser(name, add_help=False, prefix_chars="\0", help="(not in this build)")
    stub.add_argument("args", nargs="*")
    stub.set_defaults(handler=lambda _args: _not_in_this_build(name))


def _not_in_this_build(command: str) -> int:
    print(f"secret-rotator: `{command}` is not in this build: the container image leaves out the emulator and "
          "the demo.", file=sys.stderr)
    print("hint: run it from a checkout of the source: `./dev.sh demo`, or `./dev.sh setup` then "
          f"`.venv/bin/secret-rotator {command}`", file=sys.stderr)
    return EXIT_USAGE


def _configure_logs(args: argparse.Namespace, *, to_stderr: bool = False) -> None:
    fmt = getattr(args, "log_format", "auto")
    logs.configure(
        sys.stderr if to_stderr else sys.stdout,
        json=None if fmt == "auto" else fmt == "json",
        level=getattr(args, "log_level", "info"),
    )


def _load(args: argparse.Namespace) -> Config:
    config = load_config(getattr(args, "file", None) or args.config)
    if getattr(args, "target", None):
        config.target(args.target)  # an unknown name is a usage error, before any network call
    return config


def _cmd_run(args: argparse.Namespace) -> int:
    _configure_logs(args)
    config = _load(args)
    options = PassOptions(only=args.target, flags=Flags(force=args.force, revoke_previous=args.revoke_previous))
    results = asyncio.run(run_pass(config, clock=SystemClock(), metrics=METRICS, options=options))
    return exit_code(results)


def _cmd_plan(args: argparse.Namespace) -> int:
    from service.output import plan_document, render_json, render_plan_table

    _configure_logs(args, to_stderr=True)
    config = _load(args)
    flags = Flags(force=args.force, revoke_previous=args.revoke_previous)
    results = asyncio.run(plan_pass(config, clock=SystemClock(), metrics=METRICS, only=args.target, flags=flags))
    document = plan_document(results)
    print(render_json(document) if args.output == "json" else render_plan_table(document))
    return EXIT_FAILED if any(r.outcome is Outcome.FAILED for r in results) else EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    from service.output import render_json, render_status_table, status_document

    _configure_logs(args, to_stderr=True)
    config = _load(args)
    results = asyncio.run(plan_pass(config, clock=SystemClock(), metrics=METRICS, only=args.target))
    document = status_document(results, SystemClock().now())
    print(render_json(document) if args.output == "json" else render_status_table(document))
    return EXIT_FAILED if any(r.outcome is Outcome.FAILED for r in results) else EXIT_OK


def _cmd_config(args: argparse.Namespace) -> int:
    if args.config_command == "schema":
        print(json.dumps(json_schema(), indent=2))
        return EXIT_OK
    config = _load(args)
    names = ", ".join(t.name for t in config.targets)
    print(f"{args.file or args.config or 'config'}: OK, {len(config.targets)} target(s): {names}")
    return EXIT_OK


def _cmd_emulator(args: argparse.Namespace) -> int:
    try:
        from service.emulator.standalone import main as emulator_main
    except ModuleNotFoundError as error:
        if not _left_out(error):
            raise
        return _not_in_this_build("emulator")
    return emulator_main(list(args.args))


COMMANDS = {
    "run": _cmd_run,
    "plan": _cmd_plan,
    "status": _cmd_status,
    "config": _cmd_config,
    "emulator": _cmd_emulator,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["emulator"]:
        # Its options are the emulator's own; argparse's REMAINDER would not pass a leading option on.
        return guarded(_cmd_emulator, argparse.Namespace(args=argv[1:]))
    args = _parser().parse_args(argv)
    return guarded(COMMANDS.get(args.command) or args.handler, args)


def guarded(handler: Any, args: argparse.Namespace) -> int:
    """Every command's last wall: whatever escapes it ends as one scrubbed line, a hint and an exit code.

    Bad config or usage exits 2; any other failure exits 1 (the code for "something failed"). The
    traceback, scrubbed, only at --log-level debug: an operator reads the line, a developer the trace.
    """
    try:
        return int(handler(args))
    except ConfigError as error:
        _say(str(error), None if "config check" in error.hint else error.hint)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except ServiceError as error:
        _say(str(error), error.hint)
        return EXIT_FAILED
    except Exception as error:  # noqa: BLE001 - the top of the program: nothing above it would scrub a traceback
        if getattr(args, "log_level", None) == "debug":
            sys.stderr.write(redact.scrub(traceback.format_exc()))
        _say(f"unexpected {type(error).__name__}: {_one_line(str(error))}",
             "a bug or an unknown failure: run it again with --log-level debug for the traceback, and report it")
        return EXIT_FAILED


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _say(message: str, hint: str | None) -> None:
    print(redact.scrub(f"secret-rotator: {message}"), file=sys.stderr)
    if hint:
        print(redact.scrub(f"hint: {hint}"), file=sys.stderr)
