"""Discovery: 10,000 files already in the inbox when syncd starts.

Measures the time from starting ``syncd run`` until every file is recorded
in the journal (``SELECT COUNT(*) FROM documents``, polled read-only every
50 ms). That includes the interpreter's start, the configuration, the
journal, the purchase-order check against the simulator and the inbox scan.
The scan is also timed alone, in this process: ``Watcher.scan()`` into a
fresh journal.

    .venv/bin/python -m bench.discovery
    .venv/bin/python -m bench.discovery --documents 50000
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from bench.common import (
    DaemonProcess,
    SimulatorProcess,
    drop_documents,
    journal_rows,
    print_row,
    save_result,
    wait_for,
    write_config,
)
from syncd.config import load_settings
from syncd.journal import SqliteJournal
from syncd.logs import configure_logging
from syncd.watcher import Watcher

TARGET_SECONDS = 10.0


def scan_alone(config: Path, state_dir: Path) -> tuple[float, int]:
    """Seconds ``Watcher.scan()`` takes into an empty journal, and files found."""
    settings = load_settings(config)
    configure_logging("warning")
    journal = SqliteJournal(state_dir / "journal.sqlite3")
    try:
        started = time.perf_counter()
        added = Watcher(settings, journal).scan()
        return time.perf_counter() - started, added
    finally:
        journal.close()


def _epoch(timestamp: str) -> float:
    return datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=10_000)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="syncd-bench-discovery-"))
    try:
        work = root / "syncd"
        written = drop_documents(work / "inbox", args.documents)
        print(f"{args.documents} PDFs written in {written:.1f} s")
        flags = ["--processing-seconds", "1e9"]
        flags += ["--po", f"PO-2026-014:{10 * args.documents}"]
        with SimulatorProcess(root, *flags) as sim:
            config = write_config(work, sim.base_url)
            scan_seconds, scanned = scan_alone(config, root / "scan-state")

            daemon = DaemonProcess(config, "run", sample_seconds=0.5)
            counted = 0
            while counted < args.documents:
                if not daemon.running():
                    raise RuntimeError(f"syncd exited; see {daemon.log_path}")
                if time.time() - daemon.started > 300:
                    raise TimeoutError(f"{counted} of {args.documents} after 300 s")
                with contextlib.suppress(sqlite3.Error):
                    counted = journal_rows(
                        work / "state", "SELECT COUNT(*) FROM documents"
                    )[0][0]
                time.sleep(0.05)
            all_found = time.time() - daemon.started
            wait_for(
                lambda: bool(daemon.log_lines("daemon.ready")),
                timeout=60,
                what="the daemon.ready log line",
            )
            ready = daemon.log_lines("daemon.ready")[0]["timestamp"]
            ready_after = _epoch(ready) - daemon.started
            code = daemon.stop()
        if code != 0:
            raise RuntimeError(f"syncd run exited {code}; see {daemon.log_path}")
        stages = dict(
            journal_rows(
                work / "state", "SELECT stage, COUNT(*) FROM documents GROUP BY 1"
            )
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)

    figures = {
        "documents": args.documents,
        "start_to_all_in_journal_seconds": round(all_found, 2),
        "start_to_ready_seconds": round(ready_after, 2),
        "scan_alone_seconds": round(scan_seconds, 2),
        "scan_alone_found": scanned,
        "stages_at_stop": stages,
        "target_seconds": TARGET_SECONDS,
        "target_met": all_found < TARGET_SECONDS,
    }
    for key, value in figures.items():
        print(f"  {key}: {value}")
    save_result(f"discovery-{args.documents}", figures)
    print_row(
        [
            f"Discovery, {args.documents:,} files in the inbox at start",
            f"{all_found:.1f} s from start to all in the journal",
            f"Watcher.scan() alone {scan_seconds:.2f} s",
            f"< {TARGET_SECONDS:g} s",
        ]
    )


if __name__ == "__main__":
    main()
