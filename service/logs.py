"""structlog set-up: JSON lines on stdout (a console renderer on a TTY), scrubbed of secrets.

Every line has ``timestamp`` (UTC ISO 8601), ``level`` and ``event``; the event names are a contract
(DESIGN.md, "Logs, metrics, alerts"), listed with every other name in service/catalogue.py.
Tracebacks are rendered without local variables, and the last step scrubs every registered secret and
access token (in any encoding service.redact knows), bearer token and JWT from the rendered line,
whatever produced it (our code, an SDK's message, stdlib logging).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from service import redact

# The SDKs log each request at INFO; warnings and errors are worth a line.
_QUIET_LOGGERS = ("azure", "msal", "httpx", "httpcore", "kiota_http", "msgraph", "apscheduler", "aiohttp")


class RepeatLimiter:
    """At most ``burst`` lines of one kind per ``interval`` seconds; the rest are counted, not written.

    :meth:`admit` says whether a line may be written and, if so, how many of its kind were held back
    since the last one written: a flood of identical lines (a port under attack, a descriptor
    shortage that asyncio reports on every accept) costs a few lines a minute, and says how many.
    """

    def __init__(
        self, burst: int = 5, interval: float = 60.0, *, kinds: int = 256, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._burst = burst
        self._interval = interval
        self._kinds = kinds  # remembered kinds, so that varied lines cannot grow the table without end
        self._clock = clock
        self._lock = threading.Lock()
        # kind -> [start of its window, lines written in it, lines held back since the last written]
        self._windows: OrderedDict[Hashable, list[float]] = OrderedDict()

    def admit(self, kind: Hashable) -> int | None:
        """None: hold this line back. A number: write it, saying that many of its kind were held back."""
        now = self._clock()
        with self._lock:
            window = self._windows.get(kind)
            if window is None or now - window[0] >= self._interval:
                held = int(window[2]) if window is not None else 0
                self._windows[kind] = [now, 1, 0]
                self._windows.move_to_end(kind)
                while len(self._windows) > self._kinds:
                    self._windows.popitem(last=False)
                return held
            if window[1] < self._burst:
                window[1] += 1
                held, window[2] = int(window[2]), 0
                return held
            window[2] += 1
            return None


class _RepeatFilter(logging.Filter):
    """Rate-limits stdlib lines (the SDKs', aiohttp's, asyncio's) by logger, level and message."""

    def __init__(self, limiter: RepeatLimiter) -> None:
        super().__init__()
        self._limiter = limiter

    def filter(self, record: logging.LogRecord) -> bool:
        # The template when there is one; else the first line, cut short (asyncio formats its own text).
        template = record.msg if record.args else str(record.msg).split("\n", 1)[0][:200]
        held = self._limiter.admit((record.name, record.levelno, str(template)))
        if held is None:
            return False
        if held:
            record.suppressed = held
        return True


def _scrub_values(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    return {key: _scrub(value) for key, value in event_dict.items()}


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact.scrub(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


class _ScrubbedRenderer:
    """Renders with ``inner``, then scrubs the whole line: the wall behind every other wall."""

    def __init__(self, inner: Processor) -> None:
        self._inner = inner

    def __call__(self, logger: WrappedLogger, name: str, event_dict: EventDict) -> str:
        rendered = self._inner(logger, name, event_dict)
        return redact.scrub(rendered if isinstance(rendered, str) else str(rendered))


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        structlog.processors.StackInfoRenderer(),
    ]


def configure(stream: TextIO | None = None, *, json: bool | None = None, level: str = "info") -> None:
    """Set up structlog and route stdlib logging (the SDKs) through the same renderer."""
    stream = stream or sys.stdout
    as_json = json if json is not None else not stream.isatty()
    renderer: Processor = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    tracebacks: Processor = (
        structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False))
        if as_json
        else structlog.processors.format_exc_info
    )
    tail: list[Processor] = [tracebacks, _scrub_values, _ScrubbedRenderer(renderer)]
    numeric = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[*_shared_processors(), *tail],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # One write per line (message and newline together): the lines of worker processes sharing stdout
        # never run into each other (a pipe keeps writes of up to 4 KiB whole).
        logger_factory=structlog.WriteLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                structlog.stdlib.ExtraAdder(["suppressed"]),
                *_shared_processors(),
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
        )
    )
    handler.addFilter(_RepeatFilter(RepeatLimiter()))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    # azure-identity warns with Entra's whole answer for every refused token request, and the verifier is
    # refused on purpose while a new secret replicates; the engine reports what matters itself.
    logging.getLogger("azure.identity").setLevel(max(numeric, logging.ERROR))


def configure_as_asked(stream: TextIO, log_format: str = "auto", level: str = "info") -> None:
    """:func:`configure` as a command's ``--log-format`` (auto, json, console) and ``--log-level`` ask."""
    configure(stream, json=None if log_format == "auto" else log_format == "json", level=level)


def get_logger(**context: Any) -> Any:
    """A structlog logger with ``context`` bound to every line it writes (e.g. ``target=``)."""
    return structlog.get_logger().bind(**context)
