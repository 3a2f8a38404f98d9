"""Faults: the same documents against a clean and a misbehaving service.

Usage::

    .venv/bin/python bench/faults.py --documents 500

Both runs happen in one invocation, each with a fresh simulator, folder tree
and ``syncd once``. The misbehaving one injects, per request: 20% answers
500, 5% answers 429 with ``Retry-After`` (in seconds and as an HTTP date,
alternating), 5% dropped connections, 2% downloads cut short (the four share
one draw, so their rates add up), every upload URL expired on first use, and
a 2 s latency spike on 2% of requests. Everything must still be delivered,
byte for byte, once each, and the faulty run may take at most ``--max-ratio``
(3) times the clean one.

Exit status 0 when every check held, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import API_KEY, free_port
from bench.reliability_common import (
    WEBHOOK_SECRET,
    audit,
    drop,
    machine,
    make_corpus,
    print_report,
    register_webhook,
    run_once,
    workspace,
    write_config,
)
from syncd.simulator import Simulator, SimulatorOptions

FAULTS: dict[str, Any] = {
    "error_rate": 0.20,
    "rate_429": 0.05,
    "retry_after_form": "mixed",
    "retry_after_seconds": 1,
    "drop_rate": 0.05,
    "truncate_rate": 0.02,
    "expire_upload_urls": True,
    "latency_spike_rate": 0.02,
    "latency_spike_seconds": 2.0,
}


def one_run(
    documents: int,
    faults: dict[str, Any],
    *,
    seed: int,
    processing_seconds: float,
    timeout: float,
) -> dict[str, Any]:
    items = make_corpus(documents)
    options = SimulatorOptions(
        api_key=API_KEY,
        processing_seconds=processing_seconds,
        webhook_secret=WEBHOOK_SECRET,
        seed=seed,
    )
    with workspace() as layout, Simulator(options) as sim:
        port = free_port()
        write_config(layout, sim, port=port)
        register_webhook(sim, port)
        # Set once the webhook is registered: the faults would hit that too.
        sim.set_faults(**faults)
        drop(layout, items)
        code, seconds = run_once(layout, timeout)
        found = audit(layout, sim, items)
        if code != 0:
            found.problems.append(f"syncd once exited {code}")
        faulted = sum(1 for entry in sim.requests() if entry.get("fault"))
        requests = len(sim.requests())
    if found.failed:
        found.problems.append(f"{found.failed} documents failed: {found.reasons}")

    return {
        "seconds": seconds,
        "delivered": found.delivered,
        "failed": found.failed,
        "creates": found.creates,
        "distinct": found.distinct,
        "requests": requests,
        "faulted": faulted,
        "problems": found.problems,
    }


def compare(
    documents: int,
    *,
    seed: int = 7,
    processing_seconds: float = 0.5,
    max_ratio: float = 3.0,
    timeout: float = 900.0,
) -> dict[str, Any]:
    """A clean run, then a faulty one; their figures and the checks' problems."""
    clean = one_run(
        documents, {}, seed=seed, processing_seconds=processing_seconds, timeout=timeout
    )
    faulty = one_run(
        documents,
        FAULTS,
        seed=seed,
        processing_seconds=processing_seconds,
        timeout=timeout,
    )
    ratio = faulty["seconds"] / clean["seconds"]
    problems = [f"clean: {p}" for p in clean["problems"]]
    problems += [f"faulty: {p}" for p in faulty["problems"]]
    if ratio > max_ratio:
        problems.append(f"the faulty run took {ratio:.2f}x the clean one")

    return {
        "documents": documents,
        "clean": clean,
        "faulty": faulty,
        "ratio": ratio,
        "max_ratio": max_ratio,
        "problems": problems,
    }


def figures(result: dict[str, Any]) -> list[tuple[str, str]]:
    clean, faulty = result["clean"], result["faulty"]
    return [
        (
            "documents",
            f"{result['documents']} ({faulty['distinct']} distinct contents)",
        ),
        (
            "faults",
            "500s 20%, 429s 5% (Retry-After seconds and date), drops 5%,"
            " truncated downloads 2%, upload URLs expired, 2 s spikes on 2%",
        ),
        ("clean run", f"{clean['seconds']:.1f} s"),
        ("faulty run", f"{faulty['seconds']:.1f} s"),
        ("ratio", f"{result['ratio']:.2f}x (target <= {result['max_ratio']:g}x)"),
        (
            "faulty run requests",
            f"{faulty['requests']} ({faulty['faulted']} with a fault)",
        ),
        (
            "delivered / failed",
            f"{faulty['delivered']} / {faulty['failed']} (byte-exact)",
        ),
        ("remote records created", str(faulty["creates"])),
        ("checks", "all held" if not result["problems"] else "FAILED"),
        ("machine", machine()),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--processing-seconds", type=float, default=0.5)
    parser.add_argument("--max-ratio", type=float, default=3.0)
    args = parser.parse_args(argv)

    result = compare(
        args.documents,
        seed=args.seed,
        processing_seconds=args.processing_seconds,
        max_ratio=args.max_ratio,
    )
    print_report("Faults", figures(result), result["problems"])

    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
