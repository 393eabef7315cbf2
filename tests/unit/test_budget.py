"""The request budget: a token bucket that never lets more than its limit through in any window, and a
pause when the service says Retry-After. Time is a fake clock: these tests never sleep."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from service.adapters.budget import Budget, Limit


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def most_in_any_window(stamps: list[float], window: float) -> int:
    return max(sum(1 for t in stamps if start <= t < start + window) for start in stamps)


@pytest.mark.parametrize(
    ("limit", "sizes"),
    [
        pytest.param(Limit(100, 10.0), [1], id="single requests as fast as they come"),
        pytest.param(Limit(100, 10.0), [20], id="batches of 20 counting each request inside"),
        pytest.param(Limit(3000, 10.0), [20, 1, 15], id="Graph's limit, batches and single reads mixed"),
        pytest.param(Limit(5, 1.0), [7], id="a batch larger than the burst"),
    ],
)
async def test_no_window_ever_holds_more_requests_than_the_limit(limit: Limit, sizes: list[int]) -> None:
    clock = FakeTime()
    budget = Budget(limit, monotonic=clock.monotonic, sleep=clock.sleep)
    stamps: list[float] = []
    for size in itertools.islice(itertools.cycle(sizes), limit.requests * 3 // max(sizes)):
        await budget.take(size)
        stamps += [clock.now] * size

    assert most_in_any_window(stamps, limit.window) <= limit.requests + max(0, max(sizes) - limit.burst)
    assert clock.now > 0, "it did make the callers wait"


async def test_a_pause_holds_every_caller_for_as_long_as_the_service_asked() -> None:
    clock = FakeTime()
    budget = Budget(Limit(100), monotonic=clock.monotonic, sleep=clock.sleep)
    await budget.take()

    budget.pause(7.0)
    budget.pause(2.0)  # a shorter pause asked later does not cut the longer one short
    await budget.take()

    assert clock.now == pytest.approx(7.0)


async def test_after_a_pause_requests_resume_at_the_budgets_rate_not_in_a_burst() -> None:
    clock = FakeTime()
    limit = Limit(100)  # a burst of 10, then 9 a second
    budget = Budget(limit, monotonic=clock.monotonic, sleep=clock.sleep)
    await budget.take()

    budget.pause(30.0)  # long enough to refill the bucket many times over, were it refilling
    stamps = []
    for _ in range(10):
        await budget.take()
        stamps.append(clock.now)

    assert stamps[0] == pytest.approx(30.0)
    assert stamps[-1] == pytest.approx(30.0 + 9 / limit.rate)
    assert all(later - earlier == pytest.approx(1 / limit.rate) for earlier, later in itertools.pairwise(stamps))


async def test_callers_go_in_the_order_they_came() -> None:
    clock = FakeTime()
    budget = Budget(Limit(10, 10.0), monotonic=clock.monotonic, sleep=clock.sleep)
    order: list[int] = []

    async def caller(n: int) -> None:
        await budget.take()
        order.append(n)

    await asyncio.gather(*(caller(n) for n in range(30)))

    assert order == list(range(30))


async def flat_out(budget: Budget, clock: FakeTime, requests: int) -> list[float]:
    """When each of ``requests`` single requests went, sent as fast as ``budget`` lets them."""
    stamps = []
    for _ in range(requests):
        await budget.take()
        stamps.append(clock.now)
    return stamps


@pytest.mark.parametrize("processes", [2, 3, 4], ids=lambda n: f"{n} processes")
async def test_processes_sharing_a_vault_stay_within_its_limit_together(processes: int) -> None:
    limit, clock = Limit(400, 10.0), FakeTime()
    budgets = [Budget(limit.shared(processes), monotonic=clock.monotonic, sleep=clock.sleep) for _ in range(processes)]

    runs = await asyncio.gather(*(flat_out(b, clock, limit.requests * 3 // processes) for b in budgets))

    assert most_in_any_window(sorted(itertools.chain(*runs)), limit.window) <= limit.requests
