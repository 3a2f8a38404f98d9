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
        # Let the other waiters run, as a real sleep would.
        await asyncio.sleep(0)


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


def test_background_requests_let_the_others_go_first() -> None:
    clock = _Time()
    limiter = RateLimiter(2, clock=clock, sleep=clock.sleep)
    sent: dict[str, float] = {}

    async def one(name: str) -> None:
        await limiter.acquire(background=name.startswith("poll"))
        sent[name] = clock.now

    async def polls_then_uploads() -> None:
        # The first second is used up; four polls, then two uploads, arrive.
        await limiter.acquire()
        await limiter.acquire()
        names = ["poll-1", "poll-2", "poll-3", "poll-4", "upload-1", "upload-2"]
        await asyncio.gather(*(one(name) for name in names))

    asyncio.run(polls_then_uploads())

    # Only one poll at a time waits beside the uploads: they do not queue
    # behind all four.
    assert sent == {
        "poll-1": 1.0,
        "upload-1": 1.0,
        "upload-2": 2.0,
        "poll-2": 2.0,
        "poll-3": 3.0,
        "poll-4": 3.0,
    }
