"""Prometheus metrics: what the alert rules in deploy/ are built on.

Names and labels are a contract (deploy/ alerts use them). Values never carry secrets: labels are
target names, key ids (public), reasons and outcomes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from service.model import DEFAULT_MARKER, Credential, MissingEvidence

PREFIX = "secret_rotator"
_ExpiryLabels = tuple[str, str, str, str]  # target, key_id, managed, in_use
# The counters a worker's pass adds to, with their label names in order.
_COUNTERS = {
    "rotations": ("target", "reason"),
    "failures": ("target", "reason"),
    "remote_calls": ("service", "operation", "outcome"),
}


@dataclass
class MetricsUpdate:
    """What one worker process's pass changed, to be applied to the registry the parent serves.

    Counters as increments by label values, the targets' last success, and each target's expiry series
    as the worker left them (a target a worker reported replaces its series; the others keep theirs).
    """

    counters: dict[str, dict[tuple[str, ...], float]] = field(default_factory=dict)
    last_success: dict[str, float] = field(default_factory=dict)
    expiry: dict[str, list[tuple[_ExpiryLabels, float]]] = field(default_factory=dict)


class Metrics:
    """The service's Prometheus metrics in one registry (a fresh one per test, one for the process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        # Each target's expiry series, to remove them when its credentials change (prometheus_client keeps
        # no public index of a metric's children).
        self._expiry_series: dict[str, list[tuple[_ExpiryLabels, float]]] = {}
        self._last_success: dict[str, float] = {}
        self.credential_expiry = Gauge(
            f"{PREFIX}_credential_expiry_timestamp_seconds",
            "End date of each password credential on a target's app (unix seconds)",
            ["target", "key_id", "managed", "in_use"],
            registry=self.registry,
        )
        self.last_success = Gauge(
            f"{PREFIX}_last_success_timestamp_seconds",
            "When a pass last left the target healthy (unix seconds)",
            ["target"],
            registry=self.registry,
        )
        self.rotations = Counter(
            f"{PREFIX}_rotations", "Secrets created and delivered, by why", ["target", "reason"], registry=self.registry
        )
        self.failures = Counter(
            f"{PREFIX}_failures", "Failed target passes, by reason", ["target", "reason"], registry=self.registry
        )
        self.pass_duration = Histogram(
            f"{PREFIX}_pass_duration_seconds",
            "Wall time of a reconcile pass over all targets",
            buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=self.registry,
        )
        self.consumer_lagging = Gauge(
            f"{PREFIX}_consumer_lagging_seconds",
            "retire_on: usage: a superseded secret kept because the sign-in report shows no switch of its "
            "consumer; the value is the time since its successor was handed out",
            ["target", "key_id"],
            registry=self.registry,
        )
        self.evidence_unavailable = Gauge(
            f"{PREFIX}_evidence_unavailable",
            "retire_on: usage: 1 while the sign-in report gives no evidence (the grace period alone decides), by why",
            ["target", "reason"],
            registry=self.registry,
        )
        self._evidence_series: dict[str, tuple[list[str], list[str]]] = {}
        self.remote_calls = Counter(
            f"{PREFIX}_remote_calls",
            "Calls to Graph, Key Vault, Entra and push endpoints, by outcome (ok, transient, error)",
            ["service", "operation", "outcome"],
            registry=self.registry,
        )

    def credentials(
        self, target: str, credentials: Iterable[Credential], in_use: set[str], marker: str = DEFAULT_MARKER
    ) -> None:
        """Replace the target's expiry series with the credentials it has now (retired ones vanish)."""
        self._replace_expiry(
            target,
            [
                (
                    (
                        target,
                        credential.key_id,
                        str(credential.managed(marker)).lower(),
                        str(credential.key_id in in_use).lower(),
                    ),
                    credential.end.timestamp(),
                )
                for credential in credentials
                if credential.end is not None
            ],
        )

    def _replace_expiry(self, target: str, series: list[tuple[_ExpiryLabels, float]]) -> None:
        for labels, _ in self._expiry_series.pop(target, []):
            self.credential_expiry.remove(*labels)
        for labels, value in series:
            self.credential_expiry.labels(*labels).set(value)
        self._expiry_series[target] = series

    def evidence(self, target: str, now: datetime, lagging: Iterable[MissingEvidence], gap: str | None) -> None:
        """Replace the target's lagging-consumer and unavailable-evidence series with this pass's."""
        old_keys, old_gaps = self._evidence_series.pop(target, ([], []))
        for key_id in old_keys:
            self.consumer_lagging.remove(target, key_id)
        for reason in old_gaps:
            self.evidence_unavailable.remove(target, reason)
        keys = []
        for lag in lagging:
            self.consumer_lagging.labels(target, lag.key_id).set((now - lag.handed_out).total_seconds())
            keys.append(lag.key_id)
        if gap is not None:
            self.evidence_unavailable.labels(target, gap).set(1)
        self._evidence_series[target] = (keys, [gap] if gap is not None else [])

    def observer(self, service: str, operation: str) -> Callable[[str], None]:
        """A callback for service.retry that counts each attempt's outcome."""
        return lambda outcome: self.remote_calls.labels(service, operation, outcome).inc()

    def succeeded(self, target: str, at: datetime) -> None:
        """The target's pass ended well at ``at``."""
        self.last_success.labels(target).set(at.timestamp())
        self._last_success[target] = at.timestamp()

    # --- across processes (run --workers): a worker's changes, applied to the parent's registry ------

    def forget(self) -> None:
        """Start from nothing: no counter, last success or expiry series (a worker, before its pass,
        drops what it inherited from the parent, so that :meth:`update` holds this pass alone)."""
        for name in _COUNTERS:
            getattr(self, name).clear()
        self.last_success.clear()
        self.credential_expiry.clear()
        self._expiry_series.clear()
        self._last_success.clear()

    def update(self) -> MetricsUpdate:
        """What changed since :meth:`forget` (or since this object was made)."""
        counters: dict[str, dict[tuple[str, ...], float]] = {}
        for name, label_names in _COUNTERS.items():
            for family in getattr(self, name).collect():
                for sample in family.samples:
                    if sample.name.endswith("_total"):
                        labels = tuple(sample.labels[label] for label in label_names)
                        counters.setdefault(name, {})[labels] = sample.value
        return MetricsUpdate(counters, dict(self._last_success), {t: list(s) for t, s in self._expiry_series.items()})

    def apply(self, update: MetricsUpdate) -> None:
        """Add a worker's counters, and take its targets' last success and expiry series."""
        for name, values in update.counters.items():
            metric = getattr(self, name)
            for labels, value in values.items():
                metric.labels(*labels).inc(value)
        for target, at in update.last_success.items():
            self.last_success.labels(target).set(at)
            self._last_success[target] = at
        for target, series in update.expiry.items():
            self._replace_expiry(target, series)


DEFAULT = Metrics()
