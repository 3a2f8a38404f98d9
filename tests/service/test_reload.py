"""SIGHUP: the configuration file is read again while the daemon runs."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

from syncd.simulator.samples import make_pdf
from tests.harness import Tree, wait_until
from tests.service.helpers import DaemonProcess, NotifySocket, write_config

if TYPE_CHECKING:
    from syncd.simulator import Simulator


def test_sighup_applies_a_good_file_and_refuses_a_bad_one(
    simulator: Simulator, tree: Tree
) -> None:
    notify = NotifySocket(str(tree.root / "notify.sock"))
    config = tree.root / "config.yaml"
    write_config(config, simulator, tree)
    moved_outbox = tree.root / "results"

    try:
        with DaemonProcess(config, tree.root, {"NOTIFY_SOCKET": notify.address}) as d:
            notify.wait_for("READY")

            write_config(
                config,
                simulator,
                tree,
                folders={"outbox": str(moved_outbox)},
                poll={"interval_seconds": 0.3},
                # Cannot change live: kept, with a warning.
                api={"base_url": "http://127.0.0.1:9"},
            )
            d.signal(signal.SIGHUP)
            d.wait_for_event("config.reloaded")
            notify.wait_for("READY", count=2)

            (reloaded,) = d.event("config.reloaded")
            assert reloaded["changed"] == ["folders", "poll"]
            (held,) = d.event("config.restart_needed")
            assert held["level"] == "warning"
            assert held["keys"] == ["api"]
            reloading = [m for m in notify.messages() if m.get("RELOADING") == "1"]
            assert len(reloading) == 1
            assert int(reloading[0]["MONOTONIC_USEC"]) > 0

            # The new outbox is used, and the API still answers at the old
            # address.
            tree.drop("after-reload.pdf", data=make_pdf(1, marker="a"))
            wait_until(
                lambda: tree.listing(moved_outbox) == ["after-reload.pdf"],
                what="the document in the new outbox",
            )

            config.write_text("poll:\n  interval_seconds: -1\nsurprise: true\n")
            d.signal(signal.SIGHUP)
            d.wait_for_event("config.reload_refused")
            notify.wait_for("READY", count=3)

            (refused,) = d.event("config.reload_refused")
            assert refused["level"] == "error"
            assert any("surprise" in problem for problem in refused["problems"])
            assert any("poll.interval_seconds" in p for p in refused["problems"])
            # Still running, on the settings of the last good file.
            tree.drop("after-refusal.pdf", data=make_pdf(1, marker="b"))
            wait_until(
                lambda: "after-refusal.pdf" in tree.listing(moved_outbox),
                what="the second document in the new outbox",
            )
            assert d.stop() == 0
    finally:
        notify.close()

    assert tree.listing(tree.outbox) == []
