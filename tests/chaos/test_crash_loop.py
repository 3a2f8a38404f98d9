"""kill -9 at random moments, with webhooks on, loses nothing (short run).

The long run is ``bench/chaos.py --rounds 200 --documents 500``; this is the
same loop, small enough for every CI run. ``tests/pipeline/test_crash.py``
covers the simplest case; this one adds webhooks, drops documents while the
kills go on, kills during start-up, and the full audit.
"""

from __future__ import annotations

from bench.chaos import crash_loop


def test_twenty_kills_lose_nothing_and_create_one_record_per_document() -> None:
    # 50 ms a request keeps each step in flight long enough for a few of
    # twenty random kills to land on one.
    result = crash_loop(
        rounds=20, documents=60, max_alive_seconds=1.5, latency_seconds=0.05
    )

    assert result["problems"] == []
    assert result["delivered"] == 60
    assert result["failed"] == 0
    assert result["creates"] == result["distinct"]
    # The kills must have hit work in flight, or the test proves little.
    assert sum(result["in_flight"].values()) > 0, result
