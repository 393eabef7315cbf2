"""The adapters' contract suite: every port method through the real SDKs against the emulator, errors included.

Adapters are built the way ``service/wiring.py`` builds them (one TLS context, one aiohttp session, the
rotator's client-secret credential, a Graph client per tenant, a Key Vault client per vault) and talk
HTTPS to the emulator on 127.0.0.1: msgraph-sdk, azure-identity and azure-keyvault-secrets are not mocked.
What the emulator cannot play (a redirecting or echoing push endpoint, the Kubernetes API) is a small
aiohttp server on loopback (tests/integration/kit.py).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from service.adapters.graph import GraphDirectory
from service.adapters.graph_reads import GraphReads
from service.adapters.keyvault import KeyVault
from service.adapters.state_file import FileStateStore
from service.adapters.state_kubernetes import KubernetesStateStore
from service.errors import DEFAULT_HINTS, FailureReason, OutcomeUnknown, RemoteError
from service.metrics import Metrics
from service.model import DEFAULT_MARKER, App, Intent, credential_name
from service.ports import MAX_INTENTS, Receipt
from service.retry import RetryPolicy
from service.secret import Secret
from tests.conftest import assert_no_secrets
from tests.integration.conftest import World, days
from tests.integration.kit import Kit, calls, loopback_server, push_fields

NAME = "dime-exchange-client-secret"
ADD_PASSWORD = r"/addPassword$"
VAULT = r"^/secrets/"
RECEIVER = r"^/dimescheduler/"
# Quicker than FAST_RETRY where a test waits through every attempt.
QUICK = RetryPolicy(attempts=3, base_delay=0.01, max_delay=2.0, budget=10.0)


# --- GraphDirectory.read_app, alone and in a batch ----------------------------------------------------
#
# A pass reads a tenant's apps in Graph batches (read_apps) and an app alone (read_app) when it is the only
# one, or again under its target's lock: both paths must answer alike, errors included.

# A read of an app alone (applications(appId='...')) or in a batch (an `appId in (...)` filter, then the app
# alone inside another batch when the filter did not return it).
APP_READ = r"^/v1\.0/applications(\(appId=.*)?$"


@dataclass(frozen=True)
class ReadPath:
    """One way of reading an app: alone, or in a batch; ``http`` the HTTP request it takes to Graph."""

    batched: bool

    async def __call__(self, directory: GraphDirectory, client_id: str) -> App:
        if not self.batched:
            return await directory.read_app(client_id)
        found = (await directory.read_apps([client_id]))[client_id]
        if isinstance(found, RemoteError):
            raise found
        return found

    @property
    def http(self) -> tuple[str, str]:
        return ("POST", "/v1.0/$batch") if self.batched else ("GET", "/v1.0/applications(appId=")


@pytest.fixture(params=[False, True], ids=["read alone", "read in a batch"])
def read(request: pytest.FixtureRequest) -> ReadPath:
    return ReadPath(batched=request.param)


def graph_http(emu: Any) -> list[Any]:
    """The HTTP requests Graph answered (a batch is one; the requests inside it are not)."""
    return [r for r in calls(emu, "graph") if not r.inner]


def graph_reads(emu: Any) -> list[Any]:
    """The app reads Graph answered: GETs sent alone or inside a batch."""
    return [r for r in calls(emu, "graph", "GET") if r.inner or not r.path.endswith("$batch")]


async def test_read_app_returns_the_app_and_its_credentials_in_one_request(kit: Kit, read: ReadPath) -> None:
    world = kit.world
    now = world.clock.now().replace(microsecond=0)
    seeded: dict[str, tuple[str, datetime, datetime]] = {}
    for name, start, end in [
        ("by hand", now - days(10), now + days(300)),
        ("secret-rotator 2024-01-01T00:00:00Z", now - days(1), now + days(89)),
    ]:
        key_id, _ = world.emu.add_password(world.tenant, world.app_id, display_name=name, start=start, end=end)
        seeded[key_id] = (name, start, end)
    directory = kit.directory()
    world.emu.reset_requests()

    app = await read(directory, world.app_id)

    assert (app.object_id, app.app_id, app.display_name) == (world.app_object_id, world.app_id, "Dime.Scheduler")
    assert {c.key_id for c in app.credentials} == set(seeded)
    stored = {p.key_id: p for p in world.passwords()}
    for credential in app.credentials:
        name, start, end = seeded[credential.key_id]
        assert credential.display_name == name
        assert credential.hint == stored[credential.key_id].hint
        assert credential.hint is not None
        assert len(credential.hint) == 3
        assert (credential.start, credential.end) == (start, end)
        assert credential.start is not None
        assert credential.end is not None
        assert credential.start.utcoffset() == credential.end.utcoffset() == timedelta(0)
    [http] = graph_http(world.emu)
    assert (http.method, http.status) == (read.http[0], 200)
    assert read.http[1] in http.path
    assert [r.status for r in graph_reads(world.emu)] == [200]


def _unknown_app(world: World) -> str:
    return str(uuid.uuid4())


def _app_not_owned(world: World) -> str:
    return world.emu.add_app(world.tenant, "Not ours").app_id


def _throttled_forever(world: World) -> str:
    world.emu.faults.add(APP_READ, "GET", "throttle", retry_after=0)
    return world.app_id


def _unavailable_forever(world: World) -> str:
    world.emu.faults.add(APP_READ, "GET", "status", status=503, retry_after=0)
    return world.app_id


@pytest.mark.parametrize(
    ("arrange", "reason", "transient", "status", "code", "gets"),
    [
        pytest.param(
            _unknown_app,
            FailureReason.NOT_FOUND,
            False,
            404,
            "Request_ResourceNotFound",
            (1, 2),
            id="an appId no app has is not_found, permanent, asked once (in a batch: then alone)",
        ),
        pytest.param(
            _app_not_owned,
            FailureReason.PERMISSION_DENIED,
            False,
            403,
            "Authorization_RequestDenied",
            (1, 2),
            id="an app the rotator does not own is permission_denied (in a batch: once alone)",
        ),
        pytest.param(
            _throttled_forever,
            FailureReason.THROTTLED,
            True,
            429,
            "TooManyRequests",
            (QUICK.attempts, QUICK.attempts),
            id="a 429 that never stops is throttled after the policy's attempts",
        ),
        pytest.param(
            _unavailable_forever,
            FailureReason.UNEXPECTED,
            True,
            503,
            "ServiceUnavailable",
            (QUICK.attempts, QUICK.attempts),
            id="a 503 that never stops stays transient after the policy's attempts",
        ),
    ],
)
async def test_read_app_fails_with_a_sorted_error(
    kit: Kit,
    read: ReadPath,
    arrange: Callable[[World], str],
    reason: FailureReason,
    transient: bool,
    status: int,
    code: str,
    gets: tuple[int, int],
) -> None:
    client_id = arrange(kit.world)
    directory = kit.directory(QUICK)

    with pytest.raises(RemoteError) as caught:
        await read(directory, client_id)

    error = caught.value
    assert (error.service, error.reason, error.transient, error.status, error.code) == (
        "graph",
        reason,
        transient,
        status,
        code,
    )
    assert client_id in error.target
    assert error.hint
    assert len(graph_reads(kit.emu)) == gets[read.batched]


async def test_an_app_read_in_a_batch_fails_exactly_as_the_same_read_alone(kit: Kit) -> None:
    world = kit.world
    unknown, theirs = str(uuid.uuid4()), _app_not_owned(world)
    directory = kit.directory(QUICK)

    batched = await directory.read_apps([world.app_id, unknown, theirs])
    alone = {}
    for client_id in (unknown, theirs):
        with pytest.raises(RemoteError) as caught:
            await directory.read_app(client_id)
        alone[client_id] = caught.value

    assert isinstance(batched[world.app_id], App)
    for client_id, error in alone.items():
        found = batched[client_id]
        assert isinstance(found, RemoteError)
        fields = ("service", "target", "reason", "transient", "status", "code", "hint", "message")
        assert [getattr(found, f) for f in fields] == [getattr(error, f) for f in fields]


@pytest.mark.parametrize(
    ("retry_after", "max_delay", "wait"),
    [
        pytest.param(1, 2.0, 1.0, id="each wait is as long as Retry-After says"),
        pytest.param(30, 0.5, 0.5, id="a Retry-After beyond max_delay is cut to max_delay"),
    ],
)
async def test_read_app_waits_out_a_429_then_succeeds(
    kit: Kit, read: ReadPath, retry_after: int, max_delay: float, wait: float
) -> None:
    directory = kit.directory(RetryPolicy(attempts=4, base_delay=0.01, max_delay=max_delay, budget=10.0))
    await read(directory, kit.world.app_id)  # the token is fetched outside the timed part
    kit.emu.reset_requests()
    kit.emu.faults.add(APP_READ, "GET", "throttle", retry_after=retry_after, count=2)

    started = time.monotonic()
    app = await read(directory, kit.world.app_id)
    elapsed = time.monotonic() - started

    assert app.app_id == kit.world.app_id
    gets = graph_reads(kit.emu)
    assert [r.status for r in gets] == [429, 429, 200]
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(gets)]
    assert all(wait * 0.9 <= gap < wait + 1.5 for gap in gaps), gaps
    assert 2 * wait * 0.9 <= elapsed < 2 * wait + 3.0


async def test_a_throttled_graph_write_holds_the_tenants_reads_for_its_retry_after(kit: Kit) -> None:
    directory = kit.directory(RetryPolicy(attempts=1, base_delay=0.01, max_delay=5.0, budget=10.0))
    await directory.read_app(kit.world.app_id)  # the token is fetched outside the timed part
    kit.emu.reset_requests()
    kit.emu.faults.add(ADD_PASSWORD, "POST", "throttle", retry_after=2, count=1)
    end = datetime.now(UTC) + timedelta(days=30)

    with pytest.raises(RemoteError) as caught:
        await directory.add_password(kit.world.app_object_id, credential_name(DEFAULT_MARKER, datetime.now(UTC)), end)
    await directory.read_app(kit.world.app_id)

    assert caught.value.reason is FailureReason.THROTTLED
    [throttled] = [r for r in kit.emu.requests if r.status == 429]
    [read] = graph_reads(kit.emu)
    # Graph throttles the app in the tenant, not one request: the next read waits out the Retry-After too.
    assert (read.at - throttled.at).total_seconds() >= 1.8


async def test_read_app_rides_out_one_503(kit: Kit, read: ReadPath) -> None:
    kit.emu.faults.add(APP_READ, "GET", "status", status=503, retry_after=0, count=1)

    app = await read(kit.directory(), kit.world.app_id)

    assert app.object_id == kit.world.app_object_id
    assert [r.status for r in graph_reads(kit.emu)] == [503, 200]


class CountingCredential:
    """The rotator's real credential, counting the tokens asked of it."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.asked = inner, 0

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        self.asked += 1
        return await self.inner.get_token(*scopes, **kwargs)


async def test_graph_reads_ask_for_a_token_once_and_reuse_it(kit: Kit) -> None:
    credential = CountingCredential(kit.credential())
    endpoints = kit.endpoints
    reads = GraphReads(
        kit.session,
        credential,
        kit.world.tenant,
        endpoints.graph_url,  # type: ignore[arg-type]
        endpoints.graph_scope,
        QUICK,
        Metrics(),
    )

    for _ in range(3):
        await reads.read_app(kit.world.app_id)
    await reads.read_apps([kit.world.app_id, _app_not_owned(kit.world)])

    assert credential.asked == 1


async def test_read_app_with_a_wrong_rotator_secret_is_permission_denied_by_entra(kit: Kit, read: ReadPath) -> None:
    wrong = kit.world.tmp / "wrong-rotator-secret"
    wrong.write_text("not-the-rotator-secret-at-all-0123456789")
    directory = kit.directory(secret_file=wrong)

    with pytest.raises(RemoteError) as caught:
        await read(directory, kit.world.app_id)

    error = caught.value
    assert (error.service, error.reason, error.transient) == ("entra", FailureReason.PERMISSION_DENIED, False)
    assert "credential" in (error.hint or "")
    assert "AADSTS7000215" in str(error)
    assert error.target == f"app {kit.world.app_id} in tenant {kit.world.tenant}"
    assert calls(kit.emu, "graph") == [], "Graph is never asked without a token"


# --- GraphDirectory.add_password --------------------------------------------------------------------


async def test_add_password_returns_the_credential_and_its_masked_secret(kit: Kit) -> None:
    end = kit.world.clock.now().replace(microsecond=0) + days(90)

    credential, secret = await kit.directory().add_password(
        kit.world.app_object_id, "secret-rotator 2025-01-01T00:00:00Z", end
    )

    assert len(secret.reveal()) == 40
    assert credential.hint == secret.hint == secret.reveal()[:3]
    assert credential.display_name == "secret-rotator 2025-01-01T00:00:00Z"
    assert credential.end == end
    assert credential.start is not None
    assert credential.start.utcoffset() == timedelta(0)
    assert [p.key_id for p in kit.world.passwords()] == [credential.key_id]
    assert repr(secret) == str(secret) == f"{secret}" == "Secret('***')"
    assert_no_secrets(repr(credential), "the credential's repr")
    assert [(r.method, r.status) for r in calls(kit.emu, "graph", "POST")] == [("POST", 200)]


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        pytest.param("status", 503, id="a 503 after the credential was made is never retried"),
        pytest.param("status", 504, id="a 504 after the credential was made is never retried"),
        pytest.param("drop", 599, id="a connection dropped after the credential was made is never retried"),
    ],
)
async def test_add_password_whose_answer_is_lost_raises_outcome_unknown_and_is_not_retried(
    kit: Kit, kind: str, status: int
) -> None:
    kit.emu.faults.add(ADD_PASSWORD, "POST", kind, status=status, retry_after=0, after=True)  # type: ignore[arg-type]
    directory = kit.directory()
    end = kit.world.clock.now() + days(90)

    with pytest.raises(OutcomeUnknown) as caught:
        await directory.add_password(kit.world.app_object_id, "secret-rotator x", end)

    assert caught.value.transient is False
    assert "orphan" in (caught.value.hint or "")
    assert len(calls(kit.emu, "graph", "POST", "/addPassword")) == 1
    assert len(kit.world.passwords()) == 1, "the credential was made; the caller cannot tell"


async def test_add_password_throttled_before_it_was_processed_is_retried(kit: Kit) -> None:
    kit.emu.faults.add(ADD_PASSWORD, "POST", "throttle", retry_after=0, count=1)

    credential, _ = await kit.directory().add_password(
        kit.world.app_object_id, "secret-rotator x", kit.world.clock.now() + days(90)
    )

    assert [r.status for r in calls(kit.emu, "graph", "POST", "/addPassword")] == [429, 200]
    assert [p.key_id for p in kit.world.passwords()] == [credential.key_id]


async def test_add_password_beyond_the_tenant_policy_is_a_policy_violation(kit: Kit) -> None:
    kit.emu.set_password_max_lifetime(kit.world.tenant, days(30))
    end = kit.world.clock.now() + days(90)

    with pytest.raises(RemoteError) as caught:
        await kit.directory().add_password(kit.world.app_object_id, "secret-rotator x", end)

    error = caught.value
    assert not isinstance(error, OutcomeUnknown)
    assert (error.reason, error.transient, error.status, error.code) == (
        FailureReason.POLICY_VIOLATION,
        False,
        400,
        "CredentialInvalidLifetimeAsPerAppPolicy",
    )
    assert "lifetime" in (error.hint or "")
    assert kit.world.passwords() == []


def _app_at_its_password_cap(kit: Kit) -> None:
    kit.emu.password_cap = 2
    for _ in range(2):
        kit.emu.add_password(kit.world.tenant, kit.world.app_id)


async def test_add_password_at_the_password_cap_fails_at_once_without_creating_anything(kit: Kit) -> None:
    _app_at_its_password_cap(kit)

    with pytest.raises(RemoteError) as caught:
        await kit.directory().add_password(kit.world.app_object_id, "secret-rotator x", kit.world.clock.now() + days(9))

    error = caught.value
    assert not isinstance(error, OutcomeUnknown), "Graph answered: nothing was created"
    assert (error.transient, error.status, error.code) == (False, 400, "TooManyAppPasswords")
    assert len(calls(kit.emu, "graph", "POST", "/addPassword")) == 1
    assert len(kit.world.passwords()) == 2


async def test_add_password_at_the_password_cap_says_what_to_do(kit: Kit) -> None:
    _app_at_its_password_cap(kit)

    with pytest.raises(RemoteError) as caught:
        await kit.directory().add_password(kit.world.app_object_id, "secret-rotator x", kit.world.clock.now() + days(9))

    assert caught.value.reason is not FailureReason.UNEXPECTED
    assert caught.value.hint != DEFAULT_HINTS[FailureReason.UNEXPECTED]


# --- GraphDirectory.remove_password and password_lifetime_limit ---------------------------------------


async def test_remove_password_removes_the_credential(kit: Kit) -> None:
    keep, _ = kit.emu.add_password(kit.world.tenant, kit.world.app_id)
    gone, _ = kit.emu.add_password(kit.world.tenant, kit.world.app_id)

    await kit.directory().remove_password(kit.world.app_object_id, gone)

    assert [p.key_id for p in kit.world.passwords()] == [keep]


async def test_remove_password_of_an_unknown_key_id_counts_as_removed(kit: Kit) -> None:
    keep, _ = kit.emu.add_password(kit.world.tenant, kit.world.app_id)

    await kit.directory().remove_password(kit.world.app_object_id, str(uuid.uuid4()))

    assert [p.key_id for p in kit.world.passwords()] == [keep]
    assert [r.status for r in calls(kit.emu, "graph", "POST", "/removePassword")] == [404]


@pytest.mark.parametrize(
    ("may_read_policies", "tenant_limit", "app_limit", "expected"),
    [
        pytest.param(False, days(30), None, None, id="without Policy.Read.All the limit is unknown"),
        pytest.param(True, None, None, None, id="with Policy.Read.All and no policy there is no limit"),
        pytest.param(True, days(30), None, days(30), id="with Policy.Read.All the tenant's limit is read"),
        pytest.param(True, days(30), days(10), days(10), id="an app's own policy shorter than the tenant's wins"),
    ],
)
async def test_password_lifetime_limit(
    kit: Kit,
    may_read_policies: bool,
    tenant_limit: timedelta | None,
    app_limit: timedelta | None,
    expected: timedelta | None,
) -> None:
    world = kit.world
    if may_read_policies:
        world.emu.grant_app_role(world.tenant, world.rotator_object_id, "Policy.Read.All")
    world.emu.set_password_max_lifetime(world.tenant, tenant_limit)
    if app_limit is not None:
        world.emu.set_password_max_lifetime(world.tenant, app_limit, app_object_id=world.app_object_id)

    assert await kit.directory().password_lifetime_limit(world.app_object_id) == expected


# --- KeyVault ---------------------------------------------------------------------------------------


async def test_key_vault_pays_the_401_challenge_once_then_writes(kit: Kit) -> None:
    vault = kit.vault()
    expires = kit.world.clock.now().replace(microsecond=0) + days(90)
    tags = {"managed-by": "secret-rotator", "key-id": "k1", "client-id": kit.world.app_id}

    written = await vault.write(NAME, Secret("first-value-0123456789"), expires, tags)
    await vault.write(NAME, Secret("second-value-0123456789"), expires, tags)

    assert [(r.method, r.status) for r in calls(kit.emu, "keyvault")] == [("PUT", 401), ("PUT", 200), ("PUT", 200)]
    assert written.tags == tags
    assert written.expires_on == expires
    assert written.enabled is True
    assert written.created is not None
    assert written.created.utcoffset() == timedelta(0)
    assert written.version == kit.emu.vault_versions(NAME)[0].version


async def test_key_vault_lists_every_version_across_pages(kit: Kit) -> None:
    vault = kit.vault()
    written = [
        (await vault.write(NAME, Secret(f"value-number-{i:02d}"), None, {"key-id": f"k{i}"})).version for i in range(30)
    ]

    listed = await vault.list_versions(NAME)

    assert sorted(v.version for v in listed) == sorted(written)
    assert {v.tags["key-id"] for v in listed} == {f"k{i}" for i in range(30)}
    pages = calls(kit.emu, "keyvault", "GET", f"/secrets/{NAME}/versions")
    assert [r.status for r in pages] == [200, 200], "the nextLink was followed"


async def test_key_vault_lists_no_versions_of_a_missing_secret(kit: Kit) -> None:
    assert await kit.vault().list_versions("never-written") == []


async def test_key_vault_reads_the_latest_value_and_a_given_version(kit: Kit) -> None:
    vault = kit.vault()
    old = Secret("the-old-value-0123456789")
    new = Secret("the-new-value-0123456789")
    first = await vault.write(NAME, old, None, {})
    await vault.write(NAME, new, None, {})

    assert await vault.read_value(NAME) == new
    assert await vault.read_value(NAME, first.version) == old


async def test_key_vault_reading_a_missing_secret_is_not_found(kit: Kit) -> None:
    with pytest.raises(RemoteError) as caught:
        await kit.vault().read_value("never-written")

    error = caught.value
    assert (error.service, error.reason, error.transient, error.status, error.code) == (
        "keyvault",
        FailureReason.NOT_FOUND,
        False,
        404,
        "SecretNotFound",
    )
    assert "secret_name" in (error.hint or "")


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda v: v.write(NAME, Secret("some-value-0123456789"), None, {}), id="writing"),
        pytest.param(lambda v: v.read_value(NAME), id="reading a value"),
        pytest.param(lambda v: v.list_versions(NAME), id="listing versions"),
    ],
)
async def test_key_vault_refusing_the_rotator_is_permission_denied(
    kit: Kit, operation: Callable[[KeyVault], Awaitable[Any]]
) -> None:
    kit.emu.kv_deny(kit.world.rotator_object_id)

    with pytest.raises(RemoteError) as caught:
        await operation(kit.vault())

    error = caught.value
    assert (error.service, error.reason, error.transient, error.status) == (
        "keyvault",
        FailureReason.PERMISSION_DENIED,
        False,
        403,
    )
    assert "Key Vault Secrets Officer" in (error.hint or "")
    assert kit.emu.vault_versions(NAME) == []


async def test_key_vault_rides_out_a_503(kit: Kit) -> None:
    kit.emu.faults.add(VAULT, "PUT", "status", status=503, retry_after=0, count=1)

    written = await kit.vault().write(NAME, Secret("some-value-0123456789"), None, {"key-id": "k1"})

    assert written.tags == {"key-id": "k1"}
    assert [r.status for r in calls(kit.emu, "keyvault", "PUT")] == [503, 401, 200]
    assert len(kit.emu.vault_versions(NAME)) == 1


async def test_key_vault_unavailable_for_good_is_a_transient_sink_failure(kit: Kit) -> None:
    kit.emu.faults.add(VAULT, "GET", "status", status=503, retry_after=0)

    with pytest.raises(RemoteError) as caught:
        await kit.vault(QUICK).read_value(NAME)

    error = caught.value
    assert (error.reason, error.transient, error.status) == (FailureReason.SINK_FAILED, True, 503)
    assert len(calls(kit.emu, "keyvault", "GET")) == QUICK.attempts


async def test_key_vault_verifying_the_challenge_resource_refuses_the_emulators_vault(kit: Kit) -> None:
    # The emulator's challenge names https://vault.azure.net while the vault is at 127.0.0.1: the SDK's check
    # refuses to send a token there, and the adapter says which setting is involved.
    vault = kit.vault(verify_challenge_resource=True)

    with pytest.raises(RemoteError) as caught:
        await vault.write(NAME, Secret("some-value-0123456789"), None, {})

    assert caught.value.reason is FailureReason.CONFIG_ERROR
    assert "verify_challenge_resource" in (caught.value.hint or "")
    assert [(r.method, r.status) for r in calls(kit.emu, "keyvault")] == [("PUT", 401)]
    assert kit.emu.vault_versions(NAME) == []


# --- EntraVerifier ----------------------------------------------------------------------------------


def _right_secret(world: World) -> tuple[str, str]:
    return world.app_id, world.emu.add_password(world.tenant, world.app_id)[1]


def _wrong_secret(world: World) -> tuple[str, str]:
    world.emu.add_password(world.tenant, world.app_id)
    return world.app_id, "Abc8Q~not-the-secret-of-this-app-0123456"


def _expired_secret(world: World) -> tuple[str, str]:
    now = world.clock.now()
    _, secret = world.emu.add_password(world.tenant, world.app_id, start=now - days(2), end=now + timedelta(hours=1))
    world.clock.advance(timedelta(hours=2))
    return world.app_id, secret


def _unknown_client(world: World) -> tuple[str, str]:
    return str(uuid.uuid4()), "Abc8Q~a-secret-of-an-app-that-is-not-there"


@pytest.mark.parametrize(
    ("arrange", "code"),
    [
        pytest.param(_right_secret, None, id="the right secret gets a token"),
        pytest.param(
            _wrong_secret, "AADSTS7000215", id="a wrong secret is refused (7000215), maybe not yet replicated"
        ),
        pytest.param(_expired_secret, "AADSTS7000222", id="an expired secret is refused (7000222)"),
        pytest.param(_unknown_client, "AADSTS700016", id="an unknown client is refused (700016)"),
    ],
)
async def test_try_token(kit: Kit, arrange: Callable[[World], tuple[str, str]], code: str | None) -> None:
    client_id, secret = arrange(kit.world)
    verifier = kit.verifier()

    if code is None:
        await verifier.try_token(kit.world.tenant, client_id, Secret(secret))
        return
    with pytest.raises(RemoteError) as caught:
        await verifier.try_token(kit.world.tenant, client_id, Secret(secret))

    error = caught.value
    assert (error.service, error.reason, error.transient, error.code) == (
        "entra",
        FailureReason.VERIFICATION_FAILED,
        True,
        code,
    )
    assert client_id in error.target
    assert_no_secrets(str(error), "the verifier's error")


async def test_try_token_is_refused_while_a_new_secret_replicates_then_succeeds(kit: Kit) -> None:
    kit.emu.replication_delay = timedelta(minutes=5)
    _, secret = await kit.directory().add_password(
        kit.world.app_object_id, "secret-rotator x", kit.world.clock.now() + days(90)
    )
    verifier = kit.verifier()

    with pytest.raises(RemoteError) as caught:
        await verifier.try_token(kit.world.tenant, kit.world.app_id, secret)
    assert (caught.value.transient, caught.value.code) == (True, "AADSTS7000215")

    kit.world.clock.advance(timedelta(minutes=5, seconds=1))
    await verifier.try_token(kit.world.tenant, kit.world.app_id, secret)


# --- HttpPusher -------------------------------------------------------------------------------------


async def test_push_delivers_the_body_and_the_idempotency_key(kit: Kit) -> None:
    _, text = kit.emu.add_password(kit.world.tenant, kit.world.app_id)
    key_id = str(uuid.uuid4())

    await kit.pusher(kit.emu.receiver_url).push({**push_fields(kit.world), "environment": "prod"}, Secret(text), key_id)

    [delivery] = kit.emu.receiver.deliveries
    assert (delivery.tenant_id, delivery.client_id, delivery.expires_on) == (
        kit.world.tenant,
        kit.world.app_id,
        "2030-01-01T00:00:00Z",
    )
    assert delivery.extra == {"environment": "prod"}
    assert delivery.idempotency_key == key_id
    assert delivery.reveal() == text
    assert delivery.signin_ok is True


async def test_push_with_a_wrong_api_key_fails_at_once_with_a_hint_about_api_key(kit: Kit) -> None:
    _, text = kit.emu.add_password(kit.world.tenant, kit.world.app_id)

    with pytest.raises(RemoteError) as caught:
        await kit.pusher(kit.emu.receiver_url, api_key="not-the-api-key-0123").push(
            push_fields(kit.world), Secret(text), "k1"
        )

    error = caught.value
    assert (error.service, error.reason, error.transient, error.status) == (
        "push",
        FailureReason.SINK_FAILED,
        False,
        401,
    )
    assert "api_key" in (error.hint or "")
    assert len(calls(kit.emu, "receiver", "POST")) == 1
    assert kit.emu.receiver.deliveries == []


async def test_push_rides_out_a_503(kit: Kit) -> None:
    _, text = kit.emu.add_password(kit.world.tenant, kit.world.app_id)
    kit.emu.faults.add(RECEIVER, "POST", "status", status=503, retry_after=0, count=1)

    await kit.pusher(kit.emu.receiver_url).push(push_fields(kit.world), Secret(text), "k1")

    assert [r.status for r in calls(kit.emu, "receiver", "POST")] == [503, 200]
    assert len(kit.emu.receiver.deliveries) == 1


async def test_push_refuses_a_redirect_and_the_secret_never_reaches_the_location(kit: Kit) -> None:
    _, text = kit.emu.add_password(kit.world.tenant, kit.world.app_id)
    elsewhere: list[bytes] = []
    redirected: list[str] = []

    async def catch(request: web.Request) -> web.Response:
        elsewhere.append(await request.read())
        return web.json_response({"status": "stored"})

    async with loopback_server(catch) as location:

        async def redirect(request: web.Request) -> web.Response:
            redirected.append(request.method)
            return web.Response(status=307, headers={"Location": f"{location}/stolen"})

        async with loopback_server(redirect) as url:
            with pytest.raises(RemoteError) as caught:
                await kit.pusher(url).push(push_fields(kit.world), Secret(text), "k1")

    error = caught.value
    assert (error.reason, error.transient, error.status) == (FailureReason.SINK_FAILED, False, 307)
    assert location in (error.hint or ""), "where it points, scheme and host only"
    assert "/stolen" not in (error.hint or ""), "never its path or query (either may carry a secret)"
    assert redirected == ["POST"], "asked once, not retried"
    assert elsewhere == [], "the secret never went to the Location"


def _echo_of_the_body(request_body: str) -> str:
    return json.dumps({"error": "bad_request", "received": json.loads(request_body)})


async def test_push_error_text_never_contains_the_secret_an_endpoint_echoed(kit: Kit) -> None:
    _, text = kit.emu.add_password(kit.world.tenant, kit.world.app_id)

    async def echo(request: web.Request) -> web.Response:
        return web.Response(status=400, text=_echo_of_the_body(await request.text()))

    async with loopback_server(echo) as url:
        with pytest.raises(RemoteError) as caught:
            await kit.pusher(url).push(push_fields(kit.world), Secret(text), "k1")

    error = caught.value
    assert (error.reason, error.transient, error.status) == (FailureReason.SINK_FAILED, False, 400)
    assert "bad_request" in str(error), "the endpoint's own words are kept"
    for rendered in (str(error), repr(error), error.message, error.hint or ""):
        assert_no_secrets(rendered, "the push error")


async def test_push_error_text_contains_no_part_of_an_echoed_secret_cut_at_the_length_limit(kit: Kit) -> None:
    _, text = kit.emu.add_password(kit.world.tenant, kit.world.app_id)

    async def echo(request: web.Request) -> web.Response:
        return web.Response(status=400, text=await request.text())

    fields = push_fields(kit.world)
    # Pad the body so that the secret starts 20 characters before the cut at 300.
    probe = json.dumps({**fields, "pad": "", "clientSecret": ""})
    fields["pad"] = "x" * (280 - probe.index('"clientSecret": ""') - len('"clientSecret": "'))
    async with loopback_server(echo) as url:
        with pytest.raises(RemoteError) as caught:
            await kit.pusher(url).push(fields, Secret(text), "k1")

    rendered = str(caught.value)
    assert_no_secrets(rendered, "the push error")
    windows = {text[i : i + 12] for i in range(len(text) - 11)}
    assert not any(window in rendered for window in windows), "a 12-character piece of the secret is in the error"


# --- FileStateStore ---------------------------------------------------------------------------------


def receipt(key_id: str, status: str = "held") -> Receipt:
    return Receipt(
        key_id=key_id,
        status=status,
        since=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),  # type: ignore[arg-type]
        history=("k0", key_id),
    )


async def test_file_store_round_trips_receipts_per_target_and_sink(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "state")
    store.check()

    await store.put("dime-exchange", "dimescheduler:https://a", receipt("k1", "pending"))
    await store.put("dime-exchange", "webhook:https://b", receipt("k2"))
    await store.put("dime-exchange", "dimescheduler:https://a", receipt("k3"))
    await store.put("other", "webhook:https://b", receipt("k4"))

    assert await store.get("dime-exchange", "dimescheduler:https://a") == receipt("k3")
    assert await store.get("dime-exchange", "webhook:https://b") == receipt("k2")
    assert await store.get("other", "webhook:https://b") == receipt("k4")
    assert await store.get("dime-exchange", "never-written") is None
    assert await store.get("never-written", "dimescheduler:https://a") is None
    assert await FileStateStore(tmp_path / "state").get("dime-exchange", "webhook:https://b") == receipt("k2")


async def test_file_store_writes_atomically_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    for i in range(5):
        await store.put("dime-exchange", "sink", receipt(f"k{i}"))

    assert sorted(p.name for p in (tmp_path / "receipts").iterdir()) == ["dime-exchange.json"]
    document = json.loads((tmp_path / "receipts" / "dime-exchange.json").read_text())
    assert document["sink"]["key_id"] == "k4"


def intent(n: int, reason: str = "renewal_due") -> Intent:
    at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC) + timedelta(minutes=n)
    return Intent(credential_name(DEFAULT_MARKER, at), at, reason)


async def test_file_store_keeps_the_last_intents_per_target_apart_from_the_receipts(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    store.check()
    await store.put("dime-exchange", "sink", receipt("k1"))
    receipts = (tmp_path / "receipts" / "dime-exchange.json").read_bytes()
    assert await store.intents("dime-exchange") == (), "a store from before intents has none"

    for n in range(MAX_INTENTS + 3):
        await store.add_intent("dime-exchange", intent(n))
    # A second rotation within the same second: one more credential of that name.
    twin = replace(intent(MAX_INTENTS + 2), at=intent(MAX_INTENTS + 2).at + timedelta(microseconds=1), reason="forced")
    await store.add_intent("dime-exchange", twin)
    # addPassword answered: the intent gets its key id, in place.
    await store.add_intent("dime-exchange", replace(intent(MAX_INTENTS + 2), key_id="k-answered"))
    await store.add_intent("other", intent(0, "no_receipt"))

    kept = await FileStateStore(tmp_path).intents("dime-exchange")
    assert len(kept) == MAX_INTENTS
    assert kept[0] == intent(4), "the oldest went"
    assert kept[-2:] == (replace(intent(MAX_INTENTS + 2), key_id="k-answered"), twin)
    assert await store.intents("other") == (intent(0, "no_receipt"),)
    assert (tmp_path / "receipts" / "dime-exchange.json").read_bytes() == receipts, "receipts are untouched"
    assert sorted(p.name for p in (tmp_path / "intents").iterdir()) == ["dime-exchange.json", "other.json"]


async def _hold(store: FileStateStore, target: str, events: list[str], name: str, release: asyncio.Event) -> None:
    async with store.lock(target):
        events.append(f"{name} in")
        await release.wait()
        events.append(f"{name} out")


async def test_file_store_lock_makes_a_second_holder_of_the_same_target_wait(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    events: list[str] = []
    first_done, second_done = asyncio.Event(), asyncio.Event()
    second_done.set()
    first = asyncio.create_task(_hold(store, "dime-exchange", events, "first", first_done))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(_hold(FileStateStore(tmp_path), "dime-exchange", events, "second", second_done))

    await asyncio.sleep(0.4)
    assert events == ["first in"], "the second waits while the first holds the lock"
    first_done.set()
    await asyncio.wait_for(asyncio.gather(first, second), timeout=5)

    assert events == ["first in", "first out", "second in", "second out"]


async def test_file_store_locks_on_different_targets_do_not_block_each_other(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    events: list[str] = []
    release = asyncio.Event()
    holders = [asyncio.create_task(_hold(store, name, events, name, release)) for name in ("one", "two")]

    await asyncio.sleep(0.3)
    assert sorted(events) == ["one in", "two in"]
    release.set()
    await asyncio.wait_for(asyncio.gather(*holders), timeout=5)


# --- KubernetesStateStore against a fake API server ------------------------------------------------


@dataclass
class FakeKubernetes:
    """Just enough of the Kubernetes API for one ConfigMap: GET, POST, PUT with resourceVersion and 409."""

    token: str
    configmaps: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: list[tuple[str, str, int]] = field(default_factory=list)
    deny: bool = False
    before_write: Callable[[FakeKubernetes], None] | None = None  # another writer, once, before the next write
    _version: int = 0

    def bump(self, name: str, data: dict[str, str]) -> None:
        self._version += 1
        self.configmaps[name] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "rotator", "resourceVersion": str(self._version)},
            "data": data,
        }

    async def handle(self, request: web.Request) -> web.Response:
        response = await self._answer(request)
        self.seen.append((request.method, request.path, response.status))
        return response

    async def _answer(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"kind": "Status", "code": 401, "reason": "Unauthorized"}, status=401)
        if self.deny:
            return web.json_response(
                {
                    "kind": "Status",
                    "code": 403,
                    "reason": "Forbidden",
                    "message": 'configmaps is forbidden: User "system:serviceaccount:rotator:rotator" cannot get',
                },
                status=403,
            )
        prefix = "/api/v1/namespaces/rotator/configmaps"
        if request.method in ("POST", "PUT") and self.before_write is not None:
            hook, self.before_write = self.before_write, None
            hook(self)
        if request.method == "POST" and request.path == prefix:
            body = await request.json()
            name = body["metadata"]["name"]
            if name in self.configmaps:
                return web.json_response({"kind": "Status", "code": 409, "reason": "AlreadyExists"}, status=409)
            self.bump(name, body.get("data") or {})
            return web.json_response(self.configmaps[name], status=201)
        if not request.path.startswith(prefix + "/"):
            return web.json_response({"kind": "Status", "code": 404}, status=404)
        name = request.path.rsplit("/", 1)[-1]
        if request.method == "GET":
            if name not in self.configmaps:
                return web.json_response({"kind": "Status", "code": 404, "reason": "NotFound"}, status=404)
            return web.json_response(self.configmaps[name])
        if request.method == "PUT":
            body = await request.json()
            current = self.configmaps.get(name)
            if current is None:
                return web.json_response({"kind": "Status", "code": 404, "reason": "NotFound"}, status=404)
            if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                return web.json_response({"kind": "Status", "code": 409, "reason": "Conflict"}, status=409)
            self.bump(name, body.get("data") or {})
            return web.json_response(self.configmaps[name])
        return web.json_response({"kind": "Status", "code": 405}, status=405)

    def document(self, name: str, target: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.configmaps[name]["data"][f"{target}.json"])
        return result


@pytest.fixture
async def kubernetes(tmp_path: Path) -> AsyncIterator[tuple[FakeKubernetes, KubernetesStateStore]]:
    token_file = tmp_path / "token"
    token_file.write_text("service-account-token\n")
    fake = FakeKubernetes(token="service-account-token")
    async with loopback_server(fake.handle) as url:
        store = KubernetesStateStore(
            "rotator", "secret-rotator-state", api_url=url, token_file=token_file, ca_file=None
        )
        try:
            yield fake, store
        finally:
            await store.close()


async def test_kubernetes_store_round_trips_receipts_over_plain_http(
    kubernetes: tuple[FakeKubernetes, KubernetesStateStore],
) -> None:
    fake, store = kubernetes

    assert await store.get("dime-exchange", "sink-a") is None
    await store.put("dime-exchange", "sink-a", receipt("k1", "pending"))
    await store.put("dime-exchange", "sink-a", receipt("k2"))
    await store.put("other", "sink-b", receipt("k3"))

    assert await store.get("dime-exchange", "sink-a") == receipt("k2")
    assert await store.get("other", "sink-b") == receipt("k3")
    assert await store.get("dime-exchange", "sink-b") is None
    assert [(m, s) for m, _, s in fake.seen if m != "GET"] == [("POST", 201), ("PUT", 200), ("PUT", 200)]
    assert fake.configmaps["secret-rotator-state"]["metadata"]["resourceVersion"] == "3"


async def test_kubernetes_store_keeps_intents_under_a_key_of_their_own(
    kubernetes: tuple[FakeKubernetes, KubernetesStateStore],
) -> None:
    fake, store = kubernetes
    await store.put("dime-exchange", "sink-a", receipt("k1"))
    assert await store.intents("dime-exchange") == ()

    for n in range(MAX_INTENTS + 1):
        await store.add_intent("dime-exchange", intent(n))
    await store.add_intent("dime-exchange.intents", intent(0, "no_receipt"))  # a target named like a key

    kept = await store.intents("dime-exchange")
    assert (len(kept), kept[0], kept[-1]) == (MAX_INTENTS, intent(1), intent(MAX_INTENTS))
    assert await store.intents("dime-exchange.intents") == (intent(0, "no_receipt"),)
    assert await store.get("dime-exchange", "sink-a") == receipt("k1")
    assert sorted(fake.configmaps["secret-rotator-state"]["data"]) == [
        "dime-exchange.intents",
        "dime-exchange.intents.intents",
        "dime-exchange.json",
    ]


def _theirs(server: FakeKubernetes) -> None:
    """Another pod's pass writes its own receipt into the ConfigMap, creating it if need be."""
    current = server.configmaps.get("secret-rotator-state")
    data = dict(current["data"]) if current else {}
    document = json.loads(data.get("dime-exchange.json", "{}"))
    document["sink-other"] = {"key_id": "theirs", "status": "held", "since": "2025-01-01T00:00:00+00:00"}
    data["dime-exchange.json"] = json.dumps(document)
    server.bump("secret-rotator-state", data)


@pytest.mark.parametrize(
    ("existing", "conflicts"),
    [
        pytest.param(True, [("PUT", 409), ("PUT", 200)], id="an update that lost a race is read again and redone"),
        pytest.param(False, [("POST", 409), ("PUT", 200)], id="a create that lost a race becomes an update"),
    ],
)
async def test_kubernetes_store_redoes_a_write_that_lost_a_race_and_keeps_both_receipts(
    kubernetes: tuple[FakeKubernetes, KubernetesStateStore],
    existing: bool,
    conflicts: list[tuple[str, int]],
) -> None:
    fake, store = kubernetes
    if existing:
        await store.put("dime-exchange", "sink-a", receipt("k1"))
    fake.seen.clear()
    fake.before_write = _theirs

    await store.put("dime-exchange", "sink-b", receipt("k2"))

    assert [(m, s) for m, _, s in fake.seen if m != "GET"] == conflicts
    document = fake.document("secret-rotator-state", "dime-exchange")
    assert set(document) == ({"sink-a"} if existing else set()) | {"sink-b", "sink-other"}
    assert document["sink-other"]["key_id"] == "theirs"
    assert await store.get("dime-exchange", "sink-b") == receipt("k2")


async def test_kubernetes_store_refused_by_rbac_is_permission_denied(
    kubernetes: tuple[FakeKubernetes, KubernetesStateStore],
) -> None:
    fake, store = kubernetes
    fake.deny = True

    for operation in (store.get("dime-exchange", "sink-a"), store.put("dime-exchange", "sink-a", receipt("k1"))):
        with pytest.raises(RemoteError) as caught:
            await operation

        error = caught.value
        assert (error.service, error.reason, error.transient, error.status) == (
            "kubernetes",
            FailureReason.PERMISSION_DENIED,
            False,
            403,
        )
        assert "ConfigMap" in (error.hint or "")
        assert "service-account-token" not in str(error)
