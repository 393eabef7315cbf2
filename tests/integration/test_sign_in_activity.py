"""The sign-in activity report adapter (GraphSignInReport) through msgraph-sdk's request adapter against the
emulator: the app's last sign-in per credential, its failures sorted like every other Graph read."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import unquote

import pytest

from service.adapters.graph_sdk import graph_service_client
from service.adapters.sign_in_activity import GraphSignInReport, beta_url
from service.emulator import RequestInfo
from service.errors import FailureReason, RemoteError
from service.metrics import Metrics
from tests.integration.kit import Kit, calls
from tests.world import FAST_RETRY

REPORT_PATH = "/beta/reports/appCredentialSignInActivities"


def report(kit: Kit, *, may_read: bool = True) -> GraphSignInReport:
    if may_read:
        kit.emu.grant_app_role(kit.world.tenant, kit.world.rotator_object_id, "AuditLog.Read.All")
    client, http = graph_service_client(
        kit.credential(), kit.world.tenant, kit.endpoints.graph_url, kit.endpoints.graph_scope, kit.tls
    )
    kit.closers.append(http.aclose)
    return GraphSignInReport(client, kit.world.tenant, kit.endpoints.graph_url, FAST_RETRY, Metrics())


@pytest.mark.parametrize(
    ("graph_url", "beta"),
    [
        ("https://graph.microsoft.com/v1.0", "https://graph.microsoft.com/beta"),
        ("https://graph.microsoft.com/v1.0/", "https://graph.microsoft.com/beta"),
        ("https://127.0.0.1:8443", "https://127.0.0.1:8443/beta"),
    ],
    ids=["the public cloud's v1.0 root", "with a trailing slash", "a root without a version"],
)
def test_the_beta_root_sits_next_to_the_configured_v1_root(graph_url: str, beta: str) -> None:
    assert beta_url(graph_url) == beta


async def test_the_report_gives_the_apps_last_sign_in_per_credential_and_nothing_of_other_apps(kit: Kit) -> None:
    world = kit.world
    first, first_secret = world.emu.add_password(world.tenant, world.app_id)
    second, second_secret = world.emu.add_password(world.tenant, world.app_id)
    assert world.emu.receiver.sign_in(world.tenant, world.app_id, first_secret)
    world.clock.advance(timedelta(minutes=3))
    assert world.emu.receiver.sign_in(world.tenant, world.app_id, first_secret)
    assert world.emu.receiver.sign_in(world.tenant, world.app_id, second_secret)
    signed_at = world.clock.now()
    seen: list[RequestInfo] = []
    kit.emu.faults.add(REPORT_PATH, "GET", "hook", hook=seen.append)

    found = await report(kit).last_sign_ins(world.app_id)

    assert set(found) == {first.lower(), second.lower()}  # not the rotator's own sign-in
    assert signed_at - timedelta(seconds=5) <= found[first.lower()] <= signed_at  # the later of two
    [request] = seen
    assert unquote(request.query) == f"$filter=appId eq '{world.app_id}'"


async def test_an_app_without_sign_ins_gets_an_empty_answer(kit: Kit) -> None:
    assert await report(kit).last_sign_ins(kit.world.app_id) == {}


async def test_without_audit_log_read_all_it_is_permission_denied(kit: Kit) -> None:
    with pytest.raises(RemoteError) as caught:
        await report(kit, may_read=False).last_sign_ins(kit.world.app_id)

    assert (caught.value.reason, caught.value.status, caught.value.transient) == (
        FailureReason.PERMISSION_DENIED,
        403,
        False,
    )
    assert caught.value.code == "Authorization_RequestDenied"


async def test_a_cloud_without_the_report_answers_400_which_is_not_retried(kit: Kit) -> None:
    kit.emu.sign_ins.available = False

    with pytest.raises(RemoteError) as caught:
        await report(kit).last_sign_ins(kit.world.app_id)

    assert caught.value.status == 400
    assert len(calls(kit.emu, "graph", "GET", REPORT_PATH)) == 1


async def test_a_throttled_read_is_retried(kit: Kit) -> None:
    kit.emu.faults.add(REPORT_PATH, "GET", "throttle", retry_after=0, count=1)

    assert await report(kit).last_sign_ins(kit.world.app_id) == {}
    assert [r.status for r in calls(kit.emu, "graph", "GET", REPORT_PATH)] == [429, 200]
