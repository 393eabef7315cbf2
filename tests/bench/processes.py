"""Measuring a command with its child processes (the workers of `run --workers`), for the benchmarks.

``measure(argv)`` runs it and reports its wall time, the CPU time of it and every descendant it waited
for (os.wait4), the peak RSS of the largest single process, and the peak memory of the whole process
tree: the sum of each process's PSS (forked workers share pages with their parent; PSS counts a shared
page once across them), sampled every ``interval`` seconds from /proc.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Measured:
    code: int
    wall: float  # seconds
    cpu: float  # seconds, user + system, the command and the descendants it waited for
    largest_rss_mib: float  # the peak RSS of the largest single process of the tree
    tree_pss_mib: float  # the peak of the sum of PSS over the tree (sampled)
    processes: int  # the most processes the tree had at once (sampled)


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (Linux: /proc/PID/task/PID/children)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            todo.extend(int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split())
        except (OSError, ValueError):
            continue
    return found


def pss_kib(pid: int) -> int:
    """A process's proportional set size, or its RSS where smaps_rollup cannot be read; 0 once it is gone."""
    for path, field in ((f"/proc/{pid}/smaps_rollup", "Pss:"), (f"/proc/{pid}/status", "VmRSS:")):
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(field):
                    return int(line.split()[1])
        except (OSError, ValueError):
            continue
    return 0


def cpu_seconds(pid: int) -> float:
    """User and system CPU a running process has used so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    argv: Sequence[str], *, cwd: Path, env: dict[str, str], stdout: Path, stderr: Path, interval: float = 0.2
) -> Measured:
    """Run ``argv`` to its end, its output to the two files, and measure it."""
    peak = {"pss": 0, "processes": 0}
    done = threading.Event()

    def sample(pid: int) -> None:
        while not done.wait(interval):
            tree = descendants(pid)
            peak["pss"] = max(peak["pss"], sum(pss_kib(p) for p in tree))
            peak["processes"] = max(peak["processes"], len(tree))

    with stdout.open("wb") as out, stderr.open("wb") as err:
        began = time.monotonic()
        child = subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=out, stderr=err)
        sampler = threading.Thread(target=sample, args=(child.pid,), daemon=True)
        sampler.start()
        # wait4, not child.wait(): the rusage of the child and of the workers it waited for.
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.monotonic() - began
        child.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
    return Measured(
        child.returncode,
        wall,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss / 1024,
        peak["pss"] / 1024,
        peak["processes"],
    )
