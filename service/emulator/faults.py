"""Injected failures: latency, error statuses, throttling, dropped connections, hooks, and answers the
fault writes itself (``respond``: an echo, a malformed body, a redirect; ``flood``: a huge body; see
fault_bodies.py).

A fault matches a request by method and a regular expression over the path (query excluded). It can let
the first `skip` matches through, fire `count` times (or forever), and, with `after=True`, act only once
the request has been processed and committed, which is the case a client cannot tell apart from a
failure before the write: exactly what makes Graph's addPassword dangerous to retry.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from service.emulator.fault_bodies import check_template

FaultKind = Literal["latency", "status", "throttle", "drop", "hook", "respond", "flood"]
FAULT_KINDS: frozenset[str] = frozenset({"latency", "status", "throttle", "drop", "hook", "respond", "flood"})


@dataclass(frozen=True)
class RequestInfo:
    """What a hook is told about the request it fires on."""

    service: str
    method: str
    path: str
    query: str
    tenant_id: str | None
    phase: Literal["before", "after"]
    status: int | None = None  # the status the emulator answered, for `after` hooks


Hook = Callable[[RequestInfo], None]


@dataclass
class Fault:
    id: int
    path: re.Pattern[str]
    method: str | None
    kind: FaultKind
    delay: float = 0.0
    status: int = 503
    retry_after: int = 1
    count: int | None = None
    skip: int = 0
    after: bool = False
    hook: Hook | None = None
    body: str | None = None  # respond, flood: a template (fault_bodies.py)
    headers: dict[str, str] = field(default_factory=dict)  # respond: templates too
    content_type: str = "application/json"
    size: int = 0  # flood: bytes in all
    seen: int = field(default=0)
    fired: int = field(default=0)
    sent: int = field(default=0)  # flood: bytes written before the client hung up (or all of them)

    def describe(self) -> dict[str, object]:
        return {
            "id": self.id,
            "path": self.path.pattern,
            "method": self.method,
            "kind": self.kind,
            "delay": self.delay,
            "status": self.status,
            "retry_after": self.retry_after,
            "count": self.count,
            "skip": self.skip,
            "after": self.after,
            "fired": self.fired,
            "body": self.body,
            "headers": dict(self.headers),
            "content_type": self.content_type,
            "size": self.size,
            "sent": self.sent,
        }


class FaultSet:
    """The emulator's active faults; safe to change from another thread while serving."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(
        self,
        path: str = ".*",
        method: str | None = None,
        kind: FaultKind = "status",
        *,
        delay: float = 0.0,
        status: int = 503,
        retry_after: int = 1,
        count: int | None = None,
        skip: int = 0,
        after: bool = False,
        hook: Hook | None = None,
        body: str | None = None,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
        size: int = 0,
    ) -> int:
        """Register a fault and return its id (for :meth:`remove`)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {sorted(FAULT_KINDS)}")
        if kind == "hook" and hook is None:
            raise ValueError("a hook fault needs hook=callable(RequestInfo)")
        if kind == "flood" and size <= 0:
            raise ValueError("a flood fault needs size=bytes (more than 0)")
        for template in (body or "", *(headers or {}).values()):
            check_template(template)
        if kind == "throttle":
            status = 429
        if after and kind == "latency":
            raise ValueError("latency is added before the request is processed; after=True does not apply")
        with self._lock:
            fault = Fault(
                id=next(self._ids),
                path=re.compile(path),
                method=method.upper() if method else None,
                kind=kind,
                delay=delay,
                status=status,
                retry_after=retry_after,
                count=count,
                skip=skip,
                after=after,
                hook=hook,
                body=body,
                headers=dict(headers or {}),
                content_type=content_type,
                size=size,
            )
            self._faults.append(fault)
            return fault.id

    def remove(self, fault_id: int) -> None:
        with self._lock:
            self._faults = [f for f in self._faults if f.id != fault_id]

    def clear(self) -> None:
        with self._lock:
            self._faults = []

    def active(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def take(self, method: str, path: str) -> list[Fault]:
        """The faults that fire on this request, counting it against each matching fault."""
        firing: list[Fault] = []
        with self._lock:
            for fault in self._faults:
                if fault.method is not None and fault.method != method.upper():
                    continue
                if not fault.path.search(path):
                    continue
                fault.seen += 1
                if fault.seen <= fault.skip:
                    continue
                if fault.count is not None and fault.fired >= fault.count:
                    continue
                fault.fired += 1
                firing.append(fault)
        return firing
