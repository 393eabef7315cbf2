"""The alert rules of each overlay, run by promtool against made-up series: each alert fires in the
situation it is for, and stays quiet in the ones that look alike.

promtool's clock starts at 0, so ``time()`` is the evaluation time and a timestamp gauge's value is
"seconds after the start". promtool compares annotations too; the rules are tested without them (their
templates are checked by ``promtool check rules``), so a reworded description changes no test here.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

HOUR = 3600
DAY = 86400
NS = "secret-rotator"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.skip("promtool is not installed: Debian's `prometheus` package ships it")
    return found


@pytest.fixture(scope="module")
def rule_files(
    renders: dict[str, list[dict[str, Any]]], promtool: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """Each overlay's rule groups as a plain Prometheus rule file, checked, then stripped of annotations."""
    folder = tmp_path_factory.mktemp("rules")
    files = {}
    for overlay, docs in renders.items():
        (spec,) = [d["spec"] for d in docs if d["kind"] == "PrometheusRule"]
        checked = folder / f"{overlay}.yaml"
        checked.write_text(yaml.safe_dump(spec), encoding="utf-8")
        done = subprocess.run([promtool, "check", "rules", str(checked)], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        for group in spec["groups"]:
            for rule in group["rules"]:
                rule.pop("annotations", None)
        files[overlay] = folder / f"{overlay}.bare.yaml"
        files[overlay].write_text(yaml.safe_dump(spec), encoding="utf-8")
    return files


@dataclass(frozen=True)
class Case:
    overlay: str
    alert: str
    series: dict[str, str]  # series selector -> promtool values, one sample a minute
    at: str  # evaluation time, e.g. "2h"
    fires: list[dict[str, str]] = field(default_factory=list)  # the alerts' labels; [] for none


def failures(reason: str = "permission_denied") -> str:
    return f'secret_rotator_failures_total{{namespace="{NS}",target="dime",reason="{reason}"}}'


def expiry(in_use: str) -> str:
    labels = f'namespace="{NS}",target="dime",key_id="k1",managed="true",in_use="{in_use}"'
    return f"secret_rotator_credential_expiry_timestamp_seconds{{{labels}}}"


LAST_SUCCESS = f'secret_rotator_last_success_timestamp_seconds{{namespace="{NS}",target="dime"}}'
LAGGING = f'secret_rotator_consumer_lagging_seconds{{namespace="{NS}",target="dime",key_id="k1"}}'
FAILED_TARGET = {"namespace": NS, "target": "dime", "reason": "permission_denied", "severity": "warning"}


def job(metric: str, owner: str = "secret-rotator") -> str:
    extra = f',owner_kind="CronJob",owner_name="{owner}"' if metric == "kube_job_owner" else ""
    return f'{metric}{{namespace="{NS}",job_name="secret-rotator-100"{extra}}}'


LAST_RUN_OK = f'kube_cronjob_status_last_successful_time{{namespace="{NS}",cronjob="secret-rotator"}}'
CREATED = f'kube_cronjob_created{{namespace="{NS}",cronjob="secret-rotator"}}'
FAILED_JOB = {"namespace": NS, "job_name": "secret-rotator-100", "severity": "warning"}
STALE_CRONJOB = {"namespace": NS, "cronjob": "secret-rotator", "severity": "warning"}


def failed_job(*, active: int = 0, owner: str = "secret-rotator", started: int = 3600) -> dict[str, str]:
    """A Job of the CronJob that started at ``started`` s and has one failed pod."""
    return {
        job("kube_job_status_failed"): "1x60",
        job("kube_job_status_active"): f"{active}x60",
        job("kube_job_status_succeeded"): "0x60",
        job("kube_job_status_start_time"): f"{started}x60",
        job("kube_job_owner", owner): "1x60",
    }


CASES = {
    # --- daemon -----------------------------------------------------------------------------------
    "daemon: a failed pass raises SecretRotatorRotationFailed with its target and reason": Case(
        "daemon", "SecretRotatorRotationFailed", {failures(): "0x60 1x600"}, "2h", [FAILED_TARGET]
    ),
    "daemon: a failure counter born at its first failure raises it too": Case(
        "daemon", "SecretRotatorRotationFailed", {failures(): "_x60 1x600"}, "2h", [FAILED_TARGET]
    ),
    "daemon: a failure older than one schedule period no longer alerts": Case(
        "daemon", "SecretRotatorRotationFailed", {failures(): "0x60 1x600"}, "9h"
    ),
    "daemon: a failure counter still at zero does not alert": Case(
        "daemon", "SecretRotatorRotationFailed", {failures(): "0x600"}, "2h"
    ),
    "daemon: twelve hours without a successful pass raises SecretRotatorNoSuccessfulPass": Case(
        "daemon",
        "SecretRotatorNoSuccessfulPass",
        {LAST_SUCCESS: "0x800"},
        "12h10m",
        [{"namespace": NS, "target": "dime", "severity": "warning"}],
    ),
    "daemon: a pass that succeeded eleven hours ago is not stale": Case(
        "daemon", "SecretRotatorNoSuccessfulPass", {LAST_SUCCESS: "0x800"}, "11h"
    ),
    "daemon: the secret in use expiring in 6 days raises SecretRotatorSecretExpiringSoon": Case(
        "daemon",
        "SecretRotatorSecretExpiringSoon",
        {expiry("true"): f"{6 * DAY}x60"},
        "30m",
        [{"namespace": NS, "target": "dime", "key_id": "k1", "severity": "critical"}],
    ),
    "daemon: the secret in use with 8 days left does not alert": Case(
        "daemon", "SecretRotatorSecretExpiringSoon", {expiry("true"): f"{8 * DAY}x60"}, "30m"
    ),
    "daemon: a secret no sink holds expires without an alert": Case(
        "daemon", "SecretRotatorSecretExpiringSoon", {expiry("false"): f"{DAY}x60"}, "30m"
    ),
    "daemon: a daemon that cannot be scraped raises SecretRotatorDown": Case(
        "daemon", "SecretRotatorDown", {'up{job="secret-rotator"}': "0x60"}, "20m", [{"severity": "warning"}]
    ),
    "daemon: a daemon that is scraped does not raise SecretRotatorDown": Case(
        "daemon", "SecretRotatorDown", {'up{job="secret-rotator"}': "1x60"}, "20m"
    ),
    "daemon: a consumer the sign-in report shows lagging raises SecretRotatorConsumerLagging": Case(
        "daemon",
        "SecretRotatorConsumerLagging",
        {LAGGING: f"{DAY}+60x60"},
        "30m",
        [{"namespace": NS, "target": "dime", "key_id": "k1", "severity": "warning"}],
    ),
    "daemon: no lagging consumer once the old secret is retired (its series is gone)": Case(
        "daemon", "SecretRotatorConsumerLagging", {LAGGING: f"{DAY}+60x10 _x50", LAST_SUCCESS: "0x60"}, "30m"
    ),
    # --- cronjob ----------------------------------------------------------------------------------
    "cronjob: a Job that failed after the last successful run raises SecretRotatorJobFailed": Case(
        "cronjob", "SecretRotatorJobFailed", {**failed_job(), LAST_RUN_OK: "1800x60"}, "30m", [FAILED_JOB]
    ),
    "cronjob: a failed Job of a CronJob that never succeeded raises it": Case(
        "cronjob", "SecretRotatorJobFailed", failed_job(), "30m", [FAILED_JOB]
    ),
    "cronjob: a failed Job followed by a successful run does not alert": Case(
        "cronjob", "SecretRotatorJobFailed", {**failed_job(), LAST_RUN_OK: "7200x60"}, "30m"
    ),
    "cronjob: a Job still retrying does not alert": Case(
        "cronjob", "SecretRotatorJobFailed", failed_job(active=1), "30m"
    ),
    "cronjob: a failed Job of another CronJob does not alert": Case(
        "cronjob", "SecretRotatorJobFailed", failed_job(owner="something-else"), "30m"
    ),
    "cronjob: twelve hours without a successful run raises SecretRotatorNoRecentSuccess": Case(
        "cronjob", "SecretRotatorNoRecentSuccess", {LAST_RUN_OK: "0x800", CREATED: "0x800"}, "12h10m", [STALE_CRONJOB]
    ),
    "cronjob: a CronJob that never succeeded in twelve hours raises it": Case(
        "cronjob", "SecretRotatorNoRecentSuccess", {CREATED: "0x800"}, "12h10m", [STALE_CRONJOB]
    ),
    "cronjob: a run that succeeded six hours ago is not stale": Case(
        "cronjob", "SecretRotatorNoRecentSuccess", {LAST_RUN_OK: f"{6 * HOUR}x800", CREATED: "0x800"}, "12h10m"
    ),
    "cronjob: a new CronJob that has not run yet is not stale": Case(
        "cronjob", "SecretRotatorNoRecentSuccess", {CREATED: "0x800"}, "6h"
    ),
}


@pytest.mark.parametrize("case", [pytest.param(c, id=sentence) for sentence, c in CASES.items()])
def test_alert_rule(case: Case, rule_files: dict[str, Path], promtool: str, tmp_path: Path) -> None:
    test = {
        "rule_files": [str(rule_files[case.overlay])],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in case.series.items()],
                "alert_rule_test": [
                    {
                        "eval_time": case.at,
                        "alertname": case.alert,
                        "exp_alerts": [{"exp_labels": labels} for labels in case.fires],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "test.yaml"
    path.write_text(yaml.safe_dump(test), encoding="utf-8")
    done = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_case(renders: dict[str, list[dict[str, Any]]]) -> None:
    """An alert added to an overlay gets a case here, so its expression is run at least once."""
    tested = {(c.overlay, c.alert) for c in CASES.values() if c.fires}
    for overlay, docs in renders.items():
        (rule,) = [d for d in docs if d["kind"] == "PrometheusRule"]
        for group in rule["spec"]["groups"]:
            for alert in group["rules"]:
                assert (overlay, alert["alert"]) in tested
