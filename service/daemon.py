"""The `daemon` command: reconcile passes on the config's schedule until SIGTERM.

One pass at start-up, then one per fire time of ``schedule`` (cron, UTC, moved by up to
``schedule_jitter`` so that many rotators do not hit Graph in the same second). Each pass is
``runner.run_pass``, the very pass `run` makes once. Passes never overlap. ``/healthz``, ``/readyz`` and
``/metrics`` are served on ``--listen`` meanwhile. Each pass runs in worker processes (service.workers;
``--workers N``, at least one, which ends with the pass): this process only forks them and serves, and
keeps no SDK, client or token cache between passes. What each worker's pass changed in the metrics comes
back with its results and lands in the one registry ``/metrics`` renders.

On SIGTERM or SIGINT: no new pass starts, a pass in flight may finish for ``--shutdown-timeout`` seconds
(a rotation cut short is repaired by the next pass, but a finished one is cheaper), then it is
cancelled; the server closes and the process exits 0. A second signal cancels the pass at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import resource
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger

from service import logs
from service.catalogue import Event
from service.clock import SystemClock, iso
from service.config.document import Config
from service.config.loading import load_config
from service.daemon_defaults import DEFAULT_LISTEN_HOST, DEFAULT_LISTEN_PORT, DEFAULT_SHUTDOWN_TIMEOUT
from service.errors import FailureReason, ServiceError
from service.http_endpoints import HttpServer, Limits, make_routes
from service.metrics import DEFAULT as METRICS
from service.metrics import Metrics
from service.ports import Clock
from service.reconcile import Outcome, TargetResult, count_outcomes
from service.runner import PassOptions, run_pass, select_targets
from service.schedule import cron_trigger
from service.shards import available_cpus
from service.stores import build_store

# An unlimited hard limit still needs a number for the soft one: this is Linux's default fs.nr_open.
_MOST_OPEN_FILES = 1 << 20


WINDOW_WAKE_JITTER = timedelta(minutes=1)  # at most this much after a window opens (schedule_jitter caps it)


@dataclass(frozen=True)
class PassReport:
    """How one pass ended, as the probes tell it."""

    started_at: datetime
    finished_at: datetime
    seconds: float
    counts: dict[str, int]
    failures: dict[str, str] = field(default_factory=dict)  # target -> reason
    error: str | None = None  # the pass could not run at all (e.g. the state store is unusable)

    @classmethod
    def of(
        cls, started_at: datetime, finished_at: datetime, seconds: float, results: Sequence[TargetResult]
    ) -> PassReport:
        """The report of a pass that ran: its outcome counts and each failed target's reason."""
        counts = count_outcomes(results)
        failures = {
            r.target: r.error.reason.value if r.error else FailureReason.UNEXPECTED.value
            for r in results
            if r.outcome is Outcome.FAILED
        }
        return cls(started_at, finished_at, seconds, counts, failures)

    @property
    def failed_everywhere(self) -> bool:
        """The pass could not run, or every target failed: the daemon is not doing its job."""
        return self.error is not None or (bool(self.failures) and len(self.failures) == sum(self.counts.values()))

    def to_json(self) -> dict[str, Any]:
        """The report as the probes show it."""
        return {
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "seconds": round(self.seconds, 3),
            **self.counts,
            "failures": self.failures,
            "error": self.error,
        }


class Daemon:
    """The daemon's core, usable in-process: ``await start()``, passes run on ``trigger``, ``await stop()``.

    ``trigger`` defaults to the config's schedule; tests inject a short IntervalTrigger.
    """

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        metrics: Metrics = METRICS,
        listen: tuple[str, int] = (DEFAULT_LISTEN_HOST, DEFAULT_LISTEN_PORT),
        options: PassOptions | None = None,
        trigger: BaseTrigger | None = None,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        http_limits: Limits | None = None,
    ) -> None:
        self._config = config
        self._clock = clock or SystemClock()
        self._metrics = metrics
        self._options = options or PassOptions()
        self._trigger = trigger or cron_trigger(config.schedule, config.schedule_jitter)
        self.shutdown_timeout = shutdown_timeout
        self._server = HttpServer(make_routes(self, metrics.registry), *listen, limits=http_limits)
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._job: Any = None
        self._started_at: datetime | None = None
        self._stopping = False
        self._in_flight: asyncio.Task[None] | None = None
        self._in_flight_since: datetime | None = None
        self._passes = 0
        self._last: PassReport | None = None
        self._changed = asyncio.Condition()
        self._log = logs.get_logger()

    @property
    def url(self) -> str:
        """Where a client on this host reaches the probe server."""
        return self._server.url

    @property
    def last_pass(self) -> PassReport | None:
        """How the last pass ended; None before the first one has."""
        return self._last

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve the endpoints, then schedule: the start-up pass at once, the next ones on the trigger."""
        await self._server.start()
        self._started_at = self._clock.now()
        self._job = self._scheduler.add_job(
            self._scheduled_pass,
            self._trigger,
            id="reconcile",
            name="reconcile pass",
            next_run_time=datetime.now(UTC),  # the scheduler's own time (its triggers run on the system clock)
            max_instances=1,  # a pass still running when the next is due: skip the next, never overlap
            coalesce=True,  # fire times missed while the loop was busy or the host asleep: one pass, not many
            # A late pass is always better than a skipped one (it is idempotent, and the next slot may
            # be hours away), so there is no deadline after which a missed fire time is dropped.
            misfire_grace_time=None,
        )
        self._scheduler.start()
        host, port = self._server.address
        self._log.info(
            Event.DAEMON_STARTED,
            listen=f"{host}:{port}",
            schedule=self._config.schedule,
            jitter_seconds=int(self._config.schedule_jitter.total_seconds()),
            targets=len(self._config.targets),
            trigger=str(self._trigger),
            max_connections=self._server.limits.max_connections,
        )

    async def stop(self, why: str = "stop requested") -> bool:
        """Stop scheduling, let a pass in flight finish for ``shutdown_timeout``, close; True if it was cut."""
        if self._stopping:
            return False
        self._stopping = True
        task = self._in_flight if self._in_flight and not self._in_flight.done() else None
        self._log.info(
            Event.DAEMON_STOPPING, why=why, pass_in_flight=task is not None, timeout_seconds=self.shutdown_timeout
        )
        if self._scheduler.running:
            # Paused first: shutting the scheduler down would cancel the job it is running.
            self._scheduler.pause()
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=self.shutdown_timeout)
            if not done:
                task.cancel()
                await asyncio.wait({task})
        cancelled = task is not None and task.cancelled()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the loop's next turn
        await self._server.stop()
        self._log.info(Event.DAEMON_STOPPED, passes=self._passes, pass_cancelled=cancelled)
        return cancelled

    def cancel_in_flight(self) -> None:
        """Cut the pass in flight now (a second SIGTERM: the operator will not wait)."""
        self.shutdown_timeout = 0
        if self._in_flight is not None and not self._in_flight.done():
            self._in_flight.cancel()

    async def wait_for_passes(self, count: int) -> PassReport:
        """The report of the ``count``-th finished pass (or a later one), once it has finished."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._passes >= count)
        assert self._last is not None
        return self._last

    @property
    def passes(self) -> int:
        """How many passes have finished."""
        return self._passes

    # --- passes ----------------------------------------------------------------------------------

    async def _scheduled_pass(self) -> None:
        if self._stopping:
            return
        # Its own task, so that stop() can wait for it or cancel it without APScheduler's executor
        # logging the cancellation as a job that crashed.
        self._in_flight = asyncio.create_task(self._pass(), name="reconcile-pass")
        await asyncio.wait({self._in_flight})

    async def _pass(self) -> None:
        started_at = self._clock.now()
        started = self._clock.monotonic()
        self._in_flight_since = started_at
        try:
            results = await run_pass(self._config, clock=self._clock, metrics=self._metrics, options=self._options)
            report = PassReport.of(started_at, self._clock.now(), self._clock.monotonic() - started, results)
            self._wake_at_window(results)
        except Exception as error:  # noqa: BLE001 - a pass that cannot run must not stop the daemon: the next may
            report = self._broken_pass(started_at, self._clock.monotonic() - started, error)
        finally:
            self._in_flight_since = None
        async with self._changed:
            self._passes += 1
            self._last = report
            self._changed.notify_all()

    def _wake_at_window(self, results: Sequence[TargetResult]) -> None:
        """Move the next pass forward to the opening of a maintenance window that something waits for, when the
        schedule would fire later: a schedule that never fires inside a window would leave every rotation to
        the safety override (service/policy/window.py). The schedule goes on as before after that pass."""
        openings = [
            r.plan.waiting.waits_until
            for r in results
            if r.plan is not None and r.plan.waiting is not None and r.plan.waiting.waits_until is not None
        ]
        if not openings or self._job is None or self._stopping:
            return
        # The scheduler runs on the system clock; the engine's clock may differ from it (the emulator's does).
        # Jittered like the schedule, so that the rotators waiting for one window do not all call Graph in its
        # first second; by at most a minute, so that the pass still lands inside a short window.
        most = min(self._config.schedule_jitter, WINDOW_WAKE_JITTER).total_seconds()
        jitter = timedelta(seconds=random.uniform(0, most))  # noqa: S311
        at = datetime.now(UTC) + (min(openings) - self._clock.now()) + jitter
        scheduled = getattr(self._job, "next_run_time", None)
        if scheduled is None or at < scheduled:
            self._job.modify(next_run_time=at)
            self._log.info(Event.DAEMON_WINDOW_WAKE, at=iso(min(openings)), instead_of=iso(scheduled))

    def _broken_pass(self, started_at: datetime, seconds: float, error: Exception) -> PassReport:
        reason = error.reason if isinstance(error, ServiceError) else FailureReason.UNEXPECTED
        hint = error.hint if isinstance(error, ServiceError) else None
        targets = [t.name for t in select_targets(self._config, self._options.only, self._options.shard)]
        for target in targets:
            # Counted per target, so that the failure alerts fire as they would for a target's own failure.
            self._metrics.failures.labels(target, reason.value).inc()
        text = str(error) if isinstance(error, ServiceError) else f"{type(error).__name__}: {error}"
        self._log.error(
            Event.DAEMON_PASS_FAILED,
            reason=reason.value,
            error=text,
            hint=hint,
            exc_info=not isinstance(error, ServiceError),
        )
        counts = count_outcomes(()) | {Outcome.FAILED.value: len(targets)}
        return PassReport(
            started_at, self._clock.now(), seconds, counts, dict.fromkeys(targets, reason.value), error=text
        )

    # --- what the probes say (http_endpoints.StatusSource) ---------------------------------------

    def _status(self) -> dict[str, Any]:
        next_run = getattr(self._job, "next_run_time", None) if self._scheduler.running else None
        now = self._clock.now()
        return {
            "started_at": iso(self._started_at),
            "uptime_seconds": round((now - self._started_at).total_seconds(), 1) if self._started_at else 0,
            "passes": self._passes,
            "pass_in_flight_since": iso(self._in_flight_since),
            "next_pass_at": None if self._stopping else iso(next_run),
            "schedule": self._config.schedule,
            "targets": len(self._config.targets),
            "last_pass": self._last.to_json() if self._last else None,
        }

    def liveness(self) -> dict[str, Any]:
        """:meth:`service.http_endpoints.StatusSource.liveness`."""
        return {"status": "alive", **self._status()}

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """:meth:`service.http_endpoints.StatusSource.readiness`: not ready while shutting down, before the first
        pass has finished, or when the last pass failed everywhere.
        """
        last = self._last
        if self._stopping:
            why: str | None = "shutting down"
        elif last is None:
            why = "the first pass has not finished yet"
        elif last.failed_everywhere:
            reasons = ", ".join(sorted(set(last.failures.values()))) or "unexpected"
            why = f"the last pass failed on every target ({reasons})"
        else:
            why = None
        return why is None, {"status": "ready" if why is None else "not ready", "reason": why, **self._status()}


# --- the command ---------------------------------------------------------------------------------


def raise_open_files_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; the soft limit it now has.

    The pass opens connections to Graph, Entra, every vault and push endpoint while the HTTP server
    accepts; a soft limit left at a low default (1024) is a budget a flood of the port can use up.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = _MOST_OPEN_FILES if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return _MOST_OPEN_FILES if soft == resource.RLIM_INFINITY else soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError):
        return soft  # not allowed (e.g. above fs.nr_open): keep what there is, and share that
    return wanted


def command(args: argparse.Namespace) -> int:
    """`secret-rotator daemon` (its arguments are registered in service/cli.py)."""
    logs.configure_as_asked(sys.stdout, args.log_format, args.log_level)
    config = load_config(args.config)
    build_store(config.state)  # an unusable state directory is a config error (exit 2), found before serving
    return asyncio.run(_serve(config, args, Limits.for_open_files(raise_open_files_limit())))


async def _serve(config: Config, args: argparse.Namespace, limits: Limits) -> int:
    _add_process_metrics(METRICS)
    daemon = Daemon(
        config,
        metrics=METRICS,
        listen=args.listen,
        shutdown_timeout=args.shutdown_timeout,
        http_limits=limits,
        options=PassOptions(workers=args.workers or available_cpus(), isolated=True),
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(signum: signal.Signals) -> None:
        received.append(signum.name)
        if len(received) == 1:
            stop.set()
        else:
            daemon.cancel_in_flight()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await daemon.start()
    except OSError as exc:
        host, port = args.listen
        logs.get_logger().error(
            Event.DAEMON_FAILED,
            error=f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="free the port or choose another with --listen",
        )
        return 1
    await stop.wait()
    await daemon.stop(f"received {received[0]}")
    return 0


def _add_process_metrics(metrics: Metrics) -> None:
    """process_resident_memory_bytes and friends: a long-running daemon is watched for leaks too."""
    from prometheus_client import ProcessCollector

    with contextlib.suppress(ValueError):  # already registered by an earlier daemon in this process
        ProcessCollector(registry=metrics.registry)
