"""``syncd demo``: the whole pipeline on a laptop, in under a minute.

Starts the simulator in-process, builds a temporary inbox/outbox tree, drops
a handful of sample PDFs (one of them broken) and runs ``once`` over them,
printing progress as documents move and a summary at the end.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

from syncd.config import parse_settings
from syncd.daemon import Daemon
from syncd.errors import ExitCode
from syncd.journal import Stage
from syncd.logs import configure_logging
from syncd.simulator import Simulator, SimulatorOptions
from syncd.simulator.samples import broken_pdf, make_pdf

SAMPLES = {
    "annual-report.pdf": 12,
    "finance/invoice 2026-014.pdf": 2,
    "finance/budget.pdf": 5,
    "scans/scan_0001.pdf": 1,
    "scans/scan_0002.pdf": 3,
    "Übersicht.pdf": 4,
}
BROKEN = "scans/scan_0003.pdf"
API_KEY = "demo-key"


def run_demo(keep: bool = False, out: TextIO = sys.stdout) -> int:
    """Run the demonstration; return 0 when it behaved as it should."""
    root = Path(tempfile.mkdtemp(prefix="syncd-demo-"))
    options = SimulatorOptions(api_key=API_KEY, processing_seconds=2.0)
    try:
        with Simulator(options) as simulator:
            print(f"simulator:  {simulator.base_url} (key {API_KEY})", file=out)
            print(f"demo tree:  {root}", file=out)
            _drop_samples(root / "inbox")
            settings = parse_settings(
                {
                    "api": {"base_url": simulator.base_url, "key": API_KEY},
                    "folders": {
                        "inbox": "inbox",
                        "outbox": "outbox",
                        "archive": "archive",
                        "failed": "failed",
                    },
                    "state_dir": "state",
                    "upload": {"purchase_order": "PO-2026-014", "concurrency": 4},
                    "watch": {"settle_seconds": 0.5, "give_up_after_seconds": 4},
                    "poll": {"interval_seconds": 1, "max_interval_seconds": 5},
                    "http": {"listen": None},
                    "logging": {"level": "warning"},
                },
                base_dir=root,
                environ={},
            )
            configure_logging("warning", "console", stream=sys.stderr)
            code = asyncio.run(_run_with_progress(Daemon(settings), out))
            _summary(root, out)
            print(f"remote records created: {simulator.creates()}", file=out)
    finally:
        if keep:
            print(f"kept {root}", file=out)
        else:
            shutil.rmtree(root, ignore_errors=True)

    # One sample is broken on purpose: exactly one failure is the success.
    return ExitCode.OK if code == ExitCode.SOME_FAILED else ExitCode.SOFTWARE


def _drop_samples(inbox: Path) -> None:
    for name, pages in SAMPLES.items():
        path = inbox / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make_pdf(pages))
    (inbox / BROKEN).write_bytes(broken_pdf())


async def _run_with_progress(daemon: Daemon, out: TextIO) -> int:
    started = time.monotonic()
    task = asyncio.create_task(daemon.run(once=True, timeout=55))
    last = ""
    while not task.done():
        await asyncio.wait({task}, timeout=0.5)
        if task.done() or daemon.journal is None or not daemon.ready.is_set():
            continue
        counts = daemon.journal.counts()
        line = "  ".join(
            f"{stage.value} {counts[stage]}" for stage in Stage if counts[stage]
        )
        if line != last:
            print(f"[{time.monotonic() - started:5.1f}s] {line}", file=out)
            last = line

    return await task


def _summary(root: Path, out: TextIO) -> None:
    for folder in ("outbox", "archive", "failed"):
        names = sorted(
            path.relative_to(root / folder).as_posix()
            for path in (root / folder).rglob("*")
            if path.is_file()
        )
        print(f"{folder + '/':<9} {len(names)} files", file=out)
        for name in names:
            print(f"  {name}", file=out)
    for report in (root / "failed").rglob("*.error.json"):
        error = json.loads(report.read_text())
        print(f"why {error['file']} failed: {error['message']}", file=out)
