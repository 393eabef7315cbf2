"""Our own state must not cut a consumer off: receipts and intents that cannot be read are set aside, and the
target rotates safely.

The stores (a directory, a ConfigMap behind a fake Kubernetes API on loopback) raise StateCorrupt for the
one target whose document is unreadable, never overwrite it, and set aside only what they cannot read. A
real pass logs one `state.corrupt` warning for the target (where, and a hint), moves the document aside
before it writes anything, and carries on as if the receipts were lost: a Key Vault sink re-sends its
secret; without one the pass rotates, and nothing is retired until the receiver is known to hold the new
secret for the grace period. A ReceiverWatch checks the whole time that the receiver's secret signs in.
`plan` and `status` say what they found and change nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web

from service.adapters.state_file import MAX_RECEIPTS_BYTES, FileStateStore
from service.adapters.state_kubernetes import KubernetesStateStore
from service.cli import main
from service.errors import FailureReason, RemoteError, StateCorrupt
from service.reconcile import Outcome
from tests.conftest import assert_no_secrets
from tests.integration.conftest import World, days
from tests.integration.test_adapters import FakeKubernetes, intent, loopback_server, receipt
from tests.world import ReceiverWatch

TARGET = "dime-exchange"
NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
GOOD = {"sink": {"key_id": "k1", "status": "held", "since": "2025-01-02T03:04:05+00:00", "history": ["k1"]}}


def write_raw(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def content(path: str | None) -> bytes:
    assert path is not None
    return Path(path).read_bytes()


def _entry(**change: object) -> bytes:
    return json.dumps({"sink": {**GOOD["sink"], **change}}).encode()


CORRUPT: dict[str, Callable[[Path], None]] = {
    "a file cut short by a full disk": lambda p: write_raw(p, json.dumps(GOOD).encode()[:30]),
    "an empty file": lambda p: write_raw(p, b""),
    "bytes that are not UTF-8": lambda p: write_raw(p, b"\xff\xfe{}"),
    "a JSON list instead of an object": lambda p: write_raw(p, b"[]"),
    "a receipt without a key id": lambda p: write_raw(p, _entry(key_id=None)),
    "a receipt whose status is unknown": lambda p: write_raw(p, _entry(status="maybe")),
    "a receipt whose time has no UTC offset": lambda p: write_raw(p, _entry(since="2025-01-02T03:04:05")),
    "a receipt that is a string": lambda p: write_raw(p, b'{"sink": "k1"}'),
    "a file larger than any receipts": lambda p: write_raw(p, b" " * (MAX_RECEIPTS_BYTES + 1) + b"{}"),
    "a directory in the file's place": lambda p: p.mkdir(parents=True),
    "a symbolic link to /dev/zero": lambda p: (p.parent.mkdir(parents=True, exist_ok=True), p.symlink_to("/dev/zero")),
    "a FIFO in the file's place": lambda p: (p.parent.mkdir(parents=True, exist_ok=True), os.mkfifo(p)),
}


# --- the file store ------------------------------------------------------------------------------


@pytest.mark.parametrize("corrupt", CORRUPT.values(), ids=CORRUPT.keys())
async def test_an_unreadable_receipts_file_is_state_corrupt_for_its_target_and_is_never_overwritten(
    tmp_path: Path, corrupt: Callable[[Path], None]
) -> None:
    store = FileStateStore(tmp_path)
    store.check()
    path = tmp_path / "receipts" / f"{TARGET}.json"
    corrupt(path)
    before = os.lstat(path)
    await store.put("other-target", "sink", receipt("k9"))

    with pytest.raises(StateCorrupt) as read:
        await store.get(TARGET, "sink")
    with pytest.raises(StateCorrupt):
        await store.put(TARGET, "sink", receipt("k2"))

    error = read.value
    assert (error.reason, error.target, error.where) == (FailureReason.SINK_FAILED, TARGET, str(path))
    assert str(error).startswith(f"the push receipts of {TARGET} in {path} cannot be read: ")
    assert f"the next `secret-rotator run` moves {path} aside" in error.hint
    assert "a Key Vault sink of the target re-sends its secret" in error.hint
    after = os.lstat(path)
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, before.st_mtime_ns, before.st_size)
    assert await store.get("other-target", "sink") == receipt("k9"), "other targets are untouched"
    await store.add_intent(TARGET, intent(1))
    assert await store.intents(TARGET) == (intent(1),), "the target's intents are a document of their own"


INTENTS_CORRUPT: dict[str, Callable[[Path], None]] = {
    "a file cut short": lambda p: write_raw(p, b'{"intents": [{"name": "secret-rotator 2026-01'),
    "bytes that are not UTF-8": lambda p: write_raw(p, b"\xff\xfe{}"),
    "an object without a list of intents": lambda p: write_raw(p, b'{"names": []}'),
    "an intent without a name": lambda p: write_raw(
        p, b'{"intents": [{"at": "2026-01-02T00:00:00+00:00", "reason": "forced"}]}'
    ),
    "an intent whose time has no UTC offset": lambda p: write_raw(
        p, b'{"intents": [{"name": "n", "at": "2026-01-02T00:00:00", "reason": "forced"}]}'
    ),
    "a file larger than any intents": lambda p: write_raw(p, b" " * (MAX_RECEIPTS_BYTES + 1) + b"{}"),
    "a directory in the file's place": lambda p: p.mkdir(parents=True),
}


@pytest.mark.parametrize("corrupt", INTENTS_CORRUPT.values(), ids=INTENTS_CORRUPT.keys())
async def test_an_unreadable_intents_file_is_state_corrupt_for_its_target_and_is_never_overwritten(
    tmp_path: Path, corrupt: Callable[[Path], None]
) -> None:
    store = FileStateStore(tmp_path)
    store.check()
    path = tmp_path / "intents" / f"{TARGET}.json"
    corrupt(path)
    before = os.lstat(path)
    await store.put(TARGET, "sink", receipt("k1"))

    with pytest.raises(StateCorrupt) as read:
        await store.intents(TARGET)
    with pytest.raises(StateCorrupt):
        await store.add_intent(TARGET, intent(1))

    assert read.value.where == str(path)
    assert str(read.value).startswith(f"the intents of {TARGET} in {path} cannot be read: ")
    assert f"moves {path} aside" in read.value.hint
    after = os.lstat(path)
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, before.st_mtime_ns, before.st_size)
    assert await store.get(TARGET, "sink") == receipt("k1"), "the receipts are a document of their own"


async def test_a_corrupt_file_set_aside_is_kept_and_the_target_starts_without_receipts(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    store.check()
    path = tmp_path / "receipts" / f"{TARGET}.json"
    write_raw(path, b'{"sink": {"key_id": "k1", "sta')
    await store.add_intent(TARGET, intent(1))

    aside = await store.set_aside(TARGET, NOW)

    assert aside == f"{path}.corrupt-20260304T050607Z"
    assert content(aside) == b'{"sink": {"key_id": "k1", "sta'
    assert await store.get(TARGET, "sink") is None
    assert await store.intents(TARGET) == (intent(1),), "what could be read stays"
    await store.put(TARGET, "sink", receipt("k2"))
    assert await store.get(TARGET, "sink") == receipt("k2")
    assert await store.set_aside("never-written", NOW) is None
    assert await store.set_aside(TARGET, NOW) is None, "nothing unreadable is left to move"
    assert await store.get(TARGET, "sink") == receipt("k2")


async def test_a_corrupt_intents_file_set_aside_leaves_the_receipts(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    store.check()
    await store.put(TARGET, "sink", receipt("k1"))
    path = tmp_path / "intents" / f"{TARGET}.json"
    write_raw(path, b"[]")

    aside = await store.set_aside(TARGET, NOW)

    assert aside == f"{path}.corrupt-20260304T050607Z"
    assert await store.intents(TARGET) == ()
    assert await store.get(TARGET, "sink") == receipt("k1")


async def test_receipts_written_before_keep_reading_as_they_were(tmp_path: Path) -> None:
    """The stricter reading accepts what the store has always written, and receipts without a status."""
    store = FileStateStore(tmp_path)
    store.check()
    await store.put(TARGET, "a", receipt("k1", "pending"))
    legacy = json.loads((tmp_path / "receipts" / f"{TARGET}.json").read_text())
    legacy["b"] = {"key_id": "k2", "since": "2025-01-02T03:04:05+00:00"}  # no status, no history
    write_raw(tmp_path / "receipts" / f"{TARGET}.json", json.dumps(legacy).encode())

    assert await store.get(TARGET, "a") == receipt("k1", "pending")
    held = await store.get(TARGET, "b")
    assert held is not None
    assert (held.key_id, held.status, held.history) == ("k2", "held", ())


# --- the ConfigMap store -------------------------------------------------------------------------


@pytest.fixture
async def configmap(tmp_path: Path) -> AsyncIterator[tuple[FakeKubernetes, KubernetesStateStore]]:
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


async def test_an_unreadable_configmap_key_is_state_corrupt_for_its_target_only(
    configmap: tuple[FakeKubernetes, KubernetesStateStore],
) -> None:
    fake, store = configmap
    await store.put("other-target", "sink", receipt("k9"))
    data = dict(fake.configmaps["secret-rotator-state"]["data"])
    data[f"{TARGET}.json"] = '{"sink": {"key_id": "k1", "sta'
    fake.bump("secret-rotator-state", data)
    writes = len([m for m, _, _ in fake.seen if m != "GET"])

    with pytest.raises(StateCorrupt) as read:
        await store.get(TARGET, "sink")
    with pytest.raises(StateCorrupt):
        await store.put(TARGET, "sink", receipt("k2"))

    assert read.value.where == f"key {TARGET}.json of ConfigMap rotator/secret-rotator-state"
    assert f"moves key {TARGET}.json of ConfigMap rotator/secret-rotator-state aside" in read.value.hint
    assert len([m for m, _, _ in fake.seen if m != "GET"]) == writes, "nothing was written"
    assert await store.get("other-target", "sink") == receipt("k9")
    await store.add_intent(TARGET, intent(1))

    aside = await store.set_aside(TARGET, NOW)

    assert aside == f"key {TARGET}.json.corrupt-20260304T050607Z of ConfigMap rotator/secret-rotator-state"
    assert await store.get(TARGET, "sink") is None
    assert await store.intents(TARGET) == (intent(1),)
    await store.put(TARGET, "sink", receipt("k2"))
    assert await store.get(TARGET, "sink") == receipt("k2")
    kept = fake.configmaps["secret-rotator-state"]["data"][f"{TARGET}.json.corrupt-20260304T050607Z"]
    assert kept == '{"sink": {"key_id": "k1", "sta'


async def test_an_unreadable_intents_key_is_state_corrupt_and_set_aside_alone(
    configmap: tuple[FakeKubernetes, KubernetesStateStore],
) -> None:
    fake, store = configmap
    await store.put(TARGET, "sink", receipt("k1"))
    data = dict(fake.configmaps["secret-rotator-state"]["data"])
    data[f"{TARGET}.intents"] = '{"intents": "none"}'
    fake.bump("secret-rotator-state", data)

    with pytest.raises(StateCorrupt) as read:
        await store.intents(TARGET)
    with pytest.raises(StateCorrupt):
        await store.add_intent(TARGET, intent(1))
    aside = await store.set_aside(TARGET, NOW)

    assert read.value.where == f"key {TARGET}.intents of ConfigMap rotator/secret-rotator-state"
    assert aside == f"key {TARGET}.intents.corrupt-20260304T050607Z of ConfigMap rotator/secret-rotator-state"
    assert await store.intents(TARGET) == ()
    assert await store.get(TARGET, "sink") == receipt("k1")


@pytest.mark.parametrize(
    ("answer", "status", "expected"),
    [
        pytest.param(
            lambda: web.Response(body=b'{"data": {"x": "' + b"a" * (5 << 20) + b'"}}'),
            200,
            "larger than",
            id="an answer larger than any ConfigMap is refused, not read whole",
        ),
        pytest.param(lambda: web.Response(text="<html>proxy</html>"), 200, "not JSON", id="an answer that is not JSON"),
        pytest.param(
            lambda: web.json_response({"data": ["a list"]}),
            200,
            "not a ConfigMap",
            id="an answer that is not a ConfigMap",
        ),
        pytest.param(
            lambda: web.json_response(
                {"kind": "Status", "reason": "InternalError", "message": "echo " + "x" * 8000}, status=500
            ),
            500,
            "InternalError echo xxx",
            id="an error's message is capped",
        ),
        pytest.param(
            lambda: web.Response(text="Bearer token-echoed-by-a-proxy " * 500, status=502),
            502,
            "answered 502",
            id="an error answer that is not the API's Status is not quoted",
        ),
    ],
)
async def test_a_strange_answer_from_the_api_is_a_remote_error_with_a_bounded_message(
    tmp_path: Path, answer: Callable[[], web.Response], status: int, expected: str
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("service-account-token\n")

    async def handle(_: web.Request) -> web.Response:
        return answer()

    async with loopback_server(handle) as url:
        store = KubernetesStateStore("rotator", "cm", api_url=url, token_file=token_file, ca_file=None)
        try:
            with pytest.raises(RemoteError) as caught:
                await store.get(TARGET, "sink")
        finally:
            await store.close()

    message = str(caught.value)
    assert caught.value.status == status
    assert expected in message
    assert len(message) < 400
    assert "token-echoed" not in message


# --- a real pass, and the commands ---------------------------------------------------------------


def receipts_file(world: World, folder: str = "state") -> Path:
    return world.tmp / folder / "receipts" / f"{TARGET}.json"


def cut_short(path: Path) -> bytes:
    """A disk that filled up mid-write, or a careless edit: what is left of the file."""
    path.write_bytes(path.read_bytes()[:40])
    return path.read_bytes()


def aside_files(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.corrupt-*"))


async def test_with_key_vault_the_pass_sets_the_receipts_aside_and_resends_the_secret_to_the_push_sinks(
    world: World,
) -> None:
    """Two push sinks of one target meet the same unreadable document: one warning, one set-aside, each re-sent
    from Key Vault without a rotation, while another target of the pass is not bothered at all."""
    target = world.target(TARGET)
    target["sinks"].append(
        {
            "type": "webhook",
            "url": world.emu.receiver_url,
            "secret_headers": {"X-API-KEY": {"file": str(world.tmp / "dimescheduler-api-key")}},
        }
    )
    second = world.emu.add_app(world.tenant, "Second", owners=[world.rotator_object_id])
    world.target("second", sinks=("keyvault", "dimescheduler"), secret_name="second-secret", app_id=second.app_id)
    await world.run()
    [password] = world.passwords()
    path = receipts_file(world)
    left = cut_short(path)
    watch = ReceiverWatch(world)

    async with watch.watching():
        results = {r.target: r for r in await world.run()}

    assert results[TARGET].outcome is Outcome.CHANGED
    assert results["second"].outcome is Outcome.HEALTHY
    assert not watch.dead, f"the receiver held a dead secret: {watch.dead[:3]}"
    assert [p.key_id for p in world.passwords(world.app_id)] == [password.key_id], "no rotation was needed"
    assert not world.logs.named("rotation.failed")
    assert not world.logs.named("target.crashed")
    [warning] = world.logs.named("state.corrupt")
    assert (warning["target"], warning["level"], warning["where"]) == (TARGET, "warning", str(path))
    assert "the next `secret-rotator run` moves" in warning["hint"]
    [aside] = aside_files(path)
    assert aside.read_bytes() == left, "kept for a look, as it was"
    assert world.logs.named("state.set_aside", target=TARGET)[0]["aside"] == str(aside)
    resent = world.logs.named("sink.updated", target=TARGET, reason="sink_lags")
    assert sorted(e["sink"].split(":")[0] for e in resent) == ["dimescheduler", "webhook"]
    receipts = json.loads(path.read_text())
    assert {r["key_id"] for r in receipts.values()} == {password.key_id}
    assert len(receipts) == 2

    again = await world.run()  # the next pass finds everything in order
    assert [r.outcome for r in again] == [Outcome.HEALTHY, Outcome.HEALTHY]
    assert len(world.logs.named("state.corrupt")) == 1


async def test_a_push_only_target_rotates_safely_and_keeps_what_the_receiver_held_until_the_grace_period(
    world: World,
) -> None:
    """Without Key Vault the set-aside receipt's key ids are lost: the receiver may hold any secret, so the pass
    rotates, and the secret it held goes only a grace period after the receiver holds the new one."""
    world.target(TARGET, sinks=("dimescheduler",))
    await world.run()
    [held] = world.passwords()
    cut_short(receipts_file(world))
    world.clock.advance(timedelta(hours=1))  # older than in_flight_timeout: no orphan rule may touch it
    watch = ReceiverWatch(world)

    async with watch.watching():
        [rotated] = await world.run()
        new = world.emu.receiver.deliveries[-1].idempotency_key
        assert {p.key_id for p in world.passwords()} == {held.key_id, new}
        world.clock.advance(days(1) - timedelta(minutes=1))
        [waiting] = await world.run()
        assert held.key_id in {p.key_id for p in world.passwords()}
        world.clock.advance(timedelta(minutes=2))
        [settled] = await world.run()

    assert (rotated.outcome, waiting.outcome, settled.outcome) == (Outcome.CHANGED, Outcome.HEALTHY, Outcome.CHANGED)
    assert not watch.dead, f"the receiver held a dead secret: {watch.dead[:3]}"
    assert watch.samples > 10
    assert world.logs.named("credential.created", key_id=new)[0]["reason"] == "no_receipt"
    assert [p.key_id for p in world.passwords()] == [new]
    assert world.logs.named("credential.retired", key_id=held.key_id, reason="superseded")
    assert not world.logs.named("rotation.failed")
    assert len(aside_files(receipts_file(world))) == 1


async def test_unreadable_intents_are_set_aside_and_change_nothing_while_every_secret_is_recorded(
    world: World,
) -> None:
    world.target(TARGET, sinks=("dimescheduler",))
    await world.run()
    intents = world.tmp / "state" / "intents" / f"{TARGET}.json"
    intents.write_bytes(b"{")

    [result] = await world.run()

    assert result.outcome is Outcome.HEALTHY
    assert len(world.passwords()) == 1
    [warning] = world.logs.named("state.corrupt")
    assert warning["where"] == str(intents)
    assert [a.read_bytes() for a in aside_files(intents)] == [b"{"]
    assert not intents.exists()


@pytest.mark.parametrize("command", ["plan", "status"])
async def test_plan_and_status_say_what_is_wrong_and_change_nothing(
    world: World, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    await world.run()
    path = receipts_file(world)
    left = cut_short(path)
    config = str(world.config_file())

    code = await _in_thread(lambda: main([command, "--config", config]))

    out, err = capsys.readouterr()
    assert_no_secrets(out + err)
    assert code == 0, "the target could be planned: as if its receipts were lost"
    assert "Traceback" not in out + err
    assert f"the push receipts of {TARGET} in {path} cannot be read" in out
    assert "planned as if it were lost; the next `run` moves it aside (kept for a look)" in out
    assert '"event": "state.corrupt"' in err or "state.corrupt" in err
    assert path.read_bytes() == left
    assert not aside_files(path)


async def _in_thread(call: Callable[[], int]) -> int:
    # main() runs its own event loop; the emulator serves on this test's loop.
    import asyncio

    return await asyncio.to_thread(call)
