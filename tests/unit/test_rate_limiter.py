"""The client-side rate limit: at most ``rate`` requests in any one second."""

from __future__ import annotations

import asyncio

from syncd.api import RateLimiter


class _Time:
    """A clock that moves only when the limiter sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _send_times(rate: float | None, requests: int) -> tuple[list[float], _Time]:
    clock = _Time()
    limiter = RateLimiter(rate, clock=clock, sleep=clock.sleep)
    times: list[float] = []

    async def send_all() -> None:
        for _ in range(requests):
            await limiter.acquire()
            times.append(clock.now)

    asyncio.run(send_all())

    return times, clock


def test_a_batch_within_the_rate_leaves_at_once() -> None:
    times, clock = _send_times(10, 10)

    assert times == [0.0] * 10
    assert clock.sleeps == []


def test_no_second_holds_more_than_rate_requests() -> None:
    times, _ = _send_times(10, 25)

    assert times == [0.0] * 10 + [1.0] * 10 + [2.0] * 5
    for start in times:
        assert sum(start <= when < start + 1.0 for when in times) <= 10


def test_a_rate_below_one_spaces_single_requests() -> None:
    times, _ = _send_times(0.5, 3)

    assert times == [0.0, 2.0, 4.0]


def test_a_fractional_rate_never_exceeds_itself_in_one_second() -> None:
    times, _ = _send_times(2.5, 6)

    assert times == [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]


def test_no_rate_means_no_waiting() -> None:
    times, clock = _send_times(None, 50)

    assert times == [0.0] * 50
    assert clock.sleeps == []


def test_waiters_share_one_limit_in_their_order_of_arrival() -> None:
    clock = _Time()
    limiter = RateLimiter(2, clock=clock, sleep=clock.sleep)
    order: list[tuple[int, float]] = []

    async def one(number: int) -> None:
        await limiter.acquire()
        order.append((number, clock.now))

    async def all_at_once() -> None:
        await asyncio.gather(*(one(number) for number in range(5)))

    asyncio.run(all_at_once())

    assert order == [(0, 0.0), (1, 0.0), (2, 1.0), (3, 1.0), (4, 2.0)]
