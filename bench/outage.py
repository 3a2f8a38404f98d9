"""The service away: the API goes down mid-run, stays down, comes back.

Usage::

    .venv/bin/python bench/outage.py --outage-seconds 600 --documents 500

``syncd run`` works through a first wave of documents; once they are spread
over every stage (settling, creating, uploading, processing, downloading)
both simulator origins stop: their sockets close, so every request is
refused, as with a service that is down. A second wave is dropped while it
is away. After ``--outage-seconds`` the same simulator, with the records it
kept in memory, comes back on the same ports. Nothing may fail and nothing
may be lost; the figure is the drain time, from its return until every
document is delivered.

Exit status 0 when every check held, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import API_KEY, free_port
from bench.reliability_common import (
    WEBHOOK_SECRET,
    DaemonProcess,
    OutageSimulator,
    audit,
    drop,
    live,
    machine,
    make_corpus,
    print_report,
    register_webhook,
    stage_counts,
    wait_for,
    workspace,
    write_config,
)
from syncd.simulator import SimulatorOptions

# Stages a document passes through while the service is needed.
SERVICE_STAGES = ("stable", "creating", "uploading", "processing", "downloadable")


def outage(
    outage_seconds: float,
    documents: int,
    *,
    processing_seconds: float = 3.0,
    drain_timeout: float = 900.0,
    keep: Path | None = None,
) -> dict[str, Any]:
    """Run one outage; return its figures and the audit's problems."""
    items = make_corpus(documents)
    first, second = items[: documents * 3 // 4], items[documents * 3 // 4 :]
    options = SimulatorOptions(
        api_key=API_KEY,
        processing_seconds=processing_seconds,
        webhook_secret=WEBHOOK_SECRET,
        latency_seconds=0.02,
    )
    problems: list[str] = []
    with workspace(keep) as layout, OutageSimulator(options) as sim:
        port = free_port()
        # Slow polling, so documents pile up in every stage before the cut.
        write_config(layout, sim, port=port, concurrency=2)
        register_webhook(sim, port)
        daemon = DaemonProcess(layout)
        daemon.start()
        try:
            daemon.wait_ready()
            drop(layout, first)
            wait_for(
                lambda: _spread(stage_counts(layout)) >= 3,
                timeout=120,
                what="documents in several stages",
            )
            at_cut = stage_counts(layout)
            sim.go_down()
            drop(layout, second)
            time.sleep(outage_seconds)
            at_return = stage_counts(layout)
            sim.come_back()
            back = time.monotonic()
            wait_for(
                lambda: (
                    live(layout) == 0
                    and sum(stage_counts(layout).values()) >= documents
                ),
                timeout=drain_timeout,
                what="the backlog to drain",
            )
            drain_seconds = time.monotonic() - back
        finally:
            code = daemon.stop()
        if code != 0:
            problems.append(f"syncd run exited {code} on SIGTERM")
        found = audit(layout, sim, items)
    problems = found.problems + problems
    if found.failed:
        problems.append(f"{found.failed} documents failed: {found.reasons}")

    return {
        "documents": documents,
        "outage_seconds": outage_seconds,
        "at_cut": at_cut,
        "at_return": at_return,
        "drain_seconds": drain_seconds,
        "delivered": found.delivered,
        "failed": found.failed,
        "creates": found.creates,
        "distinct": found.distinct,
        "problems": problems,
    }


def _spread(counts: dict[str, int]) -> int:
    return sum(1 for stage in SERVICE_STAGES if counts.get(stage))


def _stages(counts: dict[str, int]) -> str:
    return ", ".join(f"{stage} {count}" for stage, count in sorted(counts.items()))


def figures(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (
            "documents",
            f"{result['documents']} ({result['distinct']} distinct contents)",
        ),
        ("outage", f"{result['outage_seconds']:g} s, both origins refusing"),
        ("stages when it went down", _stages(result["at_cut"])),
        ("stages when it came back", _stages(result["at_return"])),
        ("drain time after its return", f"{result['drain_seconds']:.1f} s"),
        ("delivered / failed", f"{result['delivered']} / {result['failed']}"),
        ("remote records created", str(result["creates"])),
        ("checks", "all held" if not result["problems"] else "FAILED"),
        ("machine", machine()),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage-seconds", type=float, default=600)
    parser.add_argument("--documents", type=int, default=500)
    parser.add_argument("--processing-seconds", type=float, default=3.0)
    parser.add_argument(
        "--keep", type=Path, help="run in this folder and leave it for inspection"
    )
    args = parser.parse_args(argv)

    result = outage(
        args.outage_seconds,
        args.documents,
        processing_seconds=args.processing_seconds,
        keep=args.keep,
    )
    print_report("The service away", figures(result), result["problems"])

    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
