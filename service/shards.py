"""Which targets a pod and a process take: a tenant's targets always stay together.

Two splits, both by tenant, so that one tenant's Graph client, token and throttle budget live in one
process and its receipts in one store:

- **shards** (`run --shard I/N`, an Indexed Job's pods): a tenant belongs to shard
  ``sha256(tenant id) mod N``. It depends on the tenant id and N alone, never on the rest of the config
  or on the Python version (``hash()`` is salted per process): adding a tenant moves no other tenant,
  so each shard's state store keeps the receipts of the same tenants from run to run.
- **workers** (`run --workers N`, processes inside one pod): every worker reads and writes the same
  state store, so stability across config changes buys nothing there, while balance is wall time.
  Tenants go, most targets first, to the worker with the fewest targets so far (ties by the shard
  hash): deterministic for a given config, and never more workers than tenants.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from service.errors import ConfigError

JOB_COMPLETION_INDEX = "JOB_COMPLETION_INDEX"  # set by Kubernetes in each pod of an Indexed Job
MAX_SHARDS = 1000
MAX_WORKERS = 256


class HasTenant(Protocol):
    """Anything with a tenant id (a config target): what shards are chosen by."""

    @property
    def tenant_id(self) -> str:
        """The Entra tenant the thing belongs to."""
        ...


T = TypeVar("T", bound=HasTenant)


def tenant_key(tenant_id: str) -> str:
    """A tenant id as the splits compare it: GUIDs in any letter case are the same tenant."""
    return tenant_id.strip().lower()


def _digest(tenant_id: str) -> int:
    return int.from_bytes(hashlib.sha256(tenant_key(tenant_id).encode("utf-8")).digest()[:8], "big")


def shard_of(tenant_id: str, count: int) -> int:
    """The shard (0 to ``count - 1``) that ``tenant_id``'s targets belong to, out of ``count``."""
    if count < 1:
        raise ValueError("the number of shards is at least 1")
    return _digest(tenant_id) % count


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (the index counts from 0, like ``JOB_COMPLETION_INDEX``)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, tenant_id: str) -> bool:
        """Whether the tenant's targets are this shard's."""
        return shard_of(tenant_id, self.count) == self.index

    def select(self, targets: Sequence[T]) -> list[T]:
        """The targets of this shard, in their order."""
        return [t for t in targets if self.holds(t.tenant_id)]


def parse_shard(text: str) -> Shard:
    """``I/N`` as given to ``--shard``; ValueError with the fix if it is not one."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise ValueError(f"{text!r} is not I/N (shard I of N, I counting from 0), e.g. 0/4")
    index, count = int(match[1]), int(match[2])
    _check_count(count, f"{text!r}: N")
    if index >= count:
        raise ValueError(
            f"{text!r}: the shard index counts from 0, so shard {index} of {count} does not exist "
            f"(0/{count} to {count - 1}/{count})"
        )
    return Shard(index, count)


def parse_count(text: str, most: int) -> int:
    """A count from 1 to ``most`` given on the command line; ValueError with the fix if it is not one."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None
    _check_count(value, f"{value}: it", most)
    return value


def _check_count(count: int, what: str, most: int = MAX_SHARDS) -> None:
    if count < 1:
        raise ValueError(f"{what} must be at least 1")
    if count > most:
        raise ValueError(f"{what} may be at most {most}")


def shard_from_environment(count: int, environ: Mapping[str, str]) -> Shard:
    """``--shards N``: this pod's shard of ``count``, from ``JOB_COMPLETION_INDEX``; ConfigError if unusable."""
    value = environ.get(JOB_COMPLETION_INDEX)
    if value is None or not value.strip():
        raise ConfigError(
            f"--shards {count} takes the shard index from ${JOB_COMPLETION_INDEX}, which is not set: run it as a "
            f"pod of an Indexed Job (completionMode: Indexed), or give the shard with --shard I/{count}"
        )
    try:
        return parse_shard(f"{value.strip()}/{count}")
    except ValueError:
        raise ConfigError(
            f"--shards {count}: ${JOB_COMPLETION_INDEX} is {value.strip()[:20]!r}, not a shard index from 0 to "
            f"{count - 1}: the Job's completions must equal --shards"
        ) from None


def worker_groups(targets: Sequence[T], workers: int) -> list[list[T]]:
    """``targets`` split into at most ``workers`` non-empty groups, a tenant's targets in one group.

    Largest tenants first, each to the group with the fewest targets so far; each group keeps the
    targets' own order. Fewer groups than ``workers`` when there are fewer tenants.
    """
    by_tenant: dict[str, list[int]] = {}
    for position, target in enumerate(targets):
        by_tenant.setdefault(tenant_key(target.tenant_id), []).append(position)
    count = max(1, min(workers, len(by_tenant)))
    loads = [0] * count
    chosen: list[list[int]] = [[] for _ in range(count)]
    for tenant in sorted(by_tenant, key=lambda t: (-len(by_tenant[t]), _digest(t), t)):
        lightest = min(range(count), key=lambda i: (loads[i], i))
        loads[lightest] += len(by_tenant[tenant])
        chosen[lightest].extend(by_tenant[tenant])
    return [[targets[p] for p in sorted(group)] for group in chosen if group]


def available_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """How many CPUs this process may use: its affinity, capped by a cgroup CPU quota (a pod's limit)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def _cgroup_quota(cgroup: Path) -> float | None:
    """CPUs the cgroup's quota allows (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), None when unlimited."""
    try:
        fields = (cgroup / "cpu.max").read_text().split()  # "max 100000" or "150000 100000"
        if len(fields) == 2 and fields[0] != "max":
            return int(fields[0]) / int(fields[1])
        return None
    except (OSError, ValueError, ZeroDivisionError):
        pass
    try:
        quota = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None
