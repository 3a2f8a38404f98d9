"""What the performance benchmarks share: processes, configs, journal, results.

Every benchmark runs the simulator and syncd as separate processes (the
real CLI, ``python -m syncd ...``), so neither steals the other's GIL and
the figures are those an operator would see. All traffic stays on
127.0.0.1.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from syncd.simulator.samples import make_pdf

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
API_KEY = "bench-key"
PURCHASE_ORDER = "PO-2026-014"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def machine() -> dict[str, Any]:
    """The machine a figure was measured on."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break

    return {
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50, p95, p99 and max (nearest rank), in seconds rounded to the ms."""
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(values)

    def rank(q: float) -> float:
        index = max(0, min(len(ordered) - 1, round(q * len(ordered)) - 1))
        return round(ordered[index], 3)

    return {
        "p50": rank(0.50),
        "p95": rank(0.95),
        "p99": rank(0.99),
        "max": round(ordered[-1], 3),
    }


def save_result(name: str, result: dict[str, Any]) -> Path:
    """Write ``result`` (with the machine) to bench/results/; return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}-{stamp}.json"
    body = {"benchmark": name, "at": stamp, "machine": machine(), **result}
    path.write_text(json.dumps(body, indent=2) + "\n")
    print(f"result written to {path.relative_to(ROOT)}")

    return path


def print_row(cells: list[str]) -> None:
    """Print one Markdown table row for the README's Performance section."""
    print()
    print("| " + " | ".join(cells) + " |")


def drop_documents(inbox: Path, count: int, prefix: str = "doc") -> float:
    """Write ``count`` distinct one-page PDFs into ``inbox``; return seconds taken.

    Each carries its own name as a marker, so no two share content and
    ``upload.duplicates: reuse`` cannot skip any.
    """
    inbox.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for index in range(count):
        name = f"{prefix}-{index:06d}.pdf"
        (inbox / name).write_bytes(make_pdf(1, marker=name))

    return time.perf_counter() - started


class SimulatorProcess:
    """``python -m syncd simulator`` in a child process, on free local ports."""

    def __init__(self, workdir: Path, *flags: str) -> None:
        self.port = free_port()
        self.storage_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._log = workdir / "simulator.log"
        command = [
            sys.executable,
            "-m",
            "syncd",
            "simulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--storage-port",
            str(self.storage_port),
            "--api-key",
            API_KEY,
            *flags,
        ]
        with self._log.open("wb") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
            )
        self._client = httpx.Client(base_url=self.base_url, timeout=30)

    def __enter__(self) -> SimulatorProcess:
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the simulator exited: {self._log.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if self._client.get("/_sim/stats").status_code == 200:
                    return self
            if time.monotonic() > deadline:
                raise RuntimeError("the simulator did not start within 30 s")
            time.sleep(0.1)

    def __exit__(self, *exc_info: object) -> None:
        self._client.close()
        stop(self.process)

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = self._client.get("/_sim/stats").json()
        return data

    def cpu_seconds(self) -> float:
        """User + system CPU time the simulator has used so far."""
        return cpu_seconds(self.process.pid) or 0.0


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid``; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1]
    except OSError:
        return None
    parts = fields.split()
    # After the command name: state is field 3, utime 14 and stime 15.
    return (int(parts[11]) + int(parts[12])) / CLOCK_TICKS


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGTERM ``process`` (by its pid), then SIGKILL if it will not go."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    return int(process.returncode)


def api_requests(stats: dict[str, Any]) -> int:
    """Requests the simulator's API and storage origins served."""
    return sum(
        int(count)
        for key, count in _count_items(stats)
        if not key.startswith("webhook-out")
    )


def _count_items(stats: dict[str, Any]) -> list[tuple[str, int]]:
    counts = stats.get("counts", {})
    if isinstance(counts, dict):
        return [
            (str(key), sum(value.values()) if isinstance(value, dict) else value)
            for key, value in counts.items()
        ]

    return [(str(item[0]), int(item[-1])) for item in counts]


def write_config(root: Path, base_url: str, **sections: dict[str, Any]) -> Path:
    """A syncd config under ``root`` against ``base_url``; ``sections`` override."""
    data: dict[str, Any] = {
        "api": {
            "base_url": base_url,
            "key": API_KEY,
            "max_requests_per_second": None,
            "timeout_seconds": 60,
        },
        "folders": {
            "inbox": "inbox",
            "outbox": "outbox",
            "archive": "archive",
            "failed": "failed",
        },
        "state_dir": "state",
        "upload": {"purchase_order": PURCHASE_ORDER},
        "http": {"listen": None},
        "logging": {"level": "info", "format": "json"},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))

    return path


class DaemonProcess:
    """``python -m syncd <command> -c <config>`` with its CPU and memory sampled.

    A sampler thread reads /proc/PID/stat (user + system CPU ticks) and
    /proc/PID/status (VmRSS, VmHWM) every ``sample_seconds``.
    """

    def __init__(
        self, config: Path, command: str = "once", sample_seconds: float = 0.2
    ) -> None:
        self.log_path = config.parent / f"syncd-{command}.log"
        self.started = time.time()
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "syncd", command, "-c", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        self.peak_rss_kib = 0
        self.samples: list[tuple[float, float]] = []  # (wall, cpu seconds)
        self._interval = sample_seconds
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float | None:
        """User + system CPU time the process has used so far."""
        return cpu_seconds(self.pid)

    def _sample(self) -> None:
        while not self._done.is_set():
            cpu = self.cpu_seconds()
            if cpu is not None:
                self.samples.append((time.time(), cpu))
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_rss_kib = max(self.peak_rss_kib, int(line.split()[1]))
            self._done.wait(self._interval)

    def wait(self, timeout: float | None = None) -> int:
        code = self.process.wait(timeout)
        self._done.set()
        self._sampler.join()

        return code

    def stop(self) -> int:
        code = stop(self.process)
        self._done.set()
        self._sampler.join()

        return code

    def running(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float = 120) -> None:
        """Wait for the ``daemon.ready`` log line, or for the process to end."""
        wait_for(
            lambda: bool(self.log_lines("daemon.ready")) or not self.running(),
            timeout=timeout,
            what="syncd to be ready",
        )

    def log_lines(self, event: str) -> list[dict[str, Any]]:
        """The JSON log lines of ``event`` the process wrote."""
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if f'"{event}"' not in line:
                continue
            with contextlib.suppress(ValueError):
                entry = json.loads(line[line.index("{") :])
                if entry.get("event") == event:
                    found.append(entry)

        return found


def journal_rows(state_dir: Path, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Rows of a read-only query on syncd's journal (safe while syncd runs)."""
    path = state_dir / "journal.sqlite3"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def wait_for(condition: Any, timeout: float, what: str, step: float = 0.05) -> float:
    """Poll ``condition()`` until true; return when it became true (epoch)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)

    return time.time()
