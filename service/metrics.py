"""Prometheus metrics: what the alert rules in deploy/ are built on.

Names and labels are a contract (deploy/ alerts use them). Values never carry secrets: labels are
target names, key ids (public), reasons and outcomes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from service.model import DEFAULT_MARKER, Credential

PREFIX = "secret_rotator"


class Metrics:
    """The service's Prometheus metrics in one registry (a fresh one per test, one for the process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        # Each target's expiry series, to remove them when its credentials change (prometheus_client keeps
        # no public index of a metric's children).
        self._expiry_series: dict[str, list[tuple[str, str, str, str]]] = {}
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
        for labels in self._expiry_series.pop(target, []):
            self.credential_expiry.remove(*labels)
        series = []
        for credential in credentials:
            if credential.end is None:
                continue
            labels = (
                target,
                credential.key_id,
                str(credential.managed(marker)).lower(),
                str(credential.key_id in in_use).lower(),
            )
            self.credential_expiry.labels(*labels).set(credential.end.timestamp())
            series.append(labels)
        self._expiry_series[target] = series

    def observer(self, service: str, operation: str) -> Callable[[str], None]:
        """A callback for service.retry that counts each attempt's outcome."""
        return lambda outcome: self.remote_calls.labels(service, operation, outcome).inc()

    def succeeded(self, target: str, at: datetime) -> None:
        """The target's pass ended well at ``at``."""
        self.last_success.labels(target).set(at.timestamp())


DEFAULT = Metrics()
