"""Which shard and which worker a target goes to: stable, by tenant, balanced enough; and the options' words."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from service.errors import ConfigError
from service.shards import (
    Shard,
    available_cpus,
    parse_count,
    parse_shard,
    shard_from_environment,
    shard_of,
    worker_groups,
)

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class T:
    name: str
    tenant_id: str


def tenants(count: int) -> list[str]:
    return [str(uuid.uuid5(uuid.NAMESPACE_DNS, f"tenant-{i}.example")) for i in range(count)]


# --- shards --------------------------------------------------------------------------------------

# sha256 of the lower-case tenant id, its first 8 bytes big-endian, mod N: written down once, so that a
# change of the function (or of Python) that would move tenants between shard stores fails here.
KNOWN = [
    ("00000000-0000-0000-0000-000000000001", [0, 1, 0, 1, 5, 13, 33]),
    ("72f988bf-86f1-41af-91ab-2d7cd011db47", [0, 1, 2, 3, 3, 3, 47]),
    ("f8cdef31-a31e-4b4a-93e4-5f571e91255a", [0, 1, 0, 3, 3, 11, 19]),
]
COUNTS = (1, 2, 3, 4, 8, 16, 100)


@pytest.mark.parametrize(
    ("tenant", "shards"), [pytest.param(t, s, id=f"tenant {t} keeps its shards") for t, s in KNOWN]
)
def test_a_tenants_shard_is_written_in_stone(tenant: str, shards: list[int]) -> None:
    assert [shard_of(tenant, n) for n in COUNTS] == shards


def test_the_shard_does_not_depend_on_the_process_hash_seed() -> None:
    """``hash()`` of a str changes with every process; the shard must not."""
    probe = f"from service.shards import shard_of; print([shard_of(t, 7) for t in {tenants(50)!r}])"
    seen = {
        subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(seen) == 1
    assert seen == {f"{[shard_of(t, 7) for t in tenants(50)]}\n"}


def test_a_tenant_id_in_capitals_is_the_same_tenant() -> None:
    for tenant in tenants(20):
        assert shard_of(tenant.upper(), 8) == shard_of(tenant, 8) == shard_of(f" {tenant} ", 8)


def test_shards_are_balanced_enough() -> None:
    counts = [0] * 8
    for tenant in tenants(4000):
        counts[shard_of(tenant, 8)] += 1
    assert min(counts) > 500 * 0.85, counts
    assert max(counts) < 500 * 1.15, counts


def test_each_target_is_in_exactly_one_shard_with_its_whole_tenant() -> None:
    targets = [T(f"t{i}", tenant) for i, tenant in enumerate(tenants(30) * 3)]
    shards = [Shard(i, 4).select(targets) for i in range(4)]

    assert sorted(t.name for shard in shards for t in shard) == sorted(t.name for t in targets)
    for shard in shards:
        assert all(t.tenant_id in {u.tenant_id for u in shard} for t in targets if t in shard)
        assert [t for t in targets if t in shard] == shard, "the config's order"
    assert len({tuple(t.tenant_id for t in s) for s in shards}) == 4


def test_adding_a_tenant_moves_no_other_tenant() -> None:
    before = {t: shard_of(t, 5) for t in tenants(40)}
    after = {t: shard_of(t, 5) for t in tenants(41)}
    assert {t: after[t] for t in before} == before


# --- workers -------------------------------------------------------------------------------------


def test_workers_keep_a_tenant_together_and_balance_by_targets() -> None:
    sizes = [40, 25, 20, 10, 5, 5, 3, 1, 1]
    targets = [
        T(f"{t}-{i}", tenant)
        for t, (tenant, size) in enumerate(zip(tenants(9), sizes, strict=True))
        for i in range(size)
    ]

    groups = worker_groups(targets, 3)

    assert len(groups) == 3
    for group in groups:
        assert group == [t for t in targets if t in group], "each group keeps the config's order"
    assert sorted(t.name for g in groups for t in g) == sorted(t.name for t in targets)
    for tenant in tenants(9):
        assert sum(any(t.tenant_id == tenant for t in g) for g in groups) == 1
    # The largest tenant alone sets the longest worker; the others share the rest evenly.
    assert sorted(len(g) for g in groups) == [35, 35, 40]


@pytest.mark.parametrize(
    ("tenant_count", "workers", "groups"),
    [
        pytest.param(1, 8, 1, id="one tenant: one worker, whatever was asked"),
        pytest.param(3, 8, 3, id="never more workers than tenants"),
        pytest.param(10, 4, 4, id="as many workers as asked when there are enough tenants"),
        pytest.param(0, 4, 0, id="no target: no worker"),
    ],
)
def test_workers_never_outnumber_the_tenants(tenant_count: int, workers: int, groups: int) -> None:
    targets = [T(f"t{i}", tenant) for i, tenant in enumerate(tenants(tenant_count) * 2)]
    found = worker_groups(targets, workers)
    assert len(found) == groups
    assert all(found)


def test_worker_groups_are_the_same_every_time() -> None:
    targets = [T(f"t{i}", tenant) for i, tenant in enumerate(tenants(25) * 4)]
    assert worker_groups(targets, 4) == worker_groups(list(targets), 4)


# --- the options' words --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shard"),
    [
        pytest.param("0/1", Shard(0, 1), id="the one shard of one"),
        pytest.param("3/4", Shard(3, 4), id="the last of four"),
        pytest.param(" 2 / 8 ", Shard(2, 8), id="spaces are forgiven"),
    ],
)
def test_a_shard_is_i_of_n_counting_from_0(text: str, shard: Shard) -> None:
    assert parse_shard(text) == shard
    assert str(shard) == text.replace(" ", "")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param("4/4", "counts from 0, so shard 4 of 4 does not exist (0/4 to 3/4)", id="I equal to N"),
        pytest.param("0/0", "N must be at least 1", id="no shard at all"),
        pytest.param("1", "is not I/N", id="the index alone"),
        pytest.param("-1/4", "is not I/N", id="a negative index"),
        pytest.param("a/b", "is not I/N", id="not numbers"),
        pytest.param("0/1001", "may be at most 1000", id="more shards than allowed"),
    ],
)
def test_a_shard_that_is_not_one_says_why(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_shard(text)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param("0", "must be at least 1", id="zero"),
        pytest.param("x", "is not a whole number", id="a word"),
        pytest.param("257", "may be at most 256", id="too many"),
    ],
)
def test_a_count_that_is_not_one_says_why(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_count(text, 256)


@pytest.mark.parametrize(
    ("environ", "result"),
    [
        pytest.param({"JOB_COMPLETION_INDEX": "2"}, Shard(2, 3), id="the Job's index is the shard"),
        pytest.param({}, "which is not set", id="not in an Indexed Job"),
        pytest.param({"JOB_COMPLETION_INDEX": "3"}, "completions must equal --shards", id="an index beyond N"),
        pytest.param({"JOB_COMPLETION_INDEX": "two"}, "not a shard index from 0 to 2", id="not a number"),
    ],
)
def test_shards_takes_the_index_from_the_indexed_job(environ: dict[str, str], result: Shard | str) -> None:
    if isinstance(result, Shard):
        assert shard_from_environment(3, environ) == result
        return
    with pytest.raises(ConfigError) as caught:
        shard_from_environment(3, environ)
    assert result in str(caught.value)


@pytest.mark.parametrize(
    ("files", "most"),
    [
        pytest.param({"cpu.max": "150000 100000\n"}, 2, id="cgroup v2 quota of 1.5 CPUs: 2 workers"),
        pytest.param({"cpu.max": "50000 100000\n"}, 1, id="half a CPU: 1"),
        pytest.param({"cpu.max": "max 100000\n"}, None, id="no quota: every CPU"),
        pytest.param(
            {"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3, id="cgroup v1 quota of 3 CPUs"
        ),
        pytest.param(
            {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None, id="cgroup v1 without a quota"
        ),
        pytest.param({}, None, id="no cgroup files"),
    ],
)
def test_the_default_workers_are_the_cpus_the_pod_may_use(
    tmp_path: Path, files: dict[str, str], most: int | None
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    cpus = len(os.sched_getaffinity(0))
    assert available_cpus(tmp_path) == (cpus if most is None else min(cpus, most))
