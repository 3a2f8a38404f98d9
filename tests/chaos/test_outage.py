"""The service going away for a while fails nothing (short run).

The long run is ``bench/outage.py --outage-seconds 600``. The simulator's
servers really stop (connections are refused) and come back on the same
ports with the records they held.
"""

from __future__ import annotations

from bench.outage import outage


def test_a_thirty_second_outage_fails_nothing_and_the_backlog_drains() -> None:
    result = outage(30, 40)

    assert result["problems"] == []
    assert result["delivered"] == 40
    assert result["failed"] == 0
    assert result["creates"] == result["distinct"]
    # Documents were waiting on the service in several stages at the cut.
    assert sum(result["at_cut"].values()) > 0
    assert result["drain_seconds"] < 120
