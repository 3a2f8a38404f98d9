"""Large file: one 1 GiB PDF up and down again, with syncd's peak memory.

The PDF is written to disk in 1 MiB chunks (``write_pdf``: a valid PDF
whose bulk is a stream of zeros). The simulator accepts it with
``--max-upload-mb`` raised, and syncd with ``upload.max_file_mb`` raised.
syncd's peak resident memory is read twice: VmHWM sampled from
/proc/PID/status while it runs, and ``ru_maxrss`` of the reaped child.

    .venv/bin/python -m bench.large_file
    .venv/bin/python -m bench.large_file --size-mib 2048
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

from bench.common import (
    DaemonProcess,
    SimulatorProcess,
    journal_rows,
    print_row,
    save_result,
    write_config,
)
from syncd.simulator.samples import write_pdf

MIB = 1024 * 1024
TARGET_MIB = 150


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    size = args.size_mib * MIB
    limit_mb = args.size_mib + 64

    root = Path(tempfile.mkdtemp(prefix="syncd-bench-large-"))
    try:
        (root / "syncd" / "inbox").mkdir(parents=True)
        source = root / "syncd" / "inbox" / "large.pdf"
        started = time.perf_counter()
        write_pdf(source, size)
        print(f"wrote {args.size_mib} MiB PDF in {time.perf_counter() - started:.1f} s")

        flags = ["--processing-seconds", "0", "--max-upload-mb", str(limit_mb)]
        with SimulatorProcess(root, *flags) as sim:
            config = write_config(
                root / "syncd",
                sim.base_url,
                upload={"max_file_mb": limit_mb},
                watch={"settle_seconds": 0.5},
                poll={"interval_seconds": 0.5, "max_interval_seconds": 2},
            )
            daemon = DaemonProcess(config, "once", sample_seconds=0.05)
            code = daemon.wait(timeout=3600)
            elapsed = time.time() - daemon.started
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if code != 0:
            raise RuntimeError(f"syncd once exited {code}; see {daemon.log_path}")
        (row,) = journal_rows(
            root / "syncd" / "state",
            "SELECT stage, stable_at, uploaded_at, completed_at, finished_at,"
            " outbox_path, discovered_at FROM documents",
        )
        result_size = Path(row[5]).stat().st_size
    finally:
        shutil.rmtree(root, ignore_errors=True)

    # ru_maxrss covers every child reaped so far: the simulator too, so the
    # sampled VmHWM of syncd's own process is the figure that counts.
    peak_mib = daemon.peak_rss_kib / 1024
    figures = {
        "size_mib": args.size_mib,
        "stage": row[0],
        "seconds": round(elapsed, 1),
        "settle_and_check_seconds": round(row[1] - row[6], 1),
        "upload_seconds": round(row[2] - row[1], 1),
        "completed_to_delivered_seconds": round(row[4] - row[3], 1),
        "result_size_mib": round(result_size / MIB, 1),
        "syncd_peak_rss_mib": round(peak_mib, 1),
        "children_max_ru_maxrss_mib": round(children / 1024, 1),
        "target_mib": TARGET_MIB,
        "target_met": peak_mib < TARGET_MIB,
    }
    for key, value in figures.items():
        print(f"  {key}: {value}")
    save_result(f"large-file-{args.size_mib}", figures)
    print_row(
        [
            f"Large file, {args.size_mib:,} MiB PDF up and down",
            f"peak RSS {peak_mib:.0f} MiB ({figures['seconds']} s end to end)",
            f"upload {figures['upload_seconds']} s, download and archive"
            f" {figures['completed_to_delivered_seconds']} s",
            f"< {TARGET_MIB} MB RSS",
        ]
    )


if __name__ == "__main__":
    main()
