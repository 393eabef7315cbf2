"""`secret-rotator run|plan|status`: one pass over the targets, or what it would do, or what they hold."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from service import logs
from service.cli_config import load
from service.clock import SystemClock
from service.metrics import DEFAULT as METRICS
from service.model import Flags
from service.output import plan_document, render_json, render_plan_table, render_status_table, status_document
from service.runner import PassOptions, check_shard, exit_code, plan_pass, run_pass
from service.shards import available_cpus, shard_from_environment
from service.stores import build_store


def _configure_logs(args: argparse.Namespace, *, to_stderr: bool = False) -> None:
    logs.configure_as_asked(sys.stderr if to_stderr else sys.stdout, args.log_format, args.log_level)


def run(args: argparse.Namespace) -> int:
    """One reconcile pass; JSON lines on stdout; exit 1 when a target failed."""
    _configure_logs(args)
    config = load(args)
    shard = args.shard or (shard_from_environment(args.shards, os.environ) if args.shards else None)
    check_shard(config, shard)
    build_store(config.state)  # an unusable state directory is a config error (exit 2), before any worker starts
    options = PassOptions(
        only=args.target,
        flags=Flags(force=args.force, revoke_previous=args.revoke_previous),
        workers=args.workers or available_cpus(),
        shard=shard,
    )
    results = asyncio.run(run_pass(config, clock=SystemClock(), metrics=METRICS, options=options))
    return exit_code(results)


def plan(args: argparse.Namespace) -> int:
    """What `run` would do, per target; the log goes to stderr, the plan to stdout."""
    _configure_logs(args, to_stderr=True)
    config = load(args)
    flags = Flags(force=args.force, revoke_previous=args.revoke_previous)
    results = asyncio.run(plan_pass(config, clock=SystemClock(), metrics=METRICS, only=args.target, flags=flags))
    document = plan_document(results)
    print(render_json(document) if args.output == "json" else render_plan_table(document))
    return exit_code(results)


def status(args: argparse.Namespace) -> int:
    """Every target's credentials and which sink holds which; exit 1 when a target could not be read."""
    _configure_logs(args, to_stderr=True)
    config = load(args)
    clock = SystemClock()
    results = asyncio.run(plan_pass(config, clock=clock, metrics=METRICS, only=args.target))
    document = status_document(results, clock.now())
    print(render_json(document) if args.output == "json" else render_status_table(document))
    return exit_code(results)
