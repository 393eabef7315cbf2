"""One contract, two state stores: what service.ports.StateStore promises, checked against the file store
(a directory) and the Kubernetes store (a ConfigMap behind a fake API server on loopback).

Receipts and intents round-trip per target; a target's unreadable document is StateCorrupt for that target
alone, is never overwritten, and set_aside moves it out of the way; the lock makes a second pass over a
target wait, as far as each store says it reaches (the file store's flock: every process on the directory;
the ConfigMap store's: its own store object, no further).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from service.adapters.state_file import FileStateStore
from service.adapters.state_kubernetes import KubernetesStateStore
from service.errors import StateCorrupt
from service.model import DEFAULT_MARKER, Intent, credential_name
from service.ports import MAX_INTENTS, Receipt, StateStore
from tests.integration.kit import loopback_server
from tests.integration.test_adapters import FakeKubernetes

TARGET, OTHER = "dime-exchange", "other-target"
CONFIGMAP = "secret-rotator-state"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
NOT_JSON = '{"sink-a": {"key_id": "k1", "sta'  # cut short by a full disk


def receipt(key_id: str, status: str = "held") -> Receipt:
    return Receipt(key_id, status, NOW, (key_id,))  # type: ignore[arg-type]


def intent(n: int, reason: str = "renewal_due") -> Intent:
    at = NOW + timedelta(minutes=n)
    return Intent(credential_name(DEFAULT_MARKER, at), at, reason)


@dataclass
class Backend:
    """One state store under test, and what the suite needs to reach behind it."""

    name: str
    store: StateStore
    another: Callable[[], StateStore]  # a second store object on the same state (another pass, another host)
    write_raw: Callable[[str, str], None]  # (target, "receipts" | "intents") -> put text where the store keeps it
    read_raw: Callable[[str, str], str | None]
    lock_reaches_other_store_objects: bool


def _file_backend(path: Path) -> Backend:
    store = FileStateStore(path)
    store.check()

    def where(target: str, kind: str) -> Path:
        return path / kind / f"{target}.json"

    def write_raw(target: str, kind: str, text: str) -> None:
        where(target, kind).write_text(text)

    def read_raw(target: str, kind: str) -> str | None:
        file = where(target, kind)
        return file.read_text() if file.exists() else None

    return Backend(
        "file",
        store,
        lambda: FileStateStore(path),
        lambda t, k: write_raw(t, k, NOT_JSON),
        read_raw,
        lock_reaches_other_store_objects=True,
    )


def _configmap_backend(fake: FakeKubernetes, url: str, token_file: Path, stores: list[KubernetesStateStore]) -> Backend:
    def new() -> KubernetesStateStore:
        store = KubernetesStateStore("rotator", CONFIGMAP, api_url=url, token_file=token_file, ca_file=None)
        stores.append(store)
        return store

    def key(target: str, kind: str) -> str:
        return f"{target}.json" if kind == "receipts" else f"{target}.intents"

    def write_raw(target: str, kind: str) -> None:
        current = fake.configmaps.get(CONFIGMAP)
        fake.bump(CONFIGMAP, {**(current["data"] if current else {}), key(target, kind): NOT_JSON})

    def read_raw(target: str, kind: str) -> str | None:
        current = fake.configmaps.get(CONFIGMAP)
        return current["data"].get(key(target, kind)) if current else None

    return Backend("configmap", new(), new, write_raw, read_raw, lock_reaches_other_store_objects=False)


@pytest.fixture(params=["file", "configmap"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "file":
        yield _file_backend(tmp_path / "state")
        return
    token_file = tmp_path / "token"
    token_file.write_text("service-account-token\n")
    fake = FakeKubernetes(token="service-account-token")
    stores: list[KubernetesStateStore] = []
    async with loopback_server(fake.handle) as url:
        try:
            yield _configmap_backend(fake, url, token_file, stores)
        finally:
            for store in stores:
                await store.close()


# --- receipts and intents --------------------------------------------------------------------------------


async def test_receipts_round_trip_per_target_and_sink_and_another_store_object_reads_them(backend: Backend) -> None:
    store = backend.store
    assert await store.get(TARGET, "sink-a") is None, "a fresh store has no receipt"

    await store.put(TARGET, "sink-a", receipt("k1", "pending"))
    await store.put(TARGET, "sink-b", receipt("k2"))
    await store.put(TARGET, "sink-a", receipt("k3"))
    await store.put(OTHER, "sink-a", receipt("k4"))

    assert await store.get(TARGET, "sink-a") == receipt("k3"), "the last put wins"
    assert await store.get(TARGET, "sink-b") == receipt("k2"), "a put leaves the target's other sinks alone"
    assert await store.get(OTHER, "sink-a") == receipt("k4")
    assert await backend.another().get(TARGET, "sink-a") == receipt("k3"), "durable: another store object reads it"


async def test_intents_are_kept_in_order_apart_from_receipts_and_the_oldest_go(backend: Backend) -> None:
    store = backend.store
    await store.put(TARGET, "sink-a", receipt("k1"))
    assert await store.intents(TARGET) == ()

    for n in range(MAX_INTENTS + 2):
        await store.add_intent(TARGET, intent(n))
    twin = replace(intent(MAX_INTENTS + 1), at=intent(MAX_INTENTS + 1).at + timedelta(microseconds=1))
    await store.add_intent(TARGET, twin)  # another rotation within the same second: one more of that name
    await store.add_intent(TARGET, replace(intent(MAX_INTENTS + 1), key_id="k-answered"))  # in place
    await store.add_intent(OTHER, intent(0, "no_receipt"))

    kept = await backend.another().intents(TARGET)
    assert len(kept) == MAX_INTENTS
    assert kept[0] == intent(3), "the oldest went"
    assert kept[-2:] == (replace(intent(MAX_INTENTS + 1), key_id="k-answered"), twin)
    assert await store.intents(OTHER) == (intent(0, "no_receipt"),)
    assert await store.get(TARGET, "sink-a") == receipt("k1"), "intents leave the receipts alone"


# --- documents that cannot be read -------------------------------------------------------------------------


async def test_unreadable_receipts_are_state_corrupt_for_their_target_alone_and_never_overwritten(
    backend: Backend,
) -> None:
    store = backend.store
    await store.put(OTHER, "sink-a", receipt("k9"))
    backend.write_raw(TARGET, "receipts")

    with pytest.raises(StateCorrupt) as read:
        await store.get(TARGET, "sink-a")
    with pytest.raises(StateCorrupt):
        await store.put(TARGET, "sink-a", receipt("k2"))

    assert read.value.target == TARGET
    assert str(read.value).startswith(f"the push receipts of {TARGET} in ")
    assert "aside" in read.value.hint
    assert backend.read_raw(TARGET, "receipts") == NOT_JSON, "never overwritten"
    assert await store.get(OTHER, "sink-a") == receipt("k9"), "other targets are untouched"
    await store.add_intent(TARGET, intent(1))
    assert await store.intents(TARGET) == (intent(1),), "the target's intents are a document of their own"


async def test_unreadable_intents_are_state_corrupt_and_leave_the_receipts_alone(backend: Backend) -> None:
    store = backend.store
    await store.put(TARGET, "sink-a", receipt("k1"))
    backend.write_raw(TARGET, "intents")

    with pytest.raises(StateCorrupt) as read:
        await store.intents(TARGET)
    with pytest.raises(StateCorrupt):
        await store.add_intent(TARGET, intent(1))

    assert str(read.value).startswith(f"the intents of {TARGET} in ")
    assert backend.read_raw(TARGET, "intents") == NOT_JSON, "never overwritten"
    assert await store.get(TARGET, "sink-a") == receipt("k1")


async def test_set_aside_moves_only_what_cannot_be_read_and_the_target_starts_afresh(backend: Backend) -> None:
    store = backend.store
    await store.put(OTHER, "sink-a", receipt("k9"))
    await store.add_intent(TARGET, intent(1))
    assert await store.set_aside(TARGET, NOW) is None, "nothing to move"
    backend.write_raw(TARGET, "receipts")

    aside = await store.set_aside(TARGET, NOW)

    assert aside is not None
    assert f"{TARGET}.json.corrupt-20260102T030405Z" in aside, "kept for a person, named by the time"
    assert await store.get(TARGET, "sink-a") is None, "no receipts where the unreadable ones were"
    await store.put(TARGET, "sink-a", receipt("k2"))
    assert await store.get(TARGET, "sink-a") == receipt("k2")
    assert await store.intents(TARGET) == (intent(1),), "a readable document stays"
    assert await store.get(OTHER, "sink-a") == receipt("k9")


# --- the lock ------------------------------------------------------------------------------------------------


async def _hold(store: StateStore, target: str, events: list[str], name: str, release: asyncio.Event) -> None:
    async with store.lock(target):
        events.append(f"{name} in")
        await release.wait()
        events.append(f"{name} out")


async def _second_waits(first_store: StateStore, second_store: StateStore) -> list[str]:
    """The events when a second pass over the target asks for the lock while a first one holds it."""
    events: list[str] = []
    release, go = asyncio.Event(), asyncio.Event()
    go.set()
    first = asyncio.create_task(_hold(first_store, TARGET, events, "first", release))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(_hold(second_store, TARGET, events, "second", go))
    await asyncio.sleep(0.3)
    release.set()
    await asyncio.wait_for(asyncio.gather(first, second), timeout=5)
    return events


async def test_a_second_pass_over_a_target_through_the_same_store_waits_for_the_first(backend: Backend) -> None:
    events = await _second_waits(backend.store, backend.store)
    assert events == ["first in", "first out", "second in", "second out"]


async def test_the_lock_reaches_other_store_objects_exactly_as_far_as_the_store_says(backend: Backend) -> None:
    events = await _second_waits(backend.store, backend.another())
    if backend.lock_reaches_other_store_objects:
        assert events == ["first in", "first out", "second in", "second out"]
    else:
        # KubernetesStateStore: its own store object only (ports.StateStore.lock, state_kubernetes.py).
        assert events == ["first in", "second in", "second out", "first out"]


async def test_locks_on_different_targets_never_wait_for_each_other(backend: Backend) -> None:
    events: list[str] = []
    release = asyncio.Event()
    holders = [asyncio.create_task(_hold(backend.store, name, events, name, release)) for name in (TARGET, OTHER)]
    await asyncio.sleep(0.3)
    assert sorted(events) == sorted([f"{TARGET} in", f"{OTHER} in"])
    release.set()
    await asyncio.wait_for(asyncio.gather(*holders), timeout=5)


async def test_waiting_for_the_lock_can_be_cancelled_and_leaves_it_free(backend: Backend) -> None:
    events: list[str] = []
    release, go = asyncio.Event(), asyncio.Event()
    go.set()
    holder = asyncio.create_task(_hold(backend.store, TARGET, events, "first", release))
    await asyncio.sleep(0.05)
    waiter = asyncio.create_task(_hold(backend.store, TARGET, events, "cancelled", go))
    await asyncio.sleep(0.2)
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(waiter, timeout=5)
    release.set()
    await asyncio.wait_for(holder, timeout=5)
    await asyncio.wait_for(_hold(backend.store, TARGET, events, "next", go), timeout=5)

    assert waiter.cancelled()
    assert events == ["first in", "first out", "next in", "next out"], "the cancelled wait never got in"


_HOLD_FLOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


async def test_the_file_stores_lock_makes_a_pass_wait_for_another_process(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    store.check()
    holder = await asyncio.create_subprocess_exec(  # another `run` on the same state directory
        sys.executable,
        "-c",
        _HOLD_FLOCK,
        str(tmp_path / "locks" / f"{TARGET}.lock"),
        "1.0",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert (await asyncio.wait_for(holder.stdout.readline(), timeout=10)).strip() == b"held"
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with asyncio.timeout(10), store.lock(TARGET):
            waited = loop.time() - started
        assert waited > 0.5, "the lock was taken only once the other process let go"
        assert await asyncio.wait_for(holder.wait(), timeout=5) == 0
    finally:
        if holder.returncode is None:
            holder.kill()
        await holder.wait()


async def test_closing_a_store_loses_nothing_it_wrote(backend: Backend) -> None:
    await backend.store.put(TARGET, "sink-a", receipt("k1"))
    await backend.store.add_intent(TARGET, intent(1))
    await backend.store.close()

    later = backend.another()
    assert await later.get(TARGET, "sink-a") == receipt("k1")
    assert await later.intents(TARGET) == (intent(1),)
