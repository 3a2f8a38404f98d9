"""Crash loop: kill -9 the daemon at random moments, restart it, lose nothing.

Usage::

    .venv/bin/python bench/chaos.py --rounds 200 --documents 500

The documents are dropped in batches over the first two thirds of the rounds
so that every round has work in flight: discovery, settling, record
creation, uploads, polls, downloads and the final moves. Each round starts
``syncd run`` as a child process, waits a random moment (sometimes not even
until start-up is over) and sends SIGKILL. The simulator stays up across
every restart, with webhooks on. ``syncd once`` finishes what is left, then
the audit in ``reliability_common`` checks the end state. After each kill
the journal tells what was interrupted: the stages of documents still
leased by a step.

Exit status 0 when every check held, 1 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import random
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
    audit,
    drop,
    machine,
    make_corpus,
    print_report,
    register_webhook,
    run_once,
    steps_in_flight,
    workspace,
    write_config,
)
from syncd.simulator import Simulator, SimulatorOptions

# Share of rounds whose kill lands during start-up, before the daemon is ready.
STARTUP_KILL_SHARE = 0.15


def crash_loop(
    rounds: int,
    documents: int,
    *,
    seed: int = 20261203,
    processing_seconds: float = 0.5,
    max_alive_seconds: float = 2.5,
    latency_seconds: float = 0.005,
    finish_timeout: float = 600.0,
    keep: Path | None = None,
) -> dict[str, Any]:
    """Run the loop; return its figures and the audit's problems."""
    rng = random.Random(seed)
    items = make_corpus(documents)
    batches = max(1, (rounds * 2) // 3)
    per_batch = -(-len(items) // batches)
    in_flight: collections.Counter[str] = collections.Counter()
    startup_kills = idle_kills = 0
    options = SimulatorOptions(
        api_key=API_KEY,
        processing_seconds=processing_seconds,
        webhook_secret=WEBHOOK_SECRET,
        latency_seconds=latency_seconds,
        seed=seed,
    )
    started = time.monotonic()
    with workspace(keep) as layout, Simulator(options) as sim:
        port = free_port()
        write_config(layout, sim, port=port)
        register_webhook(sim, port)
        daemon = DaemonProcess(layout)
        for round_ in range(rounds):
            drop(layout, items[round_ * per_batch : (round_ + 1) * per_batch])
            daemon.start()
            if rng.random() < STARTUP_KILL_SHARE:
                startup_kills += 1
                time.sleep(rng.uniform(0.0, 1.0))
            else:
                daemon.wait_ready()
                time.sleep(rng.uniform(0.0, max_alive_seconds))
            daemon.kill()
            interrupted = steps_in_flight(layout)
            in_flight.update(interrupted)
            if not interrupted:
                idle_kills += 1
        drop(layout, items[rounds * per_batch :])
        loop_seconds = time.monotonic() - started
        code, finish_seconds = run_once(layout, finish_timeout)
        found = audit(layout, sim, items)
        if code != 0:
            found.problems.append(f"syncd once exited {code}")

    return {
        "rounds": rounds,
        "documents": documents,
        "distinct": found.distinct,
        "delivered": found.delivered,
        "failed": found.failed,
        "reasons": found.reasons,
        "creates": found.creates,
        "startup_kills": startup_kills,
        "idle_kills": idle_kills,
        "in_flight": dict(in_flight),
        "loop_seconds": loop_seconds,
        "finish_seconds": finish_seconds,
        "total_seconds": time.monotonic() - started,
        "problems": found.problems,
    }


def figures(result: dict[str, Any]) -> list[tuple[str, str]]:
    stages = ", ".join(
        f"{stage} {count}" for stage, count in sorted(result["in_flight"].items())
    )
    return [
        ("rounds (kill -9 each)", str(result["rounds"])),
        (
            "documents",
            f"{result['documents']} ({result['distinct']} distinct contents)",
        ),
        ("delivered / failed", f"{result['delivered']} / {result['failed']}"),
        ("remote records created", str(result["creates"])),
        ("kills during start-up", str(result["startup_kills"])),
        ("kills with no step in flight", str(result["idle_kills"])),
        ("steps interrupted, by stage", stages or "none"),
        ("kill loop", f"{result['loop_seconds']:.0f} s"),
        ("final `syncd once`", f"{result['finish_seconds']:.1f} s"),
        ("total", f"{result['total_seconds']:.0f} s"),
        ("checks", "all held" if not result["problems"] else "FAILED"),
        ("machine", machine()),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--documents", type=int, default=500)
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument(
        "--processing-seconds",
        type=float,
        default=0.5,
        help="how long the simulator takes per document",
    )
    parser.add_argument(
        "--keep", type=Path, help="run in this folder and leave it for inspection"
    )
    args = parser.parse_args(argv)

    result = crash_loop(
        args.rounds,
        args.documents,
        seed=args.seed,
        processing_seconds=args.processing_seconds,
        keep=args.keep,
    )
    print_report("Crash loop", figures(result), result["problems"])

    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
