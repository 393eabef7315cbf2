"""The command line: `secret-rotator COMMAND` (the same program as `python -m service`).

Every command is registered here with its help and arguments; the module that carries it out is
imported only when it runs (``implementation="module:function"``), so `--help`, `config schema` and
`config check` load no Azure SDK, no HTTP client and no emulator. ``--config``, ``--log-level`` and
``--log-format`` go before or after the command; given in both places, the one after it wins.

Exit codes (a contract): 0 all well; 1 a target failed (run) or is unreadable (status); 2 bad config or
usage, always before any network call.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from service import __version__, redact
from service.bootstrap_defaults import DEFAULT_NAME, DEFAULT_REDIRECT_URI
from service.config import CONFIG_ENV
from service.daemon_defaults import DEFAULT_LISTEN, DEFAULT_SHUTDOWN_TIMEOUT
from service.errors import ConfigError, ServiceError
from service.model import DEFAULT_MARKER
from service.shards import JOB_COMPLETION_INDEX, MAX_SHARDS, MAX_WORKERS, Shard, parse_count, parse_shard

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

# The container image leaves these out (.dockerignore): they serve tests and newcomers, not a cluster.
_LEFT_OUT_OF_THE_IMAGE = ("service.emulator", "service.demo", "service.demo_view")
# Options every command that reads a config takes, before the command or after it.
_GLOBAL_OPTIONS = ("--config", "--log-level", "--log-format")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def _global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """``--config``, ``--log-level``, ``--log-format``; with defaults on the program, without on a command,
    so that a value given after the command replaces one given before it, and none given keeps it."""

    def default(value: str | None) -> Any:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--config", metavar="FILE", default=default(None), help=f"the config file (default: ${CONFIG_ENV})"
    )
    parser.add_argument("--log-level", default=default("info"), choices=["debug", "info", "warning", "error"])
    parser.add_argument(
        "--log-format",
        default=default("auto"),
        choices=["auto", "json", "console"],
        help="auto: JSON lines, or a console renderer when the output is a terminal",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="secret-rotator", description=DESCRIPTION, epilog=EPILOG, formatter_class=_Formatter
    )
    parser.add_argument("--version", action="version", version=f"secret-rotator {__version__}")
    _global_options(parser, defaults=True)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, defaults=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        parents=[common],
        formatter_class=_Formatter,
        help="one reconcile pass over all targets (the CronJob's command)",
        description="One reconcile pass: rotate what is due, re-sync lagging sinks, retire "
        "old secrets. Logs JSON lines on stdout.\nexit: 0 all healthy or fixed, 1 a target "
        "failed, 2 bad config or usage.",
    )
    run.add_argument("--target", metavar="NAME", help="only this target")
    run.add_argument("--force", action="store_true", help="rotate even if nothing is due")
    run.add_argument(
        "--revoke-previous",
        action="store_true",
        help="a secret leaked: rotate, and retire the previous secrets as soon as the new one is "
        "verified and in every sink, skipping the grace period",
    )
    _workers_option(run)
    shards = run.add_mutually_exclusive_group()
    shards.add_argument(
        "--shard",
        type=_shard,
        metavar="I/N",
        help="only the targets of shard I of N (I from 0): a tenant is in shard sha256(tenant id) "
        "mod N, the same for every run; for a fleet spread over several pods",
    )
    shards.add_argument(
        "--shards",
        type=_count(MAX_SHARDS),
        metavar="N",
        help=f"--shard I/N with I from ${JOB_COMPLETION_INDEX}, which Kubernetes sets in each pod "
        "of an Indexed Job (completions = N)",
    )
    run.set_defaults(implementation="service.cli_pass:run")

    plan = commands.add_parser(
        "plan",
        parents=[common],
        formatter_class=_Formatter,
        help="what `run` would do, per target, with reasons (read-only)",
    )
    plan.add_argument("--target", metavar="NAME")
    plan.add_argument("--force", action="store_true", help="plan as `run --force` would")
    plan.add_argument("--revoke-previous", action="store_true", help="plan as `run --revoke-previous` would")
    plan.add_argument("--output", choices=["table", "json"], default="table")
    plan.set_defaults(implementation="service.cli_pass:plan")

    status = commands.add_parser(
        "status",
        parents=[common],
        formatter_class=_Formatter,
        help="every target's credentials: managed or not, expiry, which sink holds which",
    )
    status.add_argument("--target", metavar="NAME")
    status.add_argument("--output", choices=["table", "json"], default="table")
    status.set_defaults(implementation="service.cli_pass:status")

    config = commands.add_parser("config", help="print the config's JSON schema, or check a config file")
    config_commands = config.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    schema = config_commands.add_parser("schema", help="print the JSON schema of the config file")
    schema.set_defaults(implementation="service.cli_config:schema")
    check = config_commands.add_parser(
        "check", parents=[common], help="validate a config file; say exactly what is wrong (exit 2)"
    )
    check.add_argument("file", nargs="?", help="the file (default: --config or $SECRET_ROTATOR_CONFIG)")
    check.set_defaults(implementation="service.cli_config:check")

    emulator = commands.add_parser(
        "emulator",
        add_help=False,
        help="serve the built-in emulator of Entra ID, Graph, Key Vault and "
        "Dime.Scheduler on loopback, and print the config to use with it",
    )
    emulator.add_argument("args", nargs=argparse.REMAINDER)  # main() hands them to the emulator as they are

    _add_daemon(commands, common)
    if importlib.util.find_spec("service.demo") is None:
        _add_left_out_command(commands, "demo")
    else:
        _add_demo(commands)
    _add_bootstrap(commands, common)
    return parser


def _add_daemon(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "daemon",
        parents=[common],
        formatter_class=_Formatter,
        help="reconcile passes on `schedule` (cron, with jitter) until SIGTERM; serves /healthz /readyz /metrics",
        description="Runs a pass at start-up, then on the config's `schedule` (cron, UTC) moved by up to "
        "`schedule_jitter`.\nServes /healthz (liveness), /readyz (the last pass did not fail everywhere) and "
        "/metrics (Prometheus).\nSIGTERM/SIGINT: lets a pass in flight finish (up to --shutdown-timeout), then "
        "exits.\nexit: 0 on a clean shutdown, 1 if it cannot serve, 2 bad config or usage.",
    )
    parser.add_argument(
        "--listen",
        type=_listen,
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"where to serve the probes and metrics (default {DEFAULT_LISTEN}: every interface, "
        "as the kubelet's probes come to the pod's IP; restrict who may connect with the "
        "NetworkPolicy in deploy/; [::1]:8080 for IPv6)",
    )
    parser.add_argument(
        "--shutdown-timeout",
        type=_seconds,
        default=DEFAULT_SHUTDOWN_TIMEOUT,
        metavar="SECONDS",
        help="how long a pass in flight may finish after SIGTERM before it is cancelled "
        f"(default {DEFAULT_SHUTDOWN_TIMEOUT:g}; keep it under the pod's terminationGracePeriod)",
    )
    _workers_option(parser)
    parser.set_defaults(implementation="service.daemon:command")


def _workers_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=_count(MAX_WORKERS),
        metavar="N",
        help="spread a pass's targets over N processes, a tenant's targets in one (default: the CPUs "
        "this process may use, its cgroup's quota included; never more than there are tenants; "
        "1: this process alone)",
    )


def _count(most: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            return parse_count(text, most)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _shard(text: str) -> Shard:
    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _listen(text: str) -> tuple[str, int]:
    from service.http_endpoints import parse_listen  # only when the daemon's arguments are read

    try:
        return parse_listen(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return value


def _add_demo(commands: Any) -> None:
    parser = commands.add_parser(
        "demo",
        help="run a full secret lifecycle against the built-in emulator and show it (~30 s)",
        description="Starts the emulator, seeds a Dime.Scheduler app whose hand-made secret is about to expire, "
        "and runs the real engine over it: adopt, rotate, verify, store in Key Vault, push to Dime.Scheduler, "
        "retire after the grace period, renew again. Nothing leaves this machine. exit: 0 when it all happened.",
    )
    parser.add_argument(
        "--fast",
        action="store_true",
        help="fast-forward the emulator's clock through the grace period instead of waiting for it",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the working directory: config, state, emulator CA and the engine's log",
    )
    parser.set_defaults(implementation="service.demo:command")


BOOTSTRAP_DESCRIPTION = f"""\
Create the Dime.Scheduler Exchange connector's app registration, or complete an existing one, and hand
it to rotation. In order, each only when missing: the single-tenant app (web redirect URI, Microsoft
Graph application permissions Calendars.ReadWrite, MailboxSettings.ReadWrite, User.Read.All), its
service principal, admin consent for each permission, the rotator as an owner (--owner), and a first
client secret named "{DEFAULT_MARKER} ..." so the rotator manages it from day one. The app is found by
--client-id or by --name; a re-run creates nothing twice.

Sign-in: DefaultAzureCredential (az login), --device-code, or the credential: block of --config FILE
(which also gives the cloud:; $SECRET_ROTATOR_CONFIG is not read, so that the rotator's own identity
is never used as the admin's by accident). It
needs Application.ReadWrite.All and AppRoleAssignment.ReadWrite.All (application permissions), or, as a
user, Global Administrator or Privileged Role Administrator (consent to Microsoft Graph permissions).
"""

BOOTSTRAP_EPILOG = """\
exit codes: 0 done; 1 a step failed (says which privilege it needs and what was already created);
            2 bad arguments or config (several apps with the name: pass --client-id).
example:    secret-rotator bootstrap --tenant-id T --owner ROTATOR_SP_OBJECT_ID \\
                --store keyvault://my-vault/dime-exchange-client-secret
"""


def _add_bootstrap(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "bootstrap",
        parents=[common],
        formatter_class=_Formatter,
        help="create (or complete) the Dime.Scheduler app registration and hand it to rotation",
        description=BOOTSTRAP_DESCRIPTION,
        epilog=BOOTSTRAP_EPILOG,
    )
    parser.add_argument("--tenant-id", required=True, metavar="TENANT", help="the Directory (tenant) ID")
    parser.add_argument("--name", default=DEFAULT_NAME, help=f"the app's display name (default {DEFAULT_NAME})")
    parser.add_argument(
        "--redirect-uri", default=DEFAULT_REDIRECT_URI, help=f"web redirect URI (default {DEFAULT_REDIRECT_URI})"
    )
    parser.add_argument(
        "--client-id", metavar="APP_ID", help="complete this existing app instead of finding it by name"
    )
    parser.add_argument(
        "--owner",
        metavar="OBJECT_ID",
        help="the rotator's service principal object id: made an owner, so that "
        "Application.ReadWrite.OwnedBy suffices for rotation",
    )
    parser.add_argument(
        "--secret-lifetime",
        metavar="DURATION",
        help="the first secret's lifetime (default: the config's defaults.lifetime, else 90d)",
    )
    parser.add_argument(
        "--store",
        metavar="keyvault://VAULT/NAME",
        help="write the first secret to this Key Vault secret instead of showing it",
    )
    parser.add_argument(
        "--new-secret", action="store_true", help="add a secret even if the app has one named with the marker"
    )
    parser.add_argument("--output", choices=["table", "json"], default="table")
    parser.add_argument("--dry-run", action="store_true", help="read and say what would be done; change nothing")
    parser.add_argument(
        "--device-code", action="store_true", help="sign in as a user with a device code (the prompt goes to stderr)"
    )
    parser.add_argument("--authority-host", metavar="URL", help="Entra's sign-in host (overrides the config's cloud:)")
    parser.add_argument(
        "--graph-url", metavar="URL", help="Microsoft Graph's base URL, e.g. https://graph.microsoft.com/v1.0"
    )
    parser.add_argument("--ca-bundle", metavar="FILE", help="an extra CA file to trust (private CA, the emulator)")
    parser.set_defaults(implementation="service.bootstrap_cli:handle")


# --- commands left out of this build ----------------------------------------------------------------


def _left_out(error: ModuleNotFoundError) -> bool:
    name = error.name or ""
    return any(name == module or name.startswith(f"{module}.") for module in _LEFT_OUT_OF_THE_IMAGE)


def _add_left_out_command(commands: Any, name: str) -> None:
    """A command this build lacks says so, whatever its arguments, rather than being an 'invalid choice'."""
    # A prefix no argument starts with: options and --help are collected like any other argument.
    stub = commands.add_parser(name, add_help=False, prefix_chars="\0", help="(not in this build)")
    stub.add_argument("args", nargs="*")
    stub.set_defaults(implementation=None)


def _not_in_this_build(command: str) -> int:
    print(
        f"secret-rotator: `{command}` is not in this build: the container image leaves out the emulator and the demo.",
        file=sys.stderr,
    )
    print(
        "hint: run it from a checkout of the source: `./dev.sh demo`, or `./dev.sh setup` then "
        f"`.venv/bin/secret-rotator {command}`",
        file=sys.stderr,
    )
    return EXIT_USAGE


# --- running a command --------------------------------------------------------------------------------


def _implementation(command: str, spec: str | None) -> Callable[[argparse.Namespace], int]:
    """The command's ``module:function``, imported when it is called."""

    def run(args: argparse.Namespace) -> int:
        if spec is None:
            return _not_in_this_build(command)
        module_name, _, function = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if not _left_out(error):
                raise
            return _not_in_this_build(command)
        return int(getattr(module, function)(args))

    return run


def _emulator(args: argparse.Namespace) -> int:
    try:
        from service.emulator.standalone import main as emulator_main
    except ModuleNotFoundError as error:
        if not _left_out(error):
            raise
        return _not_in_this_build("emulator")
    return emulator_main(list(args.args))


def _command_at(argv: Sequence[str]) -> int | None:
    """Where the command stands in ``argv``, past the global options before it; None if there is none."""
    at = 0
    while at < len(argv):
        word = argv[at]
        if word in _GLOBAL_OPTIONS:
            at += 2
        elif word.startswith(tuple(f"{option}=" for option in _GLOBAL_OPTIONS)):
            at += 1
        else:
            return None if word.startswith("-") else at
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """``secret-rotator ARGV``: run the command and return its exit code (0, 1 or 2; 130 on Ctrl-C)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    at = _command_at(argv)
    if at is not None and argv[at] == "emulator":
        # Its options are the emulator's own; argparse's REMAINDER would not pass a leading option on.
        return guarded(_emulator, argparse.Namespace(args=argv[at + 1 :]))
    args = _parser().parse_args(argv)
    return guarded(_implementation(args.command, args.implementation), args)


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
        _say(
            f"unexpected {type(error).__name__}: {_one_line(str(error))}",
            "a bug or an unknown failure: run it again with --log-level debug for the traceback, and report it",
        )
        return EXIT_FAILED


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _say(message: str, hint: str | None) -> None:
    print(redact.scrub(f"secret-rotator: {message}"), file=sys.stderr)
    if hint:
        print(redact.scrub(f"hint: {hint}"), file=sys.stderr)
