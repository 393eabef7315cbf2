"""Our own state must not crash us: receipts that cannot be read are a clear failure of their target.

The stores (a directory, a ConfigMap behind a fake Kubernetes API on loopback) raise StateCorrupt for
the one target whose document is unreadable, never overwrite it, and can set it aside; a real pass
reports the target as failed with a recovery hint (not `target.crashed`) while the other targets
rotate; `plan` and `status` print the error without a traceback; and following the hint repairs the
target: moved aside, its push sink is re-synced from Key Vault.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web

from service.adapters.state_file import MAX_RECEIPTS_BYTES, FileStateStore
from service.adapters.state_kubernetes import KubernetesStateStore
from service.cli import main
from service.errors import FailureReason, RemoteError, StateCorrupt
from service.reconcile import Outcome
from tests.conftest import assert_no_secrets
from tests.integration.conftest import World
from tests.integration.test_adapters import FakeKubernetes, loopback_server, receipt

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
    assert str(path) in str(error)
    assert f"move {path} aside" in error.hint
    assert "re-pushes the current secret from Key Vault" in error.hint
    after = os.lstat(path)
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, before.st_mtime_ns, before.st_size)
    assert await store.get("other-target", "sink") == receipt("k9"), "other targets are untouched"


async def test_a_corrupt_file_set_aside_is_kept_and_the_target_starts_without_receipts(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    store.check()
    path = tmp_path / "receipts" / f"{TARGET}.json"
    write_raw(path, b'{"sink": {"key_id": "k1", "sta')

    aside = await store.set_aside(TARGET, NOW)

    assert aside == f"{path}.corrupt-20260304T050607Z"
    assert content(aside) == b'{"sink": {"key_id": "k1", "sta'
    assert await store.get(TARGET, "sink") is None
    await store.put(TARGET, "sink", receipt("k2"))
    assert await store.get(TARGET, "sink") == receipt("k2")
    assert await store.set_aside("never-written", NOW) is None


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
        store = KubernetesStateStore("rotator", "secret-rotator-state", api_url=url, token_file=token_file,
                                     ca_file=None)
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
    assert "kubectl edit" in read.value.hint
    assert len([m for m, _, _ in fake.seen if m != "GET"]) == writes, "nothing was written"
    assert await store.get("other-target", "sink") == receipt("k9")

    aside = await store.set_aside(TARGET, NOW)

    assert aside == f"key {TARGET}.json.corrupt-20260304T050607Z of ConfigMap rotator/secret-rotator-state"
    assert await store.get(TARGET, "sink") is None
    await store.put(TARGET, "sink", receipt("k2"))
    assert await store.get(TARGET, "sink") == receipt("k2")
    kept = fake.configmaps["secret-rotator-state"]["data"][f"{TARGET}.json.corrupt-20260304T050607Z"]
    assert kept == '{"sink": {"key_id": "k1", "sta'


@pytest.mark.parametrize(
    ("answer", "status", "expected"),
    [
        pytest.param(lambda: web.Response(body=b'{"data": {"x": "' + b"a" * (5 << 20) + b'"}}'), 200,
                     "larger than", id="an answer larger than any ConfigMap is refused, not read whole"),
        pytest.param(lambda: web.Response(text="<html>proxy</html>"), 200, "not JSON",
                     id="an answer that is not JSON"),
        pytest.param(lambda: web.json_response({"data": ["a list"]}), 200, "not a ConfigMap",
                     id="an answer that is not a ConfigMap"),
        pytest.param(lambda: web.json_response({"kind": "Status", "reason": "InternalError",
                                                "message": "echo " + "x" * 8000}, status=500), 500,
                     "InternalError echo xxx", id="an error's message is capped"),
        pytest.param(lambda: web.Response(text="Bearer token-echoed-by-a-proxy " * 500, status=502), 502,
                     "answered 502", id="an error answer that is not the API's Status is not quoted"),
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


def receipts_file(world: World) -> Path:
    return world.tmp / "state" / "receipts" / f"{TARGET}.json"


async def test_a_pass_reports_the_corrupt_target_with_a_hint_and_still_rotates_the_others(world: World) -> None:
    world.target(TARGET)
    world.target("second", sinks=("keyvault", "dimescheduler"), secret_name="second-secret")
    await world.run()
    path = receipts_file(world)
    path.write_bytes(path.read_bytes()[:40])  # a disk that filled up mid-write, or a careless edit

    results = {r.target: r for r in await world.run(force=True)}

    assert results[TARGET].outcome is Outcome.FAILED
    assert results["second"].outcome is Outcome.CHANGED
    assert world.logs.named("target.crashed") == []
    [failed] = world.logs.named("rotation.failed", target=TARGET)
    assert failed["reason"] == "sink_failed"
    assert str(path) in failed["error"]
    assert f"move {path} aside" in failed["hint"]


async def test_following_the_hint_repairs_the_target_from_key_vault(world: World) -> None:
    await world.run()
    [password] = world.passwords()
    path = receipts_file(world)
    path.write_bytes(path.read_bytes()[:40])
    await world.run()
    world.emu.reset_requests()

    shutil.move(path, path.with_name(path.name + ".corrupt"))  # what the hint says to do
    [result] = await world.run()

    assert result.outcome is Outcome.CHANGED
    assert [p.key_id for p in world.passwords()] == [password.key_id], "no rotation was needed"
    pushes = [r for r in world.emu.requests if r.method == "POST" and r.path.startswith("/dimescheduler/")]
    assert len(pushes) == 1, "the push sink was re-synced from Key Vault"
    assert world.emu.receiver.current_key_authenticates()
    assert json.loads(path.read_text())[f"dimescheduler:{world.emu.receiver_url}"]["key_id"] == password.key_id


@pytest.mark.parametrize("command", ["plan", "status"])
async def test_plan_and_status_say_what_is_wrong_without_a_traceback(
    world: World, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    await world.run()
    path = receipts_file(world)
    path.write_bytes(path.read_bytes()[:40])
    config = str(world.config_file())

    code = await _in_thread(lambda: main([command, "--config", config]))

    out, err = capsys.readouterr()
    assert_no_secrets(out + err)
    assert code == 1
    assert "Traceback" not in out + err
    assert f"{path}" in out
    assert "hint: move" in out


async def _in_thread(call: Callable[[], int]) -> int:
    # main() runs its own event loop; the emulator serves on this test's loop.
    import asyncio

    return await asyncio.to_thread(call)
