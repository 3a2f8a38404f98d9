"""Idle: syncd's CPU and API traffic with 10,000 documents being processed.

A long human-fixer queue is syncd's usual state: thousands of documents
uploaded, each polled with a backoff from ``poll.interval_seconds`` (30) to
``poll.max_interval_seconds`` (900). Reaching that steady state takes about
16 minutes of backoff (30 + 60 + 120 + 240 + 480 s), so the benchmark puts
syncd straight into it, as a warmed-up daemon leaves it:

1. the simulator (``--processing-seconds 1e9``) gets one record per
   document, with its bytes, so every record is ``in_progress``;
2. the journal is written with each document ``processing`` at the longest
   interval, next polls spread evenly over the coming 900 s (the poller's
   jitter spreads them so after the warm-up);
3. ``syncd run`` starts with the default poll, watch and upload settings
   and the 10,000 originals in the inbox; after a warm-up its CPU time is
   read from /proc/PID/stat over a window and the simulator's request
   count over the same window.

The default window (330 s) holds one full rescan of the inbox
(``watch.rescan_seconds`` 300), which is part of the idle cost.

    .venv/bin/python -m bench.idle
    .venv/bin/python -m bench.idle --documents 10000 --window 330
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from bench.common import (
    API_KEY,
    PURCHASE_ORDER,
    DaemonProcess,
    SimulatorProcess,
    api_requests,
    drop_documents,
    print_row,
    save_result,
    write_config,
)
from syncd import files
from syncd.journal import SqliteJournal

MAX_INTERVAL = 900.0
TARGET_CPU_PERCENT = 2.0
FILES = "/v1/external/user/files"


async def create_records(base_url: str, inbox: Path, concurrency: int) -> list[str]:
    """One simulator record per PDF, bytes included; their ids in name order."""
    paths = sorted(inbox.glob("*.pdf"))
    ids: list[str] = [""] * len(paths)
    queue = list(enumerate(paths))
    limits = httpx.Limits(max_connections=concurrency)
    async with (
        httpx.AsyncClient(
            base_url=base_url, headers={"x-api-key": API_KEY}, limits=limits
        ) as api,
        httpx.AsyncClient(limits=limits) as storage,
    ):

        async def worker() -> None:
            while queue:
                index, path = queue.pop()
                ids[index] = await _with_retries(lambda p=path: one(p))

        async def one(path: Path) -> str:
            data = path.read_bytes()
            body = {
                "name": path.name,
                "size": len(data),
                "mime": "application/pdf",
                "purchaseOrderId": PURCHASE_ORDER,
            }
            # The simulator answers a repeated key with the same record, so
            # a retry after a lost answer makes no second one.
            headers = {"Idempotency-Key": f"bench-idle-{path.name}"}
            response = await api.post(FILES, json=body, headers=headers)
            record = response.raise_for_status().json()
            response = await storage.put(
                record["uploadUrl"],
                content=data,
                headers={"Content-Type": "application/pdf"},
            )
            response.raise_for_status()
            return str(record["id"])

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    return ids


async def _with_retries(call: Callable[[], Awaitable[str]], attempts: int = 5) -> str:
    """``call()``, again after a dropped keep-alive connection or a 5xx."""
    for attempt in range(attempts):
        try:
            return await call()
        except (httpx.TransportError, httpx.HTTPStatusError):
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def seed_backlog(base_url: str, workdir: Path, documents: int) -> Path:
    """``documents`` PDFs in ``workdir/inbox``, each uploaded and processing.

    The simulator at ``base_url`` gets one record per PDF, and the journal in
    ``workdir/state`` holds each as a warmed-up daemon leaves it. Returns the
    inbox.
    """
    inbox = workdir / "inbox"
    drop_documents(inbox, documents)
    started = time.perf_counter()
    remote_ids = asyncio.run(create_records(base_url, inbox, 32))
    print(
        f"{documents} records created and uploaded in"
        f" {time.perf_counter() - started:.0f} s"
    )
    seed_journal(workdir / "state", inbox, remote_ids)

    return inbox


def seed_journal(state_dir: Path, inbox: Path, remote_ids: list[str]) -> None:
    """Every document ``processing`` at the longest poll interval, polls spread."""
    journal = SqliteJournal(state_dir / "journal.sqlite3")
    journal.add_discovered(files.scan(inbox))
    journal.close()

    now = time.time()
    paths = sorted(inbox.glob("*.pdf"))
    rows = [
        (
            remote_id,
            hashlib.sha256(path.read_bytes()).hexdigest(),
            now - 3600,
            now - 3600,
            MAX_INTERVAL,
            now + random.uniform(0, MAX_INTERVAL),
            now,
            path.name,
        )
        for path, remote_id in zip(paths, remote_ids, strict=True)
    ]
    db = sqlite3.connect(state_dir / "journal.sqlite3")
    with db:
        db.executemany(
            "UPDATE documents SET stage = 'processing', remote_id = ?, sha256 = ?,"
            " pages = 1, stable_at = ?, uploaded_at = ?, poll_interval = ?,"
            " not_before = ?, remote_state = 'in_progress', updated_at = ?"
            " WHERE path = ?",
            rows,
        )
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--window", type=float, default=330.0, help="seconds")
    parser.add_argument("--warm-up", type=float, default=20.0, help="seconds")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="syncd-bench-idle-"))
    flags = ["--processing-seconds", "1e9", "--latency-ms", str(args.latency_ms)]
    flags += ["--po", f"{PURCHASE_ORDER}:{10 * args.documents}"]
    try:
        with SimulatorProcess(root, *flags) as sim:
            seed_backlog(sim.base_url, root / "syncd", args.documents)
            config = write_config(root / "syncd", sim.base_url)

            daemon = DaemonProcess(config, "run", sample_seconds=1.0)
            daemon.wait_ready()
            ready_after = time.time() - daemon.started
            time.sleep(args.warm_up)
            requests_before = api_requests(sim.stats())
            cpu_before = daemon.cpu_seconds() or 0.0
            window_started = time.time()
            time.sleep(args.window)
            cpu = (daemon.cpu_seconds() or 0.0) - cpu_before
            window = time.time() - window_started
            requests = api_requests(sim.stats()) - requests_before
            stats = sim.stats()
            code = daemon.stop()
        if code != 0:
            raise RuntimeError(f"syncd run exited {code}; see {daemon.log_path}")
    finally:
        shutil.rmtree(root, ignore_errors=True)

    in_window = [
        (wall, seconds)
        for wall, seconds in daemon.samples
        if window_started <= wall <= window_started + window
    ]
    busiest = max(
        (
            (later[1] - earlier[1]) / (later[0] - earlier[0])
            for earlier, later in zip(in_window, in_window[10:], strict=False)
        ),
        default=0.0,
    )
    cpu_percent = 100 * cpu / window
    per_hour = requests * 3600 / window
    expected = args.documents * 3600 / MAX_INTERVAL
    figures = {
        "documents": args.documents,
        "remote_states": stats.get("files"),
        "ready_after_seconds": round(ready_after, 1),
        "window_seconds": round(window, 1),
        "cpu_seconds": round(cpu, 2),
        "cpu_percent": round(cpu_percent, 2),
        "busiest_10s_cpu_percent": round(100 * busiest, 1),
        "requests_in_window": requests,
        "requests_per_hour_measured": round(per_hour),
        "requests_per_hour_expected": round(expected),
        "peak_rss_mib": round(daemon.peak_rss_kib / 1024, 1),
        "target_cpu_percent": TARGET_CPU_PERCENT,
        "target_met": cpu_percent < TARGET_CPU_PERCENT,
    }
    for key, value in figures.items():
        print(f"  {key}: {value}")
    save_result(f"idle-{args.documents}", figures)
    print_row(
        [
            f"Idle, {args.documents:,} documents processing (poll 30 -> 900 s)",
            f"{cpu_percent:.2f}% CPU over {window:.0f} s",
            f"{per_hour:,.0f} requests/hour measured, {expected:,.0f} expected",
            f"< {TARGET_CPU_PERCENT:g}% CPU",
        ]
    )


if __name__ == "__main__":
    main()
