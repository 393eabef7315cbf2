"""The ConfigMap state store under many writers: a pass's concurrent targets in one process, and other
processes (`run --workers`, a pod of another shard sharing the ConfigMap) writing the same ConfigMap.

Every write carries the resourceVersion it read; the API server answers 409 to a stale one. Writes of
one process are committed together (one read and one PUT for all the changes waiting), and a write that
lost a race waits a little, reads again and redoes its changes: nothing is lost and none gives up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from service.adapters.state_kubernetes import KubernetesStateStore
from tests.integration.test_adapters import FakeKubernetes, intent, loopback_server, receipt

NAME = "secret-rotator-state"


@contextlib.asynccontextmanager
async def stores(
    tmp_path: Path, count: int, *, slow_reads: list[float] | None = None
) -> AsyncIterator[tuple[FakeKubernetes, list[KubernetesStateStore]]]:
    """``count`` stores of one ConfigMap, as ``count`` processes each have their own; the first GETs are
    answered after the seconds in ``slow_reads`` (with the ConfigMap as it was when they arrived)."""
    token = tmp_path / "token"
    token.write_text("service-account-token\n")
    fake = FakeKubernetes(token="service-account-token")
    fake.bump(NAME, {})  # shipped by deploy/components/kubernetes-state
    delays = list(reversed(slow_reads or []))

    async def handle(request: web.Request) -> web.Response:
        response = await fake.handle(request)  # the ConfigMap as it is when the request arrives
        if request.method == "GET" and delays:
            await asyncio.sleep(delays.pop())
        return response

    async with loopback_server(handle) as url:
        opened = [
            KubernetesStateStore("rotator", NAME, api_url=url, token_file=token, ca_file=None) for _ in range(count)
        ]
        try:
            yield fake, opened
        finally:
            for store in opened:
                await store.close()


async def test_concurrent_writers_in_and_across_processes_lose_nothing(tmp_path: Path) -> None:
    async with stores(tmp_path, 3) as (fake, processes):
        writes = [
            writer
            for p, store in enumerate(processes)
            for t in range(40)
            for writer in (store.add_intent(f"p{p}-t{t}", intent(t)), store.put(f"p{p}-t{t}", "sink", receipt(f"k{t}")))
        ]
        async with asyncio.timeout(60):
            await asyncio.gather(*writes)

        for p, store in enumerate(processes):
            for t in range(40):
                assert await store.get(f"p{p}-t{t}", "sink") == receipt(f"k{t}")
                assert await store.intents(f"p{p}-t{t}") == (intent(t),)
        puts = [status for method, _, status in fake.seen if method == "PUT"]
        assert puts.count(200) < len(writes), "the writes of one process were committed together"


async def test_reads_share_a_get_but_never_one_older_than_this_processs_last_write(tmp_path: Path) -> None:
    async with stores(tmp_path, 1, slow_reads=[0.0, 1.0]) as (fake, [store]):
        await store.put("t", "sink", receipt("k1"))
        # Three reads at once, on one slow GET that began before the next write.
        reading = asyncio.gather(*(store.get("t", "sink") for _ in range(3)))
        await asyncio.sleep(0.1)
        await store.put("t", "sink", receipt("k2"))

        assert await store.get("t", "sink") == receipt("k2"), "a read after a write sees it"
        assert await reading == [receipt("k1")] * 3
        gets = [path for method, path, _ in fake.seen if method == "GET"]
        assert len(gets) == 4, "one GET for each write, one shared by the three reads, one after the write"
