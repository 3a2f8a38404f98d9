"""Busy: new files uploaded beside a large backlog, at the default rate limit.

With 10,000 documents being processed, their polls alone ask for about 11
requests a second, more than the default ``api.max_requests_per_second``
(10). New files must still go up promptly: routine polls yield to uploads
and downloads at the rate limit. The benchmark seeds the backlog as
``bench.idle`` does (every document ``processing`` at the 900 s interval),
starts ``syncd run`` with the rate limit at 10 a second, drops
``--new`` files into ``inbox/new/`` after a warm-up, and times them from the
drop until the journal records the last upload.

The bound: each new file needs one rate-limited request to be created (its
bytes go to the storage host, outside the limit), so 200 files take at least
20 s, plus settling.

    .venv/bin/python -m bench.busy
    .venv/bin/python -m bench.busy --documents 10000 --new 200
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from bench.common import (
    PURCHASE_ORDER,
    DaemonProcess,
    SimulatorProcess,
    drop_documents,
    journal_rows,
    print_row,
    save_result,
    wait_for,
    write_config,
)
from bench.idle import seed_backlog

RATE_LIMIT = 10
SETTLE_SECONDS = 1.0
UPLOADED = (
    "SELECT COUNT(*) FROM documents WHERE path LIKE 'new/%' AND uploaded_at IS NOT NULL"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--new", type=int, default=200)
    parser.add_argument("--warm-up", type=float, default=20.0, help="seconds")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="syncd-bench-busy-"))
    flags = ["--processing-seconds", "1e9", "--latency-ms", str(args.latency_ms)]
    flags += ["--po", f"{PURCHASE_ORDER}:{10 * (args.documents + args.new)}"]
    try:
        with SimulatorProcess(root, *flags) as sim:
            inbox = seed_backlog(sim.base_url, root / "syncd", args.documents)
            state = root / "syncd" / "state"
            config = write_config(
                root / "syncd",
                sim.base_url,
                api={"max_requests_per_second": RATE_LIMIT},
                watch={"settle_seconds": SETTLE_SECONDS},
            )

            daemon = DaemonProcess(config, "run", sample_seconds=1.0)
            daemon.wait_ready()
            time.sleep(args.warm_up)
            dropped = time.time()
            drop_documents(inbox / "new", args.new, prefix="new")
            done = wait_for(
                lambda: journal_rows(state, UPLOADED)[0][0] >= args.new,
                timeout=60 + 10 * args.new / RATE_LIMIT,
                what="the new files to be uploaded",
                step=0.5,
            )
            code = daemon.stop()
        if code != 0:
            raise RuntimeError(f"syncd run exited {code}; see {daemon.log_path}")
    finally:
        shutil.rmtree(root, ignore_errors=True)

    seconds = done - dropped
    bound = SETTLE_SECONDS + args.new / RATE_LIMIT
    figures = {
        "documents_processing": args.documents,
        "new_documents": args.new,
        "rate_limit": RATE_LIMIT,
        "drop_to_last_upload_seconds": round(seconds, 1),
        "bound_seconds": round(bound, 1),
    }
    for key, value in figures.items():
        print(f"  {key}: {value}")
    save_result(f"busy-{args.documents}-{args.new}", figures)
    print_row(
        [
            f"{args.new} new files beside {args.documents:,} being processed,"
            f" {RATE_LIMIT} requests/s limit",
            f"all uploaded {seconds:.1f} s after the drop",
            f"the rate limit's bound: {bound:.0f} s",
            "",
        ]
    )


if __name__ == "__main__":
    main()
