"""kill -9 at any moment loses nothing and never makes a second remote record."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import yaml

from syncd.simulator import Simulator, SimulatorOptions
from tests.harness import API_KEY, Tree

DOCUMENTS = 24
KILLS = 12


def write_config(tree: Tree, simulator: Simulator) -> Path:
    config = {
        "api": {
            "base_url": simulator.base_url,
            "key": API_KEY,
            "max_requests_per_second": None,
        },
        "folders": {
            "inbox": "inbox",
            "outbox": "outbox",
            "archive": "archive",
            "failed": "failed",
        },
        "state_dir": "state",
        "upload": {"purchase_order": "PO-2026-014", "concurrency": 4},
        "watch": {"settle_seconds": 0.2, "rescan_seconds": 2},
        "poll": {"interval_seconds": 0.2, "max_interval_seconds": 1},
        "http": {"listen": None},
        "logging": {"level": "info", "format": "json"},
    }
    path = tree.root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def syncd(*args: str) -> list[str]:
    return [sys.executable, "-m", "syncd", *args]


def _readies(log: Path) -> int:
    return log.read_text().count('"daemon.ready"') if log.exists() else 0


def _wait_for_ready(log: Path, seen_before: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while _readies(log) <= seen_before:
        assert time.monotonic() < deadline, "the daemon never became ready"
        time.sleep(0.02)


def test_repeated_kill_9_then_restart_delivers_every_file_once(tree: Tree) -> None:
    rng = random.Random(20261203)
    for index in range(DOCUMENTS):
        tree.drop(f"batch/doc-{index:03}.pdf", pages=1 + index % 4)
    options = SimulatorOptions(
        api_key=API_KEY, processing_seconds=0.5, latency_seconds=0.02
    )
    with Simulator(options) as simulator:
        config = write_config(tree, simulator)
        log = (tree.root / "daemon.log").open("ab")
        daemon_log = tree.root / "daemon.log"
        for round_ in range(KILLS):
            readies = _readies(daemon_log)
            process = subprocess.Popen(
                syncd("run", "-c", str(config)), stdout=log, stderr=log
            )
            try:
                # Most kills land after start-up, where the documents move;
                # a few land inside it.
                if round_ % 4:
                    _wait_for_ready(daemon_log, readies)
                time.sleep(rng.uniform(0.0, 1.5))
            finally:
                process.send_signal(signal.SIGKILL)
                process.wait()

        finish = subprocess.run(
            syncd("once", "-c", str(config), "--timeout", "120"),
            stdout=log,
            stderr=log,
            check=False,
        )
        log.close()

        assert finish.returncode == 0, (tree.root / "daemon.log").read_text()[-3000:]
        names = [f"batch/doc-{index:03}.pdf" for index in range(DOCUMENTS)]
        assert tree.listing(tree.outbox) == names
        assert tree.listing(tree.archive) == names
        assert tree.listing(tree.inbox) == []
        assert tree.listing(tree.failed) == []
        records = simulator.files()
        assert simulator.creates() == DOCUMENTS, [r["name"] for r in records]
        by_name = {record["name"]: record for record in records}
        for name in names:
            record = by_name[Path(name).name]
            delivered = (tree.outbox / name).read_bytes()
            assert delivered == simulator.result_bytes(record["id"])

    journal = sqlite3.connect(tree.root / "state" / "journal.sqlite3")
    assert journal.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    journal.close()
