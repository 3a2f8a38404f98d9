"""The ``syncd simulator`` command: flags, start-up banner, clean stop."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from syncd.simulator.cli import add_arguments, options_from, run

ROOT = Path(__file__).resolve().parents[2]


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_flags_become_options() -> None:
    options = options_from(
        _parse(
            "--port",
            "0",
            "--api-key",
            "k",
            "--processing-seconds",
            "0.5",
            "--download-mode",
            "redirect",
            "--no-idempotency",
            "--webhook-secret",
            "s",
            "--fault-500-rate",
            "0.1",
            "--fault-429-rate",
            "0.2",
            "--drop-rate",
            "0.05",
            "--truncate-rate",
            "0.05",
            "--latency-ms",
            "20",
            "--rate-limit",
            "50",
            "--po",
            "PO-A:10",
            "--po",
            "PO-B:20",
            "--non-admin",
            "--retry-after-form",
            "date",
            "--expire-upload-urls",
        )
    )

    assert options.api_key == "k"
    assert options.storage_port == 0
    assert options.download_mode == "redirect"
    assert options.honour_idempotency is False
    assert options.admin is False
    assert options.latency_seconds == 0.02
    assert options.rate_limit_per_second == 50
    assert [(po.number, po.pages) for po in options.purchase_orders] == [
        ("PO-A", 10),
        ("PO-B", 20),
    ]
    assert options.expire_upload_urls is True


def test_storage_port_defaults_to_the_next_port() -> None:
    assert options_from(_parse("--port", "9100")).storage_port == 9101


def test_unusable_flags_exit_78_before_listening(capsys) -> None:
    status = run(_parse("--port", "0", "--fault-500-rate", "3"))

    assert status == 78
    assert "error_rate" in capsys.readouterr().err


def test_command_prints_where_it_listens_serves_and_stops_on_sigint() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "syncd.simulator", "--port", "0", "--api-key", "k"]
    with subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        banner = []
        # The banner ends with the Ctrl-C hint; readline blocks until then, and
        # the timer kills a process that never prints it.
        watchdog = threading.Timer(20, process.kill)
        watchdog.start()
        try:
            for line in process.stdout:
                banner.append(line)
                if line.startswith("Press Ctrl-C"):
                    break
        finally:
            watchdog.cancel()
        text = "".join(banner)
        base_url = re.search(r"API base URL:\s+(\S+)", text)
        assert base_url, text
        assert "PO-2026-014" in text
        assert "API key:         k" in text

        response = httpx.get(
            base_url.group(1) + "/v1/user/purchase-orders", headers={"x-api-key": "k"}
        )
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=20)

    assert response.status_code == 200
    assert process.returncode == 0, errors
