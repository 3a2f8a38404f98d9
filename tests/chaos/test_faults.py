"""A misbehaving service costs time, never documents (short run).

The long run is ``bench/faults.py --documents 500``: 20% 500s, 5% 429s with
both forms of Retry-After, 5% dropped connections, 2% truncated downloads,
expired upload URLs and 2 s latency spikes, all at once. How much time the
faults cost (the ratio to a clean run) is the benchmark's figure; a test on a
shared machine only checks that nothing was lost or doubled.
"""

from __future__ import annotations

from bench.faults import compare
from syncd.errors import ExitCode
from syncd.simulator import Simulator, SimulatorOptions
from tests.harness import API_KEY, Tree, make_settings, run_once


def test_every_fault_at_once_still_delivers_everything_once() -> None:
    result = compare(40, max_ratio=float("inf"))

    assert result["problems"] == []
    assert result["faulty"]["delivered"] == 40
    assert result["faulty"]["creates"] == result["faulty"]["distinct"]
    assert result["faulty"]["faulted"] > 0


def test_an_expired_upload_url_is_put_once_then_renewed(tree: Tree) -> None:
    # Retrying the same expired URL four times cost the faulty run of the
    # benchmark more than all its 500s together.
    tree.drop("a.pdf")
    options = SimulatorOptions(
        api_key=API_KEY, processing_seconds=0.2, expire_upload_urls=True
    )
    with Simulator(options) as simulator:
        assert run_once(make_settings(simulator, tree)) == ExitCode.OK

        puts = [
            entry["status"]
            for entry in simulator.requests()
            if entry["origin"] == "storage" and entry["method"] == "PUT"
        ]
    assert puts == [403, 200]
