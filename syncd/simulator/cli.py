"""``syncd simulator``: run the AccessibleDocs simulator in the foreground.

``add_arguments`` declares the flags on a parser the caller owns (the
``syncd`` command, or ``python -m syncd.simulator``); ``run`` starts both
origins, prints where they listen, the API key and the purchase orders, and
serves until SIGINT (Ctrl-C) or SIGTERM. Exit status 0 after a clean stop,
78 when the options or the ports are unusable.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from syncd.errors import ExitCode
from syncd.simulator.options import (
    DOWNLOAD_MODES,
    ERROR_STATUSES,
    MIB,
    RETRY_AFTER_FORMS,
    PurchaseOrder,
    SimulatorOptions,
)
from syncd.simulator.server import serve

if TYPE_CHECKING:
    import argparse

DEFAULT_PORT = 8765


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the simulator's flags on ``parser``."""
    defaults = SimulatorOptions()
    server = parser.add_argument_group("server")
    server.add_argument("--host", default=defaults.host, help="address to bind")
    server.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"API port, 0 for any free one (default {DEFAULT_PORT})",
    )
    server.add_argument(
        "--storage-port",
        type=int,
        default=None,
        help="storage (upload/download URL) port; default the API port + 1, "
        "or any free one when --port is 0",
    )
    server.add_argument("--api-key", default=defaults.api_key, help="accepted key")
    server.add_argument(
        "--non-admin",
        action="store_true",
        help="the key is not a company admin's: admin paths answer 403",
    )
    server.add_argument(
        "--storage-dir",
        type=Path,
        default=None,
        help="keep uploads here (default: a temporary folder removed on exit)",
    )
    server.add_argument(
        "--log", type=Path, default=None, help="append every request as JSON lines"
    )

    service = parser.add_argument_group("service behaviour")
    service.add_argument(
        "--processing-seconds",
        type=float,
        default=defaults.processing_seconds,
        help="time in_progress after validation (default %(default)s)",
    )
    service.add_argument(
        "--validation-seconds",
        type=float,
        default=defaults.validation_seconds,
        help="time in validation after the bytes arrive (default %(default)s)",
    )
    service.add_argument(
        "--download-mode",
        choices=DOWNLOAD_MODES,
        default=defaults.download_mode,
        help="how the download answers: the PDF, a JSON url, or a 307 redirect",
    )
    service.add_argument(
        "--no-idempotency",
        action="store_true",
        help="ignore Idempotency-Key (every create makes a new record)",
    )
    service.add_argument(
        "--upload-url-ttl",
        type=float,
        default=defaults.upload_url_ttl_seconds,
        help="seconds an upload URL stays valid (default %(default)s)",
    )
    service.add_argument(
        "--max-upload-mb",
        type=int,
        default=defaults.max_upload_bytes // MIB,
        help="largest accepted file in MiB (default %(default)s)",
    )
    service.add_argument(
        "--po",
        action="append",
        default=None,
        metavar="NUMBER:PAGES",
        help="an approved purchase order (repeatable; replaces the default "
        "PO-2026-014 with 100000 pages)",
    )
    service.add_argument(
        "--webhook-secret", default=None, help="sign webhook deliveries with it"
    )

    faults = parser.add_argument_group("faults")
    faults.add_argument("--fault-500-rate", type=float, default=0.0, metavar="R")
    faults.add_argument(
        "--fault-status",
        type=int,
        default=500,
        choices=ERROR_STATUSES,
        help="the status --fault-500-rate answers with (default 500)",
    )
    faults.add_argument("--fault-429-rate", type=float, default=0.0, metavar="R")
    faults.add_argument(
        "--retry-after-form", choices=RETRY_AFTER_FORMS, default="seconds"
    )
    faults.add_argument("--retry-after-seconds", type=int, default=1, metavar="S")
    faults.add_argument("--drop-rate", type=float, default=0.0, metavar="R")
    faults.add_argument("--lost-answer-rate", type=float, default=0.0, metavar="R")
    faults.add_argument("--truncate-rate", type=float, default=0.0, metavar="R")
    faults.add_argument("--latency-ms", type=float, default=0.0, metavar="MS")
    faults.add_argument("--latency-spike-rate", type=float, default=0.0, metavar="R")
    faults.add_argument("--latency-spike-ms", type=float, default=1000.0, metavar="MS")
    faults.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        metavar="N",
        help="answer 429 above N requests per second on each origin",
    )
    faults.add_argument(
        "--expire-upload-urls",
        action="store_true",
        help="create answers carry expired upload URLs (clients must refresh)",
    )
    faults.add_argument("--seed", type=int, default=None, help="seed for the faults")


def options_from(args: argparse.Namespace) -> SimulatorOptions:
    """Turn parsed flags into options; raise ValueError naming bad ones."""
    storage_port = args.storage_port
    if storage_port is None:
        storage_port = args.port + 1 if args.port else 0
    orders = SimulatorOptions().purchase_orders
    if args.po:
        orders = [_purchase_order(text, n) for n, text in enumerate(args.po, 1)]
    options = SimulatorOptions(
        api_key=args.api_key,
        admin=not args.non_admin,
        host=args.host,
        port=args.port,
        storage_port=storage_port,
        validation_seconds=args.validation_seconds,
        processing_seconds=args.processing_seconds,
        upload_url_ttl_seconds=args.upload_url_ttl,
        honour_idempotency=not args.no_idempotency,
        download_mode=args.download_mode,
        max_upload_bytes=args.max_upload_mb * MIB,
        purchase_orders=orders,
        webhook_secret=args.webhook_secret,
        error_rate=args.fault_500_rate,
        error_status=args.fault_status,
        rate_429=args.fault_429_rate,
        retry_after_form=args.retry_after_form,
        retry_after_seconds=args.retry_after_seconds,
        drop_rate=args.drop_rate,
        lost_answer_rate=args.lost_answer_rate,
        truncate_rate=args.truncate_rate,
        latency_seconds=args.latency_ms / 1000,
        latency_spike_rate=args.latency_spike_rate,
        latency_spike_seconds=args.latency_spike_ms / 1000,
        rate_limit_per_second=args.rate_limit,
        expire_upload_urls=args.expire_upload_urls,
        seed=args.seed,
        storage_dir=args.storage_dir,
        log_path=args.log,
    )
    problems = options.problems()
    if problems:
        raise ValueError("; ".join(problems))

    return options


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; return the process exit status."""
    try:
        options = options_from(args)
    except ValueError as exc:
        print(f"syncd simulator: {exc}", file=sys.stderr)
        return ExitCode.CONFIG

    try:
        asyncio.run(_serve_until_signalled(options))
    except OSError as exc:
        message = f"syncd simulator: cannot listen on {options.host}: {exc}"
        print(message, file=sys.stderr)
        return ExitCode.CONFIG

    return ExitCode.OK


async def _serve_until_signalled(options: SimulatorOptions) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def banner(base_url: str, storage_url: str) -> None:
        print("AccessibleDocs simulator running", flush=True)
        print(f"  API base URL:    {base_url}")
        print(f"  storage URL:     {storage_url}")
        print(f"  API key:         {options.api_key}")
        for order in options.purchase_orders:
            print(
                f"  purchase order:  {order.number} (id {order.id}, {order.status}, "
                f"{order.available_pages} pages available)"
            )
        print(f"  control surface: {base_url}/_sim/stats (test-only, no key)")
        print("Press Ctrl-C to stop.", flush=True)

    try:
        await serve(options, stop=stop, on_ready=banner)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _purchase_order(text: str, index: int) -> PurchaseOrder:
    number, _, pages = text.rpartition(":")
    if not number or not pages.isdigit():
        message = f"--po {text!r}: expected NUMBER:PAGES, e.g. PO-2026-014:5000"
        raise ValueError(message)

    return PurchaseOrder(id=f"po_{index}", number=number, pages=int(pages))
