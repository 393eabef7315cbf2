"""deploy/components/kubernetes-state: each overlay with it renders and passes the schemas; the pod gets a
Kubernetes API token and no state volume; the Role grants the one ConfigMap the state lives in, and no more.

The last tests run the real KubernetesStateStore against an API server on loopback that answers only what
the rendered Role allows, so the Role is checked against what the adapter actually sends.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from aiohttp import web

from service.adapters.state_kubernetes import KubernetesStateStore
from service.config.document import StateConfig
from service.errors import FailureReason, RemoteError
from service.model import Intent
from service.ports import Receipt
from tests.deploy.conftest import OVERLAYS
from tests.deploy.test_manifests import KUBERNETES_VERSIONS, container, dig, of_kind, one, pod_template, selects

STATE_DIR = "/var/lib/secret-rotator"
STATE_NAME = StateConfig(backend="kubernetes").name  # what the service uses unless state.name says otherwise
Renders = dict[str, list[dict[str, Any]]]


def _ids(sentence: str) -> list[Any]:
    return [pytest.param(o, id=f"{o} with kubernetes-state: {sentence}") for o in OVERLAYS]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", _ids("passes the Kubernetes schemas strictly"))
def test_schemas(with_kubernetes_state: Renders, overlay: str, version: str) -> None:
    for doc in with_kubernetes_state[overlay]:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # no schema ships for the Prometheus Operator's kinds (test_manifests.py)
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("overlay", _ids("adds the Role, its binding, the ConfigMap and a policy; drops the claim"))
def test_what_the_component_adds_and_removes(renders: Renders, with_kubernetes_state: Renders, overlay: str) -> None:
    def counts(docs: list[dict[str, Any]]) -> dict[str, int]:
        found: dict[str, int] = {}
        for doc in docs:
            found[doc["kind"]] = found.get(doc["kind"], 0) + 1
        return found

    before, after = counts(renders[overlay]), counts(with_kubernetes_state[overlay])
    changed = {kind: after.get(kind, 0) - before.get(kind, 0) for kind in before.keys() | after.keys()}
    assert {kind: n for kind, n in changed.items() if n} == {
        "Role": 1,
        "RoleBinding": 1,
        "ConfigMap": 1,
        "NetworkPolicy": 1,
        "PersistentVolumeClaim": -1,
    }
    assert not of_kind(with_kubernetes_state[overlay], "ClusterRole")
    assert not of_kind(with_kubernetes_state[overlay], "ClusterRoleBinding")
    for doc in with_kubernetes_state[overlay]:
        assert dig(doc, "metadata", "labels", "app.kubernetes.io/name") == "secret-rotator", doc["metadata"]["name"]
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "secret-rotator", doc["metadata"]["name"]


@pytest.mark.parametrize("overlay", _ids("the pod gets an API token and no state volume"))
def test_the_pod_mounts_a_token_and_no_state_volume(
    renders: Renders, with_kubernetes_state: Renders, overlay: str
) -> None:
    docs = with_kubernetes_state[overlay]
    spec = pod_template(docs)["spec"]

    assert pod_template(renders[overlay])["spec"]["automountServiceAccountToken"] is False
    assert spec["automountServiceAccountToken"] is True
    assert one(docs, "ServiceAccount")["automountServiceAccountToken"] is False, "only this pod, not the account"
    assert not [v for v in spec["volumes"] if "persistentVolumeClaim" in v]
    assert STATE_DIR not in [m["mountPath"] for m in container(docs)["volumeMounts"]]
    # The rest of the pod is the overlay's, untouched.
    assert container(docs)["securityContext"] == container(renders[overlay])["securityContext"]


@pytest.mark.parametrize("overlay", _ids("the Role reaches the state ConfigMap alone, without create"))
def test_the_role_names_the_state_configmap_only(with_kubernetes_state: Renders, overlay: str) -> None:
    docs = with_kubernetes_state[overlay]
    [rule] = one(docs, "Role")["rules"]

    assert rule["apiGroups"] == [""]
    assert rule["resources"] == ["configmaps"]
    assert rule["resourceNames"] == [STATE_NAME]
    # create cannot be limited to a name: the component ships the ConfigMap instead.
    assert set(rule["verbs"]) <= {"get", "update", "patch"}
    configmap = one(docs, "ConfigMap", STATE_NAME)
    assert "data" not in configmap, "applying the overlay again must not overwrite the receipts"


@pytest.mark.parametrize("overlay", _ids("the RoleBinding gives the Role to the pod's service account"))
def test_the_binding_names_the_pods_service_account(with_kubernetes_state: Renders, overlay: str) -> None:
    docs = with_kubernetes_state[overlay]
    binding, role, account = one(docs, "RoleBinding"), one(docs, "Role"), one(docs, "ServiceAccount")

    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": account["metadata"]["namespace"]}
    ]
    assert pod_template(docs)["spec"]["serviceAccountName"] == account["metadata"]["name"]


@pytest.mark.parametrize("overlay", _ids("the pod may reach the API server's port 6443 too"))
def test_the_api_server_port_is_let_out(with_kubernetes_state: Renders, overlay: str) -> None:
    docs = with_kubernetes_state[overlay]
    labels = pod_template(docs)["metadata"]["labels"]
    policies = [p for p in of_kind(docs, "NetworkPolicy") if selects(p["spec"]["podSelector"]["matchLabels"], labels)]
    ports = {
        (port["protocol"], port["port"]) for p in policies for r in p["spec"].get("egress", []) for port in r["ports"]
    }

    assert ("TCP", 6443) in ports
    assert ("TCP", 443) in ports


# --- the adapter against an API server that enforces the rendered Role ------------------------------------


@dataclass
class RbacApiServer:
    """ConfigMaps of one namespace over the Kubernetes REST paths, each request checked against a Role's rules."""

    namespace: str
    rules: list[dict[str, Any]]
    token: str
    configmaps: dict[str, dict[str, Any]] = field(default_factory=dict)
    answered: list[tuple[str, str | None, int]] = field(default_factory=list)  # (verb, name, status)
    _version: int = 0

    def store(self, body: dict[str, Any]) -> dict[str, Any]:
        self._version += 1
        body["metadata"]["resourceVersion"] = str(self._version)
        self.configmaps[body["metadata"]["name"]] = body
        return body

    def allows(self, verb: str, name: str | None) -> bool:
        """RBAC's rule: a rule with resourceNames matches only requests naming one of them (never a create)."""
        return any(
            "" in rule["apiGroups"]
            and "configmaps" in rule["resources"]
            and verb in rule["verbs"]
            and (not rule.get("resourceNames") or name in rule["resourceNames"])
            for rule in self.rules
        )

    async def handle(self, request: web.Request) -> web.Response:
        collection = f"/api/v1/namespaces/{self.namespace}/configmaps"
        name = request.path.removeprefix(collection + "/") if request.path.startswith(collection + "/") else None
        verb = {
            ("GET", True): "get",
            ("PUT", True): "update",
            ("PATCH", True): "patch",
            ("DELETE", True): "delete",
            ("GET", False): "list",
            ("POST", False): "create",
        }.get((request.method, name is not None), "other")
        response = await self._answer(request, verb, name, collection)
        self.answered.append((verb, name, response.status))
        return response

    async def _answer(self, request: web.Request, verb: str, name: str | None, collection: str) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"kind": "Status", "code": 401}, status=401)
        if request.path != collection and name is None:
            return web.json_response({"kind": "Status", "code": 404}, status=404)
        if not self.allows(verb, name):
            return web.json_response({"kind": "Status", "code": 403, "reason": "Forbidden"}, status=403)
        current = self.configmaps.get(name or "")
        if verb == "get":
            return web.json_response(current) if current else web.json_response({"code": 404}, status=404)
        if verb == "update" and current:
            body = await request.json()
            if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                return web.json_response({"kind": "Status", "code": 409}, status=409)
            return web.json_response(self.store(body))
        if verb == "create":
            return web.json_response(self.store(await request.json()), status=201)
        return web.json_response({"kind": "Status", "code": 405}, status=405)


@contextlib.asynccontextmanager
async def serving(server: RbacApiServer) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


INTENT = Intent("secret-rotator 2026-01-02T00:00:00Z", datetime(2026, 1, 2, tzinfo=UTC), "no_credential_in_use")


def receipt(key_id: str) -> Receipt:
    return Receipt(key_id=key_id, status="held", since=datetime(2026, 1, 2, tzinfo=UTC), history=(key_id,))


def rbac_server(docs: list[dict[str, Any]], *, ship_configmap: bool) -> RbacApiServer:
    account = one(docs, "ServiceAccount")
    server = RbacApiServer(account["metadata"]["namespace"], one(docs, "Role")["rules"], token="pod-token")
    if ship_configmap:
        server.store(json.loads(json.dumps(one(docs, "ConfigMap", STATE_NAME))))
    return server


@pytest.mark.parametrize("overlay", _ids("the state store reads and writes receipts within the Role"))
async def test_the_state_store_works_within_the_role(
    with_kubernetes_state: Renders, overlay: str, tmp_path: Path
) -> None:
    server = rbac_server(with_kubernetes_state[overlay], ship_configmap=True)
    token = tmp_path / "token"
    token.write_text(server.token)
    async with serving(server) as url:
        store = KubernetesStateStore(server.namespace, STATE_NAME, api_url=url, token_file=token, ca_file=None)
        try:
            assert await store.get("dime-exchange", "sink-a") is None
            await store.add_intent("dime-exchange", INTENT)
            await store.put("dime-exchange", "sink-a", receipt("k1"))
            await store.put("dime-exchange", "sink-a", receipt("k2"))
            assert await store.get("dime-exchange", "sink-a") == receipt("k2")
            assert await store.intents("dime-exchange") == (INTENT,)
        finally:
            await store.close()

    assert {status for _, _, status in server.answered} <= {200}, server.answered
    assert {verb for verb, _, _ in server.answered} == {"get", "update"}


async def test_without_the_shipped_configmap_the_role_refuses_to_create_one(
    with_kubernetes_state: Renders, tmp_path: Path
) -> None:
    """Why the component ships the ConfigMap: the Role has no create, which RBAC cannot narrow to one name."""
    server = rbac_server(with_kubernetes_state["cronjob"], ship_configmap=False)
    token = tmp_path / "token"
    token.write_text(server.token)
    async with serving(server) as url:
        store = KubernetesStateStore(server.namespace, STATE_NAME, api_url=url, token_file=token, ca_file=None)
        try:
            with pytest.raises(RemoteError) as caught:
                await store.put("dime-exchange", "sink-a", receipt("k1"))
        finally:
            await store.close()

    assert caught.value.reason is FailureReason.PERMISSION_DENIED
    assert ("create", None, 403) in server.answered
    # The hint asks for what the shipped Role grants, and for the ConfigMap the component ships.
    [rule] = one(with_kubernetes_state["cronjob"], "Role")["rules"]
    hint = caught.value.hint or ""
    assert f"needs {' and '.join(rule['verbs'])} on this ConfigMap" in hint
    assert "create" not in hint
    assert "re-apply the component" in hint
    assert "deploy/components/kubernetes-state" in hint
