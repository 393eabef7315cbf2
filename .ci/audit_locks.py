"""Checks every pin of the lock files against the published advisories: `./dev.sh audit`, run by .ci/run.

pip-audit reads the locks as they are (--disable-pip: nothing is resolved or installed; every pin carries
its hashes) and asks PyPI's JSON API for the advisories of each pinned release. Its HTTP cache lives in
$SECRET_ROTATOR_AUDIT_CACHE (default ~/.cache/secret-rotator/pip-audit).

Some PyPI mirrors serve a project's JSON but not a release's (/pypi/NAME/VERSION/json answers 404), and
pip-audit then skips every pin as "not found" and still exits 0. The project's JSON lists the advisories
of its latest release, so a pin that is the latest release is checked there instead; a pin behind it
cannot be checked that way and is reported as not audited, with the fix (`./dev.sh lock` moves every
pin to the latest release).

Exit codes: 0 no pinned release has a known vulnerability; 1 one has (the report names it and the
releases that fix it: raise the floor in pyproject.toml if needed, then `./dev.sh lock`); 2 usage.
Pins that could not be audited at all (advisory service unreachable, mirror without the data) are
listed but pass, unless SECRET_ROTATOR_REQUIRE_AUDIT=1: advisories are outside data, and a CI run that
failed whenever the service was away, or whenever any dependency published a release, would say
nothing about the code under test. A known vulnerability always fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_JSON = "https://pypi.org/pypi/{name}/json"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def canonical(name: str) -> str:
    """PEP 503's normalised name: the form pip-audit reports and PyPI redirects to."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(text: str) -> set[tuple[str, str]]:
    """The ``(name, version)`` pins of a lock file (``name==version \\`` lines; markers and hashes aside)."""
    return {(canonical(name), version) for name, version in PIN.findall(text)}


@dataclass(frozen=True)
class Finding:
    """A known vulnerability of a pinned release."""

    name: str
    version: str
    advisory: str
    fixed_in: tuple[str, ...]

    def __str__(self) -> str:
        fix = f"fixed in {', '.join(self.fixed_in)}" if self.fixed_in else "no fixed release yet"
        return f"{self.name}=={self.version}: {self.advisory} ({fix})"


@dataclass
class Verdict:
    """What the audit found: vulnerable pins, and pins it could not check (with why)."""

    findings: list[Finding] = field(default_factory=list)
    unaudited: dict[str, str] = field(default_factory=dict)  # "name==version" -> reason
    audited: int = 0


def from_pip_audit(report: dict[str, Any]) -> tuple[Verdict, set[str]]:
    """pip-audit's JSON report as a verdict, and the names it skipped (to be looked up another way)."""
    verdict, skipped = Verdict(), set()
    for dependency in report.get("dependencies", []):
        name = canonical(dependency["name"])
        if "skip_reason" in dependency:
            skipped.add(name)
            continue
        verdict.audited += 1
        for vuln in dependency.get("vulns", []):
            fixed = tuple(vuln.get("fix_versions", []))
            verdict.findings.append(Finding(name, dependency["version"], vuln["id"], fixed))
    return verdict, skipped


def from_project_json(verdict: Verdict, name: str, pin: str, project: dict[str, Any] | None) -> None:
    """Check one pin against its project's JSON, whose advisories are those of the latest release."""
    if project is None:
        verdict.unaudited[f"{name}=={pin}"] = "PyPI did not answer"
        return
    latest = project["info"]["version"]
    if latest != pin:
        verdict.unaudited[f"{name}=={pin}"] = f"behind {latest}, the only release whose advisories PyPI listed"
        return
    verdict.audited += 1
    for vuln in project.get("vulnerabilities") or []:
        if not vuln.get("withdrawn"):
            verdict.findings.append(Finding(name, pin, vuln["id"], tuple(vuln.get("fixed_in") or ())))


def fetch_project(name: str, timeout: float = 15) -> dict[str, Any] | None:
    """The project's JSON from PyPI, or None when it cannot be had."""
    try:
        with urllib.request.urlopen(PROJECT_JSON.format(name=name), timeout=timeout) as response:  # noqa: S310 - a fixed https URL
            data: dict[str, Any] = json.load(response)
            return data
    except (OSError, ValueError):
        return None


def run_pip_audit(locks: Iterable[Path], cache: Path) -> tuple[dict[str, Any] | None, str]:
    """pip-audit's JSON report over the locks, or None and its last words when it could not ask anyone."""
    with tempfile.TemporaryDirectory(prefix="pip-audit-") as scratch:
        out = Path(scratch) / "report.json"
        command = [
            sys.executable,
            "-m",
            "pip_audit",
            "--disable-pip",
            "--require-hashes",
            "--progress-spinner",
            "off",
            "--vulnerability-service",
            "pypi",
            "--cache-dir",
            str(cache),
            "--format",
            "json",
            "--output",
            str(out),
        ]
        for lock in locks:
            command += ["--requirement", str(lock)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        # Exit 1 with a report means findings; without one, pip-audit failed before it could write it.
        if out.is_file() and out.stat().st_size:
            report: dict[str, Any] = json.loads(out.read_text())
            return report, ""
        last = [line for line in done.stderr.strip().splitlines() if line.strip()][-1:] or [f"exit {done.returncode}"]
        return None, last[0]


def audit(locks: list[Path], cache: Path, fetch: Callable[[str], dict[str, Any] | None] = fetch_project) -> Verdict:
    """Every pin of every lock: pip-audit first, the project JSON for what it skipped."""
    pins = set().union(*(read_pins(lock.read_text()) for lock in locks))
    report, error = run_pip_audit(locks, cache)
    if report is None:
        print(f"pip-audit could not reach its advisory service: {error}")
        verdict, skipped = Verdict(), {name for name, _ in pins}
    else:
        verdict, skipped = from_pip_audit(report)
    if skipped:
        print(f"pip-audit could not audit {len(skipped)} package(s); checking them against each project's JSON")
    names = sorted(skipped)
    with ThreadPoolExecutor(max_workers=8) as pool:
        projects = dict(zip(names, pool.map(fetch, names), strict=True))
    for name, version in sorted(pins):
        if name in projects:
            from_project_json(verdict, name, version, projects[name])
    return verdict


def report(verdict: Verdict, *, require_audit: bool) -> tuple[list[str], int]:
    """The lines to print after the audit, and the exit code."""
    lines = [f"VULNERABLE {finding}" for finding in verdict.findings]
    lines += [f"NOT AUDITED {pin}: {reason}" for pin, reason in sorted(verdict.unaudited.items())]
    found = len(verdict.findings)
    lines.append(
        f"{verdict.audited} pin(s) audited, {found} known vulnerabilit{'y' if found == 1 else 'ies'}, "
        f"{len(verdict.unaudited)} not audited"
    )
    if verdict.findings:
        lines.append(
            "fix: raise the dependency's floor in pyproject.toml past the affected releases if needed, "
            "then ./dev.sh lock and the whole suite"
        )
        return lines, 1
    if verdict.unaudited:
        lines.append(
            "the pins above were NOT checked: run the audit again once PyPI answers; a pin behind its "
            "latest release can be checked once ./dev.sh lock has moved it there"
        )
        if require_audit:
            lines.append("SECRET_ROTATOR_REQUIRE_AUDIT is set: pins that were not audited fail the audit")
            return lines, 1
    return lines, 0


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: audit_locks.py LOCK...", file=sys.stderr)
        return 2
    locks = [Path(a) for a in argv]
    cache = Path(os.environ.get("SECRET_ROTATOR_AUDIT_CACHE", Path.home() / ".cache" / "secret-rotator" / "pip-audit"))
    print(f"auditing {', '.join(map(str, locks))}")
    lines, code = report(
        audit(locks, cache), require_audit=os.environ.get("SECRET_ROTATOR_REQUIRE_AUDIT", "") not in ("", "0")
    )
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
