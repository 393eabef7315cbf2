"""The Kubernetes manifests in deploy/: each overlay renders, passes the Kubernetes schemas, keeps its
pod locked down, and wires the config, the state volume, the Secret and the alerts together.

Every overlay is rendered once with ``kubectl kustomize`` (the ``renders`` fixture, conftest.py).
kubernetes-validate ships the schemas of the built-in kinds (no network); the Prometheus Operator's
kinds are not among them, so their structure is checked here by hand, and test_alert_rules.py runs the
alert rules against made-up series.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CONFIG_FILE = DEPLOY / "base" / "config.yaml"
OVERLAYS = ("cronjob", "daemon")

# The oldest Kubernetes the manifests are meant for (deploy/README.md), and the newest schema
# kubernetes-validate ships: a field one of them lacks, or requires, is caught.
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.utils.major_minor(kubernetes_validate.utils.latest_version()))
CRD_KINDS = {"PrometheusRule", "ServiceMonitor"}

IMAGE = "ghcr.io/secret-rotator/secret-rotator"
USER = 10001
API_KEY_SECRET = "dimescheduler-api-key"
WORKLOAD_IDENTITY_LABEL = "azure.workload.identity/use"
CLIENT_ID_ANNOTATION = "azure.workload.identity/client-id"

# What the service exports (DESIGN.md, "Logs, metrics, alerts"); the daemon's alerts may use only these.
SERVICE_METRICS = {
    "secret_rotator_credential_expiry_timestamp_seconds",
    "secret_rotator_last_success_timestamp_seconds",
    "secret_rotator_rotations_total",
    "secret_rotator_failures_total",
    "secret_rotator_pass_duration_seconds_bucket",
    "secret_rotator_pass_duration_seconds_count",
    "secret_rotator_pass_duration_seconds_sum",
    "secret_rotator_remote_calls_total",
    "secret_rotator_consumer_lagging_seconds",
    "secret_rotator_evidence_unavailable",
    "up",
}
KUBE_STATE_METRICS = {
    "kube_job_status_failed",
    "kube_job_status_active",
    "kube_job_status_succeeded",
    "kube_job_status_start_time",
    "kube_job_owner",
    "kube_cronjob_status_last_successful_time",
    "kube_cronjob_created",
}
ALERT_METRICS = {"cronjob": KUBE_STATE_METRICS, "daemon": SERVICE_METRICS}


# --- helpers --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CONFIG_FILE.read_text(encoding="utf-8"))
    return loaded


def dig(obj: Any, *path: str | int) -> Any:
    """The value at ``path``, or None where any step is missing."""
    for step in path:
        in_dict = isinstance(obj, dict) and step in obj
        in_list = isinstance(obj, list) and isinstance(step, int) and step < len(obj)
        if not (in_dict or in_list):
            return None
        obj = obj[step]
    return obj


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in of_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_template(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The overlay's one pod template, whether a Deployment's or a CronJob's."""
    templates = [d["spec"]["template"] for d in of_kind(docs, "Deployment")]
    templates += [d["spec"]["jobTemplate"]["spec"]["template"] for d in of_kind(docs, "CronJob")]
    assert len(templates) == 1, f"expected one workload, found {len(templates)}"
    return templates[0]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    containers = pod_template(docs)["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def volume_mount(docs: list[dict[str, Any]], volume_kind: str) -> tuple[dict[str, Any], str]:
    """The one volume of this kind (``configMap``, ``secret``, ...) and where the container mounts it."""
    volumes = [v for v in pod_template(docs)["spec"]["volumes"] if volume_kind in v]
    assert len(volumes) == 1, f"expected one {volume_kind} volume, found {len(volumes)}"
    mounts = [m["mountPath"] for m in container(docs)["volumeMounts"] if m["name"] == volumes[0]["name"]]
    assert len(mounts) == 1, f"the {volume_kind} volume is mounted {len(mounts)} times"
    return volumes[0], mounts[0]


def schedule_period_seconds(schedule: str) -> int:
    """The period of a cron schedule that runs every N hours (``M */N * * *``)."""
    match = re.fullmatch(r"\d+ \*/(\d+) \* \* \*", schedule.strip())
    assert match, f"teach schedule_period_seconds() the schedule {schedule!r}"
    return int(match.group(1)) * 3600


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# --- the Kubernetes schemas ------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation must work offline: CI reaches no network but the package registries."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("kubernetes-validate tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize(
    ("overlay", "version"),
    [
        pytest.param(overlay, version, id=f"the {overlay} overlay passes the Kubernetes {version} schemas strictly")
        for overlay in OVERLAYS
        for version in KUBERNETES_VERSIONS
    ],
)
def test_schemas(renders: dict[str, list[dict[str, Any]]], overlay: str, version: str) -> None:
    problems = []
    for doc in renders[overlay]:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in CRD_KINDS:
            continue  # no schema ships for CRDs: the tests below and test_alert_rules.py check them
        try:
            # strict: an unknown (misspelt) field is an error, not silently dropped by the API server
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{name}: {'.'.join(map(str, exc.path))}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{name}: {exc.message} (only {sorted(CRD_KINDS)} may lack a schema)")
    assert not problems, "\n".join(problems)


# --- what each overlay is made of ------------------------------------------------------------------

KINDS = {
    "cronjob": {
        "Namespace": 1,
        "ServiceAccount": 1,
        "ConfigMap": 1,
        "PersistentVolumeClaim": 1,
        "NetworkPolicy": 1,
        "CronJob": 1,
        "PrometheusRule": 1,
    },
    "daemon": {
        "Namespace": 1,
        "ServiceAccount": 1,
        "ConfigMap": 1,
        "PersistentVolumeClaim": 1,
        "NetworkPolicy": 2,
        "Deployment": 1,
        "Service": 1,
        "ServiceMonitor": 1,
        "PrometheusRule": 1,
    },
}


@pytest.mark.parametrize(
    "overlay", [pytest.param(o, id=f"the {o} overlay holds exactly its resources and no Secret") for o in OVERLAYS]
)
def test_resource_kinds(renders: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    counts: dict[str, int] = {}
    for doc in renders[overlay]:
        counts[doc["kind"]] = counts.get(doc["kind"], 0) + 1
    assert counts == KINDS[overlay]


@pytest.mark.parametrize(
    "overlay",
    [pytest.param(o, id=f"every resource of the {o} overlay is labelled and namespaced") for o in OVERLAYS],
)
def test_labels_and_namespace(renders: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    for doc in renders[overlay]:
        assert dig(doc, "metadata", "labels", "app.kubernetes.io/name") == "secret-rotator", doc["metadata"]["name"]
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "secret-rotator", doc["metadata"]["name"]


# --- pod security ----------------------------------------------------------------------------------

# (where, path, expected): where is "pod" (the pod template's spec) or "container" (its one container).
POD_SECURITY = [
    ("pod", ("securityContext", "runAsNonRoot"), True, "the pod refuses to start as root"),
    ("pod", ("securityContext", "runAsUser"), USER, "the pod runs as the image's user 10001"),
    ("pod", ("securityContext", "runAsGroup"), USER, "the pod runs with group 10001"),
    ("pod", ("securityContext", "fsGroup"), USER, "the volumes are writable by group 10001"),
    (
        "pod",
        ("securityContext", "seccompProfile", "type"),
        "RuntimeDefault",
        "the pod runs under the default seccomp profile",
    ),
    ("pod", ("automountServiceAccountToken",), False, "the pod gets no Kubernetes API token"),
    ("pod", ("hostNetwork",), None, "the pod stays off the host's network"),
    ("pod", ("hostPID",), None, "the pod cannot see the host's processes"),
    ("pod", ("hostIPC",), None, "the pod cannot use the host's IPC"),
    ("container", ("securityContext", "allowPrivilegeEscalation"), False, "the container cannot gain privileges"),
    ("container", ("securityContext", "readOnlyRootFilesystem"), True, "the container's root filesystem is read-only"),
    ("container", ("securityContext", "capabilities", "drop"), ["ALL"], "the container drops every capability"),
    ("container", ("securityContext", "capabilities", "add"), None, "the container adds no capability"),
    ("container", ("securityContext", "privileged"), None, "the container is not privileged"),
    ("container", ("securityContext", "runAsUser"), None, "the container does not override the pod's user"),
]


@pytest.mark.parametrize(
    ("overlay", "where", "path", "expected"),
    [
        pytest.param(overlay, where, path, expected, id=f"{overlay}: {sentence}")
        for overlay in OVERLAYS
        for where, path, expected, sentence in POD_SECURITY
    ],
)
def test_pod_security(
    renders: dict[str, list[dict[str, Any]]], overlay: str, where: str, path: tuple[str, ...], expected: object
) -> None:
    docs = renders[overlay]
    subject = pod_template(docs)["spec"] if where == "pod" else container(docs)
    assert dig(subject, *path) == expected


@pytest.mark.parametrize(
    "overlay",
    [pytest.param(o, id=f"{o}: the namespace enforces the restricted pod security standard") for o in OVERLAYS],
)
def test_namespace_enforces_restricted(renders: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    labels = one(renders[overlay], "Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


# --- identity --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overlay",
    [pytest.param(o, id=f"{o}: the pod uses the workload identity service account") for o in OVERLAYS],
)
def test_workload_identity(renders: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    docs = renders[overlay]
    template = pod_template(docs)
    account = one(docs, "ServiceAccount")
    assert template["metadata"]["labels"][WORKLOAD_IDENTITY_LABEL] == "true"
    assert template["spec"]["serviceAccountName"] == account["metadata"]["name"]
    assert re.fullmatch(r"[0-9a-f-]{36}", account["metadata"]["annotations"][CLIENT_ID_ANNOTATION])
    assert account["automountServiceAccountToken"] is False


# --- the workloads ---------------------------------------------------------------------------------


def _cronjob(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "CronJob")


def _deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "Deployment")


# (overlay, resource, path, expected)
WORKLOAD = [
    ("cronjob", _cronjob, ("spec", "schedule"), "0 */6 * * *", "the CronJob runs every 6 hours"),
    ("cronjob", _cronjob, ("spec", "concurrencyPolicy"), "Forbid", "a run never overlaps the previous one"),
    ("cronjob", _cronjob, ("spec", "successfulJobsHistoryLimit"), 3, "three succeeded Jobs are kept"),
    ("cronjob", _cronjob, ("spec", "failedJobsHistoryLimit"), 3, "three failed Jobs are kept for their logs"),
    ("cronjob", _cronjob, ("spec", "jobTemplate", "spec", "backoffLimit"), 2, "a failed pass is tried twice more"),
    (
        "cronjob",
        _cronjob,
        ("spec", "jobTemplate", "spec", "template", "spec", "containers", 0, "args"),
        ["run"],
        "the CronJob's pod runs one pass",
    ),
    (
        "cronjob",
        _cronjob,
        ("spec", "jobTemplate", "spec", "template", "spec", "restartPolicy"),
        "Never",
        "the Job, not the kubelet, retries a failed pass",
    ),
    (
        "cronjob",
        _cronjob,
        ("spec", "jobTemplate", "spec", "podFailurePolicy", "rules", 0, "onExitCodes", "values"),
        [2],
        "a bad config (exit 2) fails the Job without retries",
    ),
    ("daemon", _deployment, ("spec", "replicas"), 1, "the daemon runs one replica"),
    ("daemon", _deployment, ("spec", "strategy", "type"), "Recreate", "a rollout never runs two daemons at once"),
    (
        "daemon",
        _deployment,
        ("spec", "template", "spec", "containers", 0, "args"),
        ["daemon", "--listen", "0.0.0.0:8080"],
        "the daemon listens on port 8080",
    ),
    (
        "daemon",
        _deployment,
        ("spec", "template", "spec", "containers", 0, "ports"),
        [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "the daemon's port 8080 is named http",
    ),
    (
        "daemon",
        _deployment,
        ("spec", "template", "spec", "containers", 0, "livenessProbe", "httpGet"),
        {"path": "/healthz", "port": "http"},
        "liveness asks /healthz",
    ),
    (
        "daemon",
        _deployment,
        ("spec", "template", "spec", "containers", 0, "readinessProbe", "httpGet"),
        {"path": "/readyz", "port": "http"},
        "readiness asks /readyz",
    ),
]


@pytest.mark.parametrize(
    ("overlay", "resource", "path", "expected"),
    [pytest.param(o, r, p, e, id=f"{o}: {sentence}") for o, r, p, e, sentence in WORKLOAD],
)
def test_workload(
    renders: dict[str, list[dict[str, Any]]], overlay: str, resource: Any, path: tuple[str | int, ...], expected: object
) -> None:
    assert dig(resource(renders[overlay]), *path) == expected


def test_cronjob_deadlines_fit_the_schedule(renders: dict[str, list[dict[str, Any]]], config: dict[str, Any]) -> None:
    """A late run still starts within the period; a hung Job ends long before the next run, yet outlasts
    the verification wait of a pass."""
    cronjob = one(renders["cronjob"], "CronJob")
    period = schedule_period_seconds(cronjob["spec"]["schedule"])
    starting = cronjob["spec"]["startingDeadlineSeconds"]
    active = cronjob["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]
    minutes = re.fullmatch(r"(\d+)m", config["defaults"]["verify_timeout"])
    assert minutes, "teach this test the verify_timeout's unit"
    verify = int(minutes.group(1)) * 60
    assert 0 < starting < period
    assert 3 * verify <= active <= period / 4


@pytest.mark.parametrize(
    "overlay",
    [pytest.param(o, id=f"{o}: the container runs the pinned image with requests and limits") for o in OVERLAYS],
)
def test_image_and_resources(renders: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    box = container(renders[overlay])
    assert re.fullmatch(re.escape(IMAGE) + r"(:\d+\.\d+\.\d+|@sha256:[0-9a-f]{64})", box["image"])
    for kind in ("requests", "limits"):
        assert set(box["resources"][kind]) == {"cpu", "memory"}, kind


# --- config, state and the Secret wired together ---------------------------------------------------


@pytest.mark.parametrize(
    "overlay", [pytest.param(o, id=f"{o}: SECRET_ROTATOR_CONFIG names the generated config file") for o in OVERLAYS]
)
def test_config_is_mounted(renders: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    docs = renders[overlay]
    volume, mount = volume_mount(docs, "configMap")
    configmap = one(docs, "ConfigMap", volume["configMap"]["name"])
    env = {e["name"]: e["value"] for e in container(docs)["env"]}
    path = Path(env["SECRET_ROTATOR_CONFIG"])
    assert str(path.parent) == mount
    assert configmap["data"][path.name] == CONFIG_FILE.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "overlay", [pytest.param(o, id=f"{o}: the state directory is the persistent volume claim") for o in OVERLAYS]
)
def test_state_is_persistent(renders: dict[str, list[dict[str, Any]]], overlay: str, config: dict[str, Any]) -> None:
    docs = renders[overlay]
    volume, mount = volume_mount(docs, "persistentVolumeClaim")
    one(docs, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    assert config["state"] == {"backend": "file", "path": mount}


@pytest.mark.parametrize(
    "overlay",
    [pytest.param(o, id=f"{o}: the Dime.Scheduler API key comes from the operator's Secret") for o in OVERLAYS],
)
def test_api_key_comes_from_the_operators_secret(
    renders: dict[str, list[dict[str, Any]]], overlay: str, config: dict[str, Any]
) -> None:
    docs = renders[overlay]
    volume, mount = volume_mount(docs, "secret")
    assert volume["secret"]["secretName"] == API_KEY_SECRET
    assert not of_kind(docs, "Secret"), "the operator creates the Secret; no secret value is committed"
    push_sinks = [s for t in config["targets"] for s in t["sinks"] if s["type"] == "dimescheduler"]
    assert push_sinks
    for sink in push_sinks:
        key_file = Path(sink["api_key"]["file"])
        assert str(key_file.parent) == mount
        assert key_file.name in [item["path"] for item in volume["secret"]["items"]]


CONFIG_FACTS = [
    (("credential", "type"), "workload_identity", "the rotator signs in with workload identity"),
    (("targets", 0, "sinks", 0, "type"), "keyvault", "the first sink is Key Vault, which can be read back"),
    (("targets", 0, "sinks", 1, "type"), "dimescheduler", "the second sink pushes to Dime.Scheduler"),
]


@pytest.mark.parametrize(
    ("path", "expected"), [pytest.param(p, e, id=f"config: {sentence}") for p, e, sentence in CONFIG_FACTS]
)
def test_config_facts(config: dict[str, Any], path: tuple[str | int, ...], expected: object) -> None:
    assert dig(config, *path) == expected


def test_both_modes_pass_on_the_same_schedule(renders: dict[str, list[dict[str, Any]]], config: dict[str, Any]) -> None:
    """The alert rules of both overlays assume one period; the daemon's and the CronJob's must agree."""
    assert config["schedule"] == one(renders["cronjob"], "CronJob")["spec"]["schedule"]


def test_config_passes_the_services_own_validation() -> None:
    """The service's config model (unknown keys are errors) accepts the shipped file."""
    document = pytest.importorskip("service.config.document", reason="the service's config module is not built yet")
    policy = pytest.importorskip("service.config.policy", reason="the service's config module is not built yet")
    parsed = document.Config.model_validate(yaml.safe_load(CONFIG_FILE.read_text(encoding="utf-8")))
    for target in parsed.targets:
        assert policy.policy_problems(parsed.policy(target)) == []


# --- network ---------------------------------------------------------------------------------------


def _ports(rules: list[dict[str, Any]]) -> set[tuple[str, int]]:
    return {(p.get("protocol", "TCP"), p["port"]) for rule in rules for p in rule.get("ports", [])}


NETWORK = [
    ("cronjob", "Egress", {("UDP", 53), ("TCP", 53), ("TCP", 443)}, "the CronJob's pod reaches only DNS and HTTPS"),
    ("cronjob", "Ingress", set(), "nothing reaches the CronJob's pod"),
    ("daemon", "Egress", {("UDP", 53), ("TCP", 53), ("TCP", 443)}, "the daemon reaches only DNS and HTTPS"),
    ("daemon", "Ingress", {("TCP", 8080)}, "only the metrics port reaches the daemon"),
]


@pytest.mark.parametrize(
    ("overlay", "direction", "allowed"),
    [pytest.param(o, d, a, id=f"{o}: {sentence}") for o, d, a, sentence in NETWORK],
)
def test_network_policy(
    renders: dict[str, list[dict[str, Any]]], overlay: str, direction: str, allowed: set[tuple[str, int]]
) -> None:
    docs = renders[overlay]
    pod_labels = pod_template(docs)["metadata"]["labels"]
    policies = [
        p for p in of_kind(docs, "NetworkPolicy") if selects(p["spec"]["podSelector"]["matchLabels"], pod_labels)
    ]
    assert any(direction in p["spec"]["policyTypes"] for p in policies), "the pod's traffic would not be fenced"
    rules = [r for p in policies for r in p["spec"].get(direction.lower(), [])]
    # A rule without ports would open every port.
    assert all(r.get("ports") for r in rules)
    assert _ports(rules) == allowed


def _rules(docs: list[dict[str, Any]], direction: str) -> list[dict[str, Any]]:
    """Every rule of this direction in the policies that select the overlay's pod."""
    pod_labels = pod_template(docs)["metadata"]["labels"]
    policies = of_kind(docs, "NetworkPolicy")
    mine = [p for p in policies if selects(p["spec"]["podSelector"]["matchLabels"], pod_labels)]
    return [r for p in mine for r in p["spec"].get(direction, [])]


KUBE_DNS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}
MONITORING = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}


@pytest.mark.parametrize(
    "overlay", [pytest.param(o, id=f"{o}: DNS goes only to kube-dns in kube-system") for o in OVERLAYS]
)
def test_dns_goes_only_to_kube_dns(renders: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    dns = [r for r in _rules(renders[overlay], "egress") if {p["port"] for p in r["ports"]} & {53}]

    assert dns
    for rule in dns:
        # One peer holding both selectors; as two peers they would mean "kube-system, or kube-dns anywhere".
        assert rule.get("to") == [KUBE_DNS]


def test_only_the_monitoring_namespace_reaches_the_metrics_port(renders: dict[str, list[dict[str, Any]]]) -> None:
    rules = _rules(renders["daemon"], "ingress")

    assert rules
    for rule in rules:
        assert rule.get("from") == [MONITORING]


# --- Prometheus Operator kinds (no schema ships for them) ------------------------------------------

DURATION = re.compile(r"^(0|(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?)$")
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are no function, keyword or label."""
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = re.findall(r"(?<![\w.])([a-zA-Z_:][\w:]*)\b(?!\s*\()", expr)
    return {n for n in names if n not in PROMQL_WORDS}


def _balanced(expr: str) -> bool:
    depth = {"(": 0, "{": 0, "[": 0}
    closing = {")": "(", "}": "{", "]": "["}
    for char in expr:
        if char in depth:
            depth[char] += 1
        elif char in closing:
            depth[closing[char]] -= 1
            if depth[closing[char]] < 0:
                return False
    return not any(depth.values())


def alerts(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    rule = one(docs, "PrometheusRule")
    found = [r for group in rule["spec"]["groups"] for r in group["rules"] if "alert" in r]
    by_name = {r["alert"]: r for r in found}
    assert len(by_name) == len(found), "alert names repeat"
    return by_name


@pytest.mark.parametrize(
    "overlay",
    [pytest.param(o, id=f"{o}: every alert rule is well formed and reads only known metrics") for o in OVERLAYS],
)
def test_prometheus_rules(renders: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    rule = one(renders[overlay], "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    for group in rule["spec"]["groups"]:
        assert group["name"]
        assert group["rules"]
        for alert in group["rules"]:
            assert set(alert) <= {"alert", "expr", "for", "labels", "annotations"}, alert["alert"]
            assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", alert["alert"])
            assert _balanced(alert["expr"]), alert["alert"]
            assert metric_names(alert["expr"]) <= ALERT_METRICS[overlay], alert["alert"]
            assert DURATION.match(alert.get("for", "0")), alert["alert"]
            assert alert["labels"]["severity"] in {"critical", "warning", "info"}
            assert alert["annotations"]["summary"]
            assert alert["annotations"]["description"]


def _stale_after(renders: dict[str, list[dict[str, Any]]], overlay: str, config: dict[str, Any]) -> str:
    """Two schedule periods, in seconds, as the alert expressions write them."""
    if overlay == "cronjob":
        return str(2 * schedule_period_seconds(one(renders["cronjob"], "CronJob")["spec"]["schedule"]))
    return str(2 * schedule_period_seconds(config["schedule"]))


# (overlay, alert, what its expression must read)
REQUIRED_ALERTS = [
    (
        "daemon",
        "SecretRotatorRotationFailed",
        ["secret_rotator_failures_total"],
        "the daemon alerts on a failed rotation",
    ),
    (
        "daemon",
        "SecretRotatorNoSuccessfulPass",
        ["secret_rotator_last_success_timestamp_seconds", "{stale}"],
        "the daemon alerts after two periods without a successful pass",
    ),
    (
        "daemon",
        "SecretRotatorSecretExpiringSoon",
        ["secret_rotator_credential_expiry_timestamp_seconds", 'in_use="true"', "7 * 86400"],
        "the daemon alerts when the secret in use expires within 7 days",
    ),
    ("daemon", "SecretRotatorDown", ["up{"], "the daemon alerts when its metrics disappear"),
    ("cronjob", "SecretRotatorJobFailed", ["kube_job_status_failed"], "the CronJob alerts on a failed Job"),
    (
        "cronjob",
        "SecretRotatorNoRecentSuccess",
        ["kube_cronjob_status_last_successful_time", "{stale}"],
        "the CronJob alerts after two periods without a successful run",
    ),
]


@pytest.mark.parametrize(
    ("overlay", "name", "reads"),
    [pytest.param(o, n, r, id=f"{o}: {sentence}") for o, n, r, sentence in REQUIRED_ALERTS],
)
def test_required_alerts(
    renders: dict[str, list[dict[str, Any]]], config: dict[str, Any], overlay: str, name: str, reads: list[str]
) -> None:
    expr = alerts(renders[overlay])[name]["expr"]
    stale = _stale_after(renders, overlay, config)
    for needle in reads:
        assert needle.replace("{stale}", stale) in expr


def test_failure_window_spans_a_schedule_period(
    renders: dict[str, list[dict[str, Any]]], config: dict[str, Any]
) -> None:
    """Shorter, and a failed pass would stop alerting long before the next pass could fix it."""
    expr = alerts(renders["daemon"])["SecretRotatorRotationFailed"]["expr"]
    windows = [int(hours) * 3600 for hours in re.findall(r"(?:\[|offset )(\d+)h", expr)]
    assert windows
    assert min(windows) > schedule_period_seconds(config["schedule"])


def test_service_monitor_scrapes_the_daemon(renders: dict[str, list[dict[str, Any]]]) -> None:
    docs = renders["daemon"]
    monitor = one(docs, "ServiceMonitor")
    service = one(docs, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert selects(service["spec"]["selector"], pod_template(docs)["metadata"]["labels"])
    service_ports = {p["name"]: p for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["path"] == "/metrics"
        assert service_ports[endpoint["port"]]["targetPort"] == "http"
        assert DURATION.match(endpoint["interval"])


def test_metric_names_reads_what_promql_reads() -> None:
    """The helper the alert checks stand on: labels, functions, keywords and durations are no metrics."""
    expr = 'sum by (target) (increase(a_total{x="y"}[7h])) > 0 or b unless on (ns) c offset 7h'
    assert metric_names(expr) == {"a_total", "b", "c"}
