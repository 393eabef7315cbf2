"""deploy/overlays/fleet: the CronJob's Job as an Indexed Job of N pods, one shard each, and a state ConfigMap
per shard. Renders, passes the Kubernetes schemas, keeps the pod locked down, and says N the same way in
every place; the state store works within the rendered Role for each shard's ConfigMap, and no other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from service.adapters.state_kubernetes import KubernetesStateStore
from service.config.document import Config
from service.errors import FailureReason, RemoteError
from service.runner import check_shard
from service.shards import Shard
from service.stores import shard_suffix
from tests.deploy.conftest import DEPLOY, render
from tests.deploy.test_kubernetes_state import INTENT, rbac_server, receipt, serving
from tests.deploy.test_manifests import (
    CRD_KINDS,
    KUBERNETES_VERSIONS,
    POD_SECURITY,
    container,
    dig,
    of_kind,
    one,
    pod_template,
)

FLEET = DEPLOY / "overlays" / "fleet"
Docs = list[dict[str, Any]]


@pytest.fixture(scope="module")
def fleet(kubectl: str) -> Docs:
    return render(kubectl, FLEET)


@pytest.fixture(scope="module")
def cronjob_overlay(kubectl: str) -> Docs:
    return render(kubectl, DEPLOY / "overlays" / "cronjob")


def job_spec(docs: Docs) -> dict[str, Any]:
    spec: dict[str, Any] = one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]
    return spec


def fleet_config(docs: Docs) -> dict[str, Any]:
    [configmap] = [d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].startswith("secret-rotator-config")]
    loaded: dict[str, Any] = yaml.safe_load(configmap["data"]["config.yaml"])
    return loaded


def shards(docs: Docs) -> int:
    args = container(docs)["args"]
    assert args[:2] == ["run", "--shards"], args
    return int(args[2])


def state_configmaps(docs: Docs) -> list[str]:
    return sorted(
        d["metadata"]["name"]
        for d in of_kind(docs, "ConfigMap")
        if d["metadata"]["name"].startswith("secret-rotator-state")
    )


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_fleet_passes_the_kubernetes_schemas_strictly(fleet: Docs, version: str) -> None:
    for doc in fleet:
        if doc["kind"] not in CRD_KINDS:
            kubernetes_validate.validate(doc, version, strict=True)


def test_the_fleet_holds_its_resources_and_no_claim_or_secret(fleet: Docs) -> None:
    counts: dict[str, int] = {}
    for doc in fleet:
        counts[doc["kind"]] = counts.get(doc["kind"], 0) + 1
    assert counts == {
        "Namespace": 1,
        "ServiceAccount": 1,
        "Role": 1,
        "RoleBinding": 1,
        "ConfigMap": 1 + shards(fleet),
        "CronJob": 1,
        "PrometheusRule": 1,
        "NetworkPolicy": 2,
    }
    for doc in fleet:
        assert dig(doc, "metadata", "labels", "app.kubernetes.io/name") == "secret-rotator", doc["metadata"]["name"]
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "secret-rotator", doc["metadata"]["name"]


def test_the_job_is_indexed_one_pod_per_shard_each_retried_on_its_own(fleet: Docs) -> None:
    spec = job_spec(fleet)
    count = shards(fleet)

    assert count > 1
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == count
    assert spec["backoffLimitPerIndex"] >= 1
    assert spec["backoffLimit"] >= count * spec["backoffLimitPerIndex"], "a failing shard never ends the others' tries"
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert dig(spec, "podFailurePolicy", "rules", 0, "onExitCodes", "values") == [2], "a bad config fails the Job"
    assert one(fleet, "CronJob")["spec"]["concurrencyPolicy"] == "Forbid"


def test_every_place_says_the_same_number_of_shards_and_the_same_store_names(fleet: Docs) -> None:
    count = shards(fleet)
    config = fleet_config(fleet)
    names = sorted(f"{config['state']['name']}{shard_suffix(i, count)}" for i in range(count))

    assert config["state"] == {"backend": "kubernetes", "name": "secret-rotator-state", "shards": count}
    assert state_configmaps(fleet) == names, "the service's own names for the shards' stores"
    [rule] = one(fleet, "Role")["rules"]
    assert sorted(rule["resourceNames"]) == names
    assert set(rule["verbs"]) == {"get", "update"}
    for configmap in names:
        assert "data" not in one(fleet, "ConfigMap", configmap), "applying again must not overwrite receipts"


def test_the_config_is_the_base_one_with_sharded_state_and_passes_the_services_checks(fleet: Docs) -> None:
    config = fleet_config(fleet)
    base = yaml.safe_load((DEPLOY / "base" / "config.yaml").read_text(encoding="utf-8"))
    assert {k: v for k, v in config.items() if k != "state"} == {k: v for k, v in base.items() if k != "state"}

    parsed = Config.model_validate(config)  # the model alone: the API key file exists only in the pod
    count = shards(fleet)
    for index in range(count):
        check_shard(parsed, Shard(index, count))  # what each pod checks before it starts


def test_the_pod_is_locked_down_like_the_cronjobs_with_an_api_token_for_its_state(fleet: Docs) -> None:
    spec, box = pod_template(fleet)["spec"], container(fleet)
    for where, path, expected, sentence in POD_SECURITY:
        if path == ("automountServiceAccountToken",):
            continue  # the kubernetes-state component mounts the token the state store needs
        assert dig(spec if where == "pod" else box, *path) == expected, sentence
    assert spec["automountServiceAccountToken"] is True
    assert one(fleet, "ServiceAccount")["automountServiceAccountToken"] is False, "only this pod, not the account"
    assert not [v for v in spec["volumes"] if "persistentVolumeClaim" in v]
    for kind in ("requests", "limits"):
        assert set(box["resources"][kind]) == {"cpu", "memory"}, kind


def test_the_alerts_are_the_cronjobs(fleet: Docs, cronjob_overlay: Docs) -> None:
    """The fleet's Jobs belong to the CronJob of the same name: kube-state-metrics' alerts see them as they
    see the cronjob overlay's (tests/deploy/test_alert_rules.py runs those against series)."""
    assert one(fleet, "PrometheusRule")["spec"] == one(cronjob_overlay, "PrometheusRule")["spec"]
    assert one(fleet, "CronJob")["metadata"]["name"] == one(cronjob_overlay, "CronJob")["metadata"]["name"]


async def test_each_shards_store_works_within_the_role_and_no_other_name_does(fleet: Docs, tmp_path: Path) -> None:
    server = rbac_server(fleet, ship_configmap=False)
    for name in state_configmaps(fleet):
        server.store({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
    token = tmp_path / "token"
    token.write_text(server.token)
    count = shards(fleet)
    async with serving(server) as url:
        for index in range(count):
            store = KubernetesStateStore(
                server.namespace,
                f"secret-rotator-state{shard_suffix(index, count)}",
                api_url=url,
                token_file=token,
                ca_file=None,
            )
            try:
                await store.add_intent(f"target-{index}", INTENT)
                await store.put(f"target-{index}", "sink-a", receipt(f"k{index}"))
                assert await store.get(f"target-{index}", "sink-a") == receipt(f"k{index}")
            finally:
                await store.close()
        # Another number of shards names other ConfigMaps, which the Role does not reach.
        other = KubernetesStateStore(
            server.namespace,
            f"secret-rotator-state{shard_suffix(0, count * 2)}",
            api_url=url,
            token_file=token,
            ca_file=None,
        )
        try:
            with pytest.raises(RemoteError) as caught:
                await other.get("target-0", "sink-a")
        finally:
            await other.close()

    assert caught.value.reason is FailureReason.PERMISSION_DENIED
    assert {status for _, name, status in server.answered if name != other._name} == {200}
