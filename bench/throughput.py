"""Throughput: many small PDFs at once, syncd against a sequential script.

The simulator runs in its own process with no processing time and a fixed
latency on every request; ``syncd once`` runs in another with 16 uploads at
a time, no client rate limit, settle 0.5 s and poll interval 0.5 s. The
clock starts when syncd is started with the whole batch already in the
inbox (so its start-up counts) and stops when the last result is in the
outbox. Then ``bench.sequential`` sends a batch of the same kind through
the same simulator, one document at a time.

    .venv/bin/python -m bench.throughput                  # 1,000 documents
    .venv/bin/python -m bench.throughput --documents 10000
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    DaemonProcess,
    SimulatorProcess,
    api_requests,
    drop_documents,
    journal_rows,
    percentiles,
    print_row,
    save_result,
    write_config,
)
from bench.sequential import run_sequential

CONCURRENCY = 16
SETTLE_SECONDS = 0.5
POLL_SECONDS = 0.5
POLL_MAX_SECONDS = 2.0


def run_syncd(sim: SimulatorProcess, root: Path, documents: int) -> dict[str, Any]:
    prepared = drop_documents(root / "inbox", documents)
    print(f"syncd: {documents} PDFs written to the inbox in {prepared:.1f} s")
    config = write_config(
        root,
        sim.base_url,
        upload={"concurrency": CONCURRENCY},
        watch={"settle_seconds": SETTLE_SECONDS},
        poll={
            "interval_seconds": POLL_SECONDS,
            "max_interval_seconds": POLL_MAX_SECONDS,
        },
    )
    before = api_requests(sim.stats())
    sim_cpu = sim.cpu_seconds()
    daemon = DaemonProcess(config, "once")
    started = daemon.started
    code = daemon.wait(timeout=3600)
    if code != 0:
        raise RuntimeError(f"syncd once exited {code}; see {daemon.log_path}")
    requests = api_requests(sim.stats()) - before
    sim_cpu = sim.cpu_seconds() - sim_cpu

    rows = journal_rows(
        root / "state",
        "SELECT stage, discovered_at, stable_at, uploaded_at, completed_at,"
        " finished_at, outbox_path FROM documents",
    )
    delivered = [row for row in rows if row[0] == "delivered"]
    if len(delivered) != documents:
        raise RuntimeError(f"{len(delivered)} of {documents} documents delivered")
    in_outbox = [Path(row[6]).stat().st_mtime for row in delivered]
    last = max(in_outbox)
    elapsed = last - started
    ready = daemon.log_lines("daemon.ready")
    cpu = daemon.samples[-1][1] if daemon.samples else None

    return {
        "documents": documents,
        "seconds": round(elapsed, 3),
        "documents_per_second": round(documents / elapsed, 2),
        "requests": requests,
        "requests_per_document": round(requests / documents, 2),
        "first_upload_after_seconds": round(min(r[3] for r in delivered) - started, 3),
        "ready_log_line": ready[0]["timestamp"] if ready else None,
        "drop_to_upload": percentiles([r[3] - started for r in delivered]),
        "discovered_to_upload": percentiles([r[3] - r[1] for r in delivered]),
        "stable_to_upload": percentiles([r[3] - r[2] for r in delivered]),
        "upload_to_completed": percentiles([r[4] - r[3] for r in delivered]),
        "completed_to_outbox": percentiles(
            [mtime - r[4] for r, mtime in zip(delivered, in_outbox, strict=True)]
        ),
        "completed_to_archived": percentiles([r[5] - r[4] for r in delivered]),
        "cpu_seconds": cpu,
        "cpu_ms_per_document": round(1000 * cpu / documents, 1) if cpu else None,
        "cpu_percent_of_one_core": round(100 * cpu / elapsed, 1) if cpu else None,
        "simulator_cpu_ms_per_document": round(1000 * sim_cpu / documents, 1),
        "peak_rss_mib": round(daemon.peak_rss_kib / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument(
        "--sequential-documents",
        type=int,
        default=None,
        help="documents for the sequential baseline (default: the same, at most"
        " 1000; its rate does not depend on the batch size)",
    )
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    sequential_count = args.sequential_documents or min(args.documents, 1000)

    scratch = tempfile.mkdtemp(prefix="syncd-bench-throughput-")
    root = Path(scratch)
    flags = ["--latency-ms", str(args.latency_ms), "--processing-seconds", "0"]
    flags += ["--po", f"PO-2026-014:{10 * (args.documents + sequential_count)}"]
    with SimulatorProcess(root, *flags) as sim:
        (root / "syncd").mkdir()
        syncd = run_syncd(sim, root / "syncd", args.documents)
        show("syncd", syncd)

        seq_root = root / "sequential"
        drop_documents(seq_root / "inbox", sequential_count, prefix="seq")
        before = api_requests(sim.stats())
        started = time.perf_counter()
        sequential = run_sequential(
            sim.base_url, seq_root / "inbox", seq_root / "outbox", POLL_SECONDS
        )
        sequential["wall_seconds"] = round(time.perf_counter() - started, 3)
        sequential["simulator_requests"] = api_requests(sim.stats()) - before
        show("sequential", sequential)

    speedup = syncd["documents_per_second"] / sequential["documents_per_second"]
    result = {
        "settings": {
            "latency_ms": args.latency_ms,
            "processing_seconds": 0,
            "upload.concurrency": CONCURRENCY,
            "api.max_requests_per_second": None,
            "watch.settle_seconds": SETTLE_SECONDS,
            "poll.interval_seconds": POLL_SECONDS,
            "poll.max_interval_seconds": POLL_MAX_SECONDS,
        },
        "syncd": syncd,
        "sequential": sequential,
        "speedup": round(speedup, 1),
        "targets": {
            "documents_per_second>=100": syncd["documents_per_second"] >= 100,
            "speedup>=5": speedup >= 5,
        },
        "work_folder": str(root) if args.keep else None,
    }
    print(f"\nspeedup over sequential: {speedup:.1f}x")
    save_result(f"throughput-{args.documents}", result)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)

    upload = syncd["drop_to_upload"]
    outbox = syncd["completed_to_outbox"]
    print_row(
        [
            f"Throughput, {args.documents:,} small PDFs, {args.latency_ms:g} ms"
            " latency",
            f"{syncd['documents_per_second']:.0f} docs/s"
            f" (sequential {sequential['documents_per_second']:.1f} docs/s,"
            f" {speedup:.1f}x)",
            f"drop->upload p50/p95/p99 {upload['p50']}/{upload['p95']}/"
            f"{upload['p99']} s; completed->outbox p50/p95/p99 {outbox['p50']}/"
            f"{outbox['p95']}/{outbox['p99']} s",
            ">= 100 docs/s, >= 5x",
        ]
    )


def show(title: str, figures: dict[str, Any]) -> None:
    print(f"\n{title}:")
    for key, value in figures.items():
        print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
