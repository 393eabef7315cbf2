"""A pass over many targets in several processes (`run --workers N`, and the daemon's passes).

The parent forks one worker per group of targets (service.shards.worker_groups: a tenant's targets in
one group). Each worker runs the ordinary in-process pass over its group on clients of its own, logs
``worker.started`` (with its pid), its targets' lines (each line one write, so lines of workers do not
mix; every line of a worker has ``worker``, its index) and ``worker.finished``, then sends its results
and what it changed in the metrics back through a pipe. The parent waits without blocking its event
loop (the daemon keeps answering its probes), adds the workers' metric changes to the registry it
serves, and returns every target's result.

A worker that dies before it reports (killed, out of memory, a crash in the interpreter) fails each of
its targets loudly: ``worker.failed`` once, then ``rotation.failed`` with reason ``unexpected`` for
every target it held, whatever it had done with them. Whatever it wrote is durable and the next pass
starts from gather, as after a killed `run`. The other workers finish their targets.

Fork, not spawn: the workers start in milliseconds with the parent's parsed config and imported
modules, and a config read from a pipe (``--config <(...)``) needs no second reading. The parent may
be inside a running event loop (the daemon, ``asyncio.run`` of `run`), so a worker first lets go of
the parent's loop, signal wake-up descriptor and signal handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import resource
import signal
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import structlog

from service import logs
from service.catalogue import Event
from service.config.document import Target
from service.errors import FailureReason, ServiceError
from service.metrics import Metrics, MetricsUpdate
from service.reconcile import Outcome, TargetResult, count_outcomes
from service.shards import tenant_key

# How the parent's pass reconciles a group in a worker: its targets, with the worker's own metrics.
Reconcile = Callable[[Sequence[Target], Metrics], Coroutine[Any, Any, list[TargetResult]]]

_STOP_WAIT = 5.0  # seconds a cancelled pass gives a worker to die after SIGKILL before it is left to init

_LOST_HINT = (
    "the worker's targets were cut short wherever they were; the next pass starts over from gather and repairs "
    "what was left half done (an orphan goes after in_flight_timeout). If it happens again, look for the pod's "
    "OOMKilled (raise its memory limit, or lower --workers) or a crash: run with --workers 1 --log-level debug"
)


@dataclass
class _Report:
    """What a worker sends back: its targets' results and what its pass changed in the metrics."""

    index: int
    results: list[TargetResult] = field(default_factory=list)
    metrics: MetricsUpdate = field(default_factory=MetricsUpdate)
    error: ServiceError | None = None  # the pass could not run at all (e.g. its clients could not be built)


async def run_in_workers(
    groups: Sequence[Sequence[Target]], reconcile: Reconcile, *, metrics: Metrics
) -> list[TargetResult]:
    """Every group in a worker process of its own; each target's result, in the order of ``groups``.

    ``metrics`` gets every worker's counters, last-success times and expiry series, and the failures
    of the targets of a worker that never reported.
    """
    context = multiprocessing.get_context("fork")
    started: list[_Worker] = []
    try:
        for index, group in enumerate(groups):
            receive, send = context.Pipe(duplex=False)
            process = context.Process(
                target=_work, args=(index, group, reconcile, metrics, send), name=f"secret-rotator-worker-{index}"
            )
            process.start()
            send.close()  # the worker holds the only writing end: its death is the end of the pipe
            started.append(_Worker(index, list(group), process, receive))
        reports = await asyncio.gather(*(worker.finish() for worker in started))
    finally:
        for worker in started:
            worker.stop()
    results: list[TargetResult] = []
    for worker, report in zip(started, reports, strict=True):
        if isinstance(report, _Report) and report.error is None:
            metrics.apply(report.metrics)
            results.extend(report.results)
        else:
            results.extend(worker.fail(report, metrics))
    return results


@dataclass
class _Worker:
    index: int
    targets: list[Target]
    process: BaseProcess
    pipe: Connection

    async def finish(self) -> _Report | str:
        """The worker's report once it has ended, or why there is none."""
        report: _Report | None = None
        await _readable(self.pipe.fileno(), self.process.sentinel)
        if self.pipe.poll():
            with contextlib.suppress(EOFError, OSError, ValueError):  # it died while sending, or before
                report = self.pipe.recv()
        await _readable(self.process.sentinel)
        self.process.join()
        if report is not None:
            if self.process.exitcode:
                # Reported, then died: its results stand, its death is worth a line.
                logs.get_logger().warning(
                    Event.WORKER_FAILED,
                    worker=self.index,
                    pid=self.process.pid,
                    error=_ending(self.process.exitcode),
                    after_report=True,
                )
            return report
        return _ending(self.process.exitcode)

    def stop(self) -> None:
        """Make sure the worker is gone (a cancelled pass: the daemon's shutdown timeout ran out)."""
        if self.process.exitcode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            self.process.join(_STOP_WAIT)
        self.pipe.close()

    def fail(self, report: _Report | str, metrics: Metrics) -> list[TargetResult]:
        """A failed result for each of this worker's targets, each logged and counted as any failure is."""
        log = logs.get_logger()
        if isinstance(report, _Report) and report.error is not None:
            error = report.error
            message, reason, hint = str(error), error.reason, error.hint
        else:
            message = f"worker {self.index} (pid {self.process.pid}) {report} before it reported on its targets"
            reason, hint = FailureReason.UNEXPECTED, _LOST_HINT
        log.error(
            Event.WORKER_FAILED,
            worker=self.index,
            pid=self.process.pid,
            targets=len(self.targets),
            reason=reason.value,
            error=message,
            hint=hint,
        )
        results = []
        for target in self.targets:
            failure = ServiceError(message, reason=reason, hint=hint)
            metrics.failures.labels(target.name, reason.value).inc()
            log.error(Event.ROTATION_FAILED, target=target.name, reason=reason.value, hint=hint, error=message)
            results.append(TargetResult(target.name, Outcome.FAILED, error=failure))
        return results


def _ending(exitcode: int | None) -> str:
    if exitcode is None:
        return "did not end"
    if exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


async def _readable(*fds: int) -> None:
    """Until any of ``fds`` can be read (a pipe's data or end, a process's sentinel), on the running loop."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    for fd in fds:
        loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        for fd in fds:
            loop.remove_reader(fd)


# --- in the worker process -----------------------------------------------------------------------


def _work(index: int, targets: Sequence[Target], reconcile: Reconcile, metrics: Metrics, send: Connection) -> None:
    _leave_the_parents_loop()
    structlog.contextvars.bind_contextvars(worker=index)
    began, cpu = time.monotonic(), time.process_time()
    logs.get_logger().info(
        Event.WORKER_STARTED,
        pid=os.getpid(),
        targets=len(targets),
        tenants=len({tenant_key(t.tenant_id) for t in targets}),
    )
    # The parent's series came along with the fork: start from nothing, so that what is sent is this pass.
    metrics.forget()
    report = _Report(index)
    try:
        report.results = asyncio.run(reconcile(targets, metrics))
        report.metrics = metrics.update()
    except ServiceError as error:
        report.error = error
    except Exception as error:  # noqa: BLE001 - whatever it is, the parent must hear of it, scrubbed
        logs.get_logger().exception(Event.WORKER_CRASHED)
        report.error = ServiceError(f"{type(error).__name__} in worker {index}", reason=FailureReason.UNEXPECTED)
    logs.get_logger().info(
        Event.WORKER_FINISHED,
        targets=len(targets),
        seconds=round(time.monotonic() - began, 3),
        cpu_seconds=round(time.process_time() - cpu, 3),
        peak_rss_mb=_peak_rss_mb(),
        **count_outcomes(report.results),
    )
    send.send(report)
    send.close()


def _leave_the_parents_loop() -> None:
    """Forget the event loop, wake-up descriptor and signal handlers inherited from the parent.

    A signal to the worker would otherwise be written to the parent's loop's wake-up pipe, and the
    parent would take the worker's SIGTERM for its own. The worker dies of SIGTERM and SIGINT (the
    parent decides about a pass in flight); Python 3.12 resets the loop itself, 3.11 does not.
    """
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)
    asyncio.set_event_loop_policy(None)


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
