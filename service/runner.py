"""One reconcile pass over the configured targets: what `run` does once and `daemon` on a schedule."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from service import logs
from service.catalogue import Event
from service.config.document import Config, Target
from service.metrics import Metrics
from service.model import NO_FLAGS, Flags
from service.ports import Clock, StateStore
from service.reconcile import Outcome, TargetResult, VerifyBackoff, count_outcomes
from service.retry import RetryPolicy
from service.wiring import open_pass


@dataclass(frozen=True)
class PassOptions:
    """What may differ between passes of one process: which targets, which flags, how patient."""

    only: str | None = None
    flags: Flags = NO_FLAGS
    retry: RetryPolicy | None = None
    backoff: VerifyBackoff = field(default_factory=VerifyBackoff)


def select_targets(config: Config, only: str | None) -> Sequence[Target]:
    """The config's targets, or only the one named ``only`` (ConfigError when no target has that name)."""
    return [config.target(only)] if only else config.targets


async def run_pass(
    config: Config,
    *,
    clock: Clock,
    metrics: Metrics,
    options: PassOptions | None = None,
    store: StateStore | None = None,
) -> list[TargetResult]:
    """Reconcile the targets once; logs ``run.started`` and ``run.finished``, times the pass."""
    options = options or PassOptions()
    targets = select_targets(config, options.only)
    log = logs.get_logger()
    started = clock.monotonic()
    log.info(Event.RUN_STARTED, targets=len(targets), force=options.flags.force,
             revoke_previous=options.flags.revoke_previous)
    async with open_pass(config, targets, clock=clock, metrics=metrics, retry=options.retry, backoff=options.backoff,
                         store=store) as (engine, contexts):
        results = await engine.run(contexts, options.flags, per_tenant=config.concurrency_per_tenant)
    seconds = clock.monotonic() - started
    metrics.pass_duration.observe(seconds)
    log.info(Event.RUN_FINISHED, seconds=round(seconds, 3), **count_outcomes(results))
    return results


async def plan_pass(
    config: Config, *, clock: Clock, metrics: Metrics, only: str | None = None, flags: Flags = NO_FLAGS
) -> list[TargetResult]:
    """What a pass would do for each target, read-only (`plan`, `status`): gather and plan, write nothing."""
    async with open_pass(config, select_targets(config, only), clock=clock, metrics=metrics) as (engine, contexts):
        return await engine.plan_all(contexts, flags)


def exit_code(results: Sequence[TargetResult]) -> int:
    """0 when every target ended healthy or fixed, 1 when any failed."""
    return 1 if any(r.outcome is Outcome.FAILED for r in results) else 0
