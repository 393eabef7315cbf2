"""One reconcile pass over the configured targets: what `run` does once and `daemon` on a schedule.

The pass takes the targets of its shard (``--shard I/N``), reconciles them in this process or spread
over worker processes (``--workers N``, service.workers), and logs ``run.started`` and
``run.finished`` once, with the totals of every worker.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

from service import logs
from service.catalogue import Event
from service.config.document import Config, Target
from service.errors import ConfigError
from service.metrics import Metrics
from service.model import NO_FLAGS, Flags
from service.ports import Clock, StateStore
from service.reconcile import Outcome, TargetResult, VerifyBackoff, count_outcomes
from service.retry import RetryPolicy
from service.shards import Shard, shard_of, worker_groups


@dataclass(frozen=True)
class PassOptions:
    """What may differ between passes of one process: which targets, which flags, how patient, how spread."""

    only: str | None = None
    flags: Flags = NO_FLAGS
    retry: RetryPolicy | None = None
    backoff: VerifyBackoff = field(default_factory=VerifyBackoff)
    workers: int = 1  # processes to spread the targets over; 1: this process alone
    shard: Shard | None = None  # only the targets of this shard (an Indexed Job's pod)
    # Even one worker is a process of its own: the daemon keeps no SDK, client or cache between passes.
    isolated: bool = False


def select_targets(config: Config, only: str | None, shard: Shard | None = None) -> Sequence[Target]:
    """The targets a pass takes: ``--target NAME``, else every target, within ``shard`` if given.

    ConfigError (a usage error, exit 2) for a name that is not in the config or not in the shard.
    """
    if only:
        target = config.target(only)
        if shard is not None and not shard.holds(target.tenant_id):
            raise ConfigError(
                f"--target {only}: its tenant {target.tenant_id} is in shard {shard_of(target.tenant_id, shard.count)}"
                f"/{shard.count}, not in this run's shard {shard}; run it there, or without --shard"
            )
        return [target]
    return shard.select(config.targets) if shard is not None else config.targets


def check_shard(config: Config, shard: Shard | None) -> None:
    """A run's shard agrees with how the config keeps state: ConfigError (exit 2) if it does not.

    With ``state.shards`` N, a tenant's receipts live in the store of its shard of N: a run of shard
    I/M with another M would look for them in the wrong store.
    """
    stores = config.state.shards
    if shard is not None and stores > 1 and shard.count != stores:
        raise ConfigError(
            f"--shard {shard}: state.shards is {stores}, so a tenant's receipts live in the store of its shard of "
            f"{stores}; run --shards {stores} (the Indexed Job's completions and parallelism too), or change "
            "state.shards (which moves tenants to other stores: see README, fleets larger than one pod)"
        )


async def run_pass(
    config: Config,
    *,
    clock: Clock,
    metrics: Metrics,
    options: PassOptions | None = None,
    store: StateStore | None = None,
) -> list[TargetResult]:
    """Reconcile the targets once; logs ``run.started`` and ``run.finished``, times the pass.

    ``store`` (tests) is an object of this process: a pass given one runs in this process alone.
    """
    options = options or PassOptions()
    targets = select_targets(config, options.only, options.shard)
    spread = store is None and (options.workers > 1 or options.isolated)
    groups = worker_groups(targets, options.workers) if spread else [list(targets)]
    log = logs.get_logger()
    started = clock.monotonic()
    shard = {"shard": str(options.shard)} if options.shard is not None else {}
    log.info(
        Event.RUN_STARTED,
        targets=len(targets),
        force=options.flags.force,
        revoke_previous=options.flags.revoke_previous,
        workers=len(groups),
        **shard,
    )
    # Every process of the pass (this run's workers, the other shards' pods) reads the same vaults at once.
    processes = len(groups) * (options.shard.count if options.shard is not None else 1)
    reconcile = functools.partial(_reconcile, config, clock=clock, options=options, store=store, processes=processes)
    # One group runs in this process, unless the caller (the daemon) keeps no pass in its own.
    if len(groups) > 1 or (spread and options.isolated and targets):
        from service.workers import run_in_workers

        results = await run_in_workers(groups, reconcile, metrics=metrics)
    elif targets:
        results = await reconcile(targets, metrics)
    else:
        results = []  # a shard no tenant falls in: nothing to open
    if config.notify:
        # Never raises: a webhook that fails is logged and the pass's outcome stands. Imported here: aiohttp
        # only in a pass that has someone to tell (the daemon's parent process stays small).
        from service.adapters.notifier import send_notices
        from service.notify import notices

        await send_notices(config.notify, notices(results), config.cloud.ca_bundle)
    seconds = clock.monotonic() - started
    metrics.pass_duration.observe(seconds)
    log.info(Event.RUN_FINISHED, seconds=round(seconds, 3), **count_outcomes(results))
    return results


async def _reconcile(
    config: Config,
    targets: Sequence[Target],
    metrics: Metrics,
    *,
    clock: Clock,
    options: PassOptions,
    store: StateStore | None,
    processes: int = 1,
) -> list[TargetResult]:
    """The targets' pass in this process, on clients shared by them (a worker's whole pass); ``processes``:
    how many run the pass at once."""
    from service.wiring import open_pass  # the SDKs: a parent that only runs workers never imports them

    async with open_pass(
        config,
        targets,
        clock=clock,
        metrics=metrics,
        retry=options.retry,
        backoff=options.backoff,
        store=store,
        processes=processes,
    ) as (engine, contexts):
        return await engine.run(contexts, options.flags, per_tenant=config.concurrency_per_tenant)


async def plan_pass(
    config: Config, *, clock: Clock, metrics: Metrics, only: str | None = None, flags: Flags = NO_FLAGS
) -> list[TargetResult]:
    """What a pass would do for each target, read-only (`plan`, `status`): gather and plan, write nothing."""
    from service.wiring import open_pass

    async with open_pass(config, select_targets(config, only), clock=clock, metrics=metrics) as (engine, contexts):
        return await engine.plan_all(contexts, flags)


def exit_code(results: Sequence[TargetResult]) -> int:
    """0 when every target ended healthy or fixed, 1 when any failed."""
    return 1 if any(r.outcome is Outcome.FAILED for r in results) else 0
