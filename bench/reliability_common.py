"""What the reliability suites share: a folder tree, a corpus, the daemon as a
process, a simulator that can go away and come back, and the final audit.

The suites (``chaos.py``, ``faults.py``, ``outage.py``) run syncd exactly as
an operator would, ``python -m syncd run`` or ``once`` in a child process,
against the bundled simulator on loopback. Every wait has a deadline, so a
suite that goes wrong fails with a message instead of hanging.

The audit (:func:`audit`) is the contract every suite checks at the end:
each dropped file is delivered or failed with a reason, outbox files are
whole PDFs equal to the service's result byte for byte, one remote record per
distinct content, a sound journal and no temporary files left behind.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pypdf

from bench import common
from bench.common import API_KEY, ROOT
from syncd.simulator import Simulator
from syncd.simulator.samples import make_pdf

WEBHOOK_SECRET = "bench-webhook-secret"
WEBHOOK_PATH = "/webhooks/accessibledocs"
WEBHOOKS_API = "/v1/admin/company/webhooks"
JOURNAL = "journal.sqlite3"
# Every tenth of a second is enough to see a process come up or work finish.
POLL_SECONDS = 0.1


def machine() -> str:
    """One line naming the hardware and software the figures were taken on."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        first = Path("/proc/meminfo").read_text().splitlines()[0]
        memory = f", {int(first.split()[1]) / 1048576:.0f} GiB RAM"

    return (
        f"{cpu}, {os.cpu_count()} CPUs{memory}, Linux {platform.release()},"
        f" Python {platform.python_version()}"
    )


@dataclasses.dataclass
class Layout:
    """The folders of one run, all below ``root``."""

    root: Path

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def failed(self) -> Path:
        return self.root / "failed"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def log(self) -> Path:
        return self.root / "daemon.log"

    @property
    def journal(self) -> Path:
        return self.state / JOURNAL

    def make(self) -> Layout:
        self.inbox.mkdir(parents=True, exist_ok=True)
        return self


@contextlib.contextmanager
def workspace(keep: Path | None = None) -> Any:
    """A fresh ``Layout``: in ``keep`` when given (left for a post-mortem)."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield Layout(keep).make()
        return
    with tempfile.TemporaryDirectory(prefix="syncd-reliability-") as scratch:
        yield Layout(Path(scratch)).make()


@dataclasses.dataclass(frozen=True)
class Item:
    """One file of the corpus: where it is dropped and what it holds."""

    name: str
    data: bytes


def make_corpus(count: int, duplicate_every: int = 50) -> list[Item]:
    """``count`` distinct PDFs in ten folders; every ``duplicate_every``th
    repeats an earlier file's content under its own name (reused, not billed).
    """
    items: list[Item] = []
    for index in range(count):
        name = f"batch-{index % 10}/doc-{index:04}.pdf"
        if duplicate_every and index and index % duplicate_every == 0:
            data = items[index - 1].data
        else:
            data = make_pdf(1 + index % 4, marker=name)
        items.append(Item(name, data))

    return items


def distinct_contents(items: list[Item]) -> int:
    return len({item.data for item in items})


def drop(layout: Layout, items: list[Item]) -> None:
    """Write ``items`` into the inbox the way a copy over SMB does: in place."""
    for item in items:
        path = layout.inbox / item.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(item.data)


def write_config(
    layout: Layout,
    sim: Simulator,
    *,
    port: int | None,
    poll_seconds: float = 0.5,
    max_poll_seconds: float = 2.0,
    concurrency: int = 4,
) -> Path:
    """A configuration for ``sim``; with ``port``, the webhook listens there.

    Registration is done once by :func:`register_webhook`, not by the
    daemon: the faults suite switches faults on only after it, so that a
    failed registration cannot turn the run into a polling-only one.
    """
    sections: dict[str, dict[str, Any]] = {
        "api": {"timeout_seconds": 10},
        "upload": {"concurrency": concurrency},
        "watch": {"settle_seconds": 0.3, "rescan_seconds": 2},
        "poll": {
            "interval_seconds": poll_seconds,
            "max_interval_seconds": max_poll_seconds,
        },
    }
    if port is not None:
        sections["http"] = {"listen": f"127.0.0.1:{port}"}
        sections["webhook"] = {"enabled": True, "secret": WEBHOOK_SECRET}

    return common.write_config(layout.root, sim.base_url, **sections)


def register_webhook(sim: Simulator, port: int) -> None:
    url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    response = httpx.post(
        sim.base_url + WEBHOOKS_API,
        json={"event": "file_processed", "url": url},
        headers={"x-api-key": API_KEY},
        timeout=10,
    )
    response.raise_for_status()


def syncd_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "syncd", *args]


class DaemonProcess:
    """``syncd run`` as a child process, its output appended to the run's log."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.process: subprocess.Popen[bytes] | None = None
        self._ready_before = 0

    def start(self) -> None:
        self._ready_before = self._ready_lines()
        with self.layout.log.open("ab") as log:
            self.process = subprocess.Popen(
                syncd_command("run", "-c", str(self.layout.config)),
                stdout=log,
                stderr=log,
                cwd=ROOT,
            )

    def _ready_lines(self) -> int:
        if not self.layout.log.exists():
            return 0
        return self.layout.log.read_bytes().count(b'"daemon.ready"')

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self._ready_lines() <= self._ready_before:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"syncd exited early:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"syncd not ready after {timeout}s:\n{self.tail()}")
            time.sleep(POLL_SECONDS / 2)

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed, nothing is closed."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self._reap()

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait, as systemd stops the service."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        code = self.process.returncode if self.process is not None else None
        self._reap()

        return code

    def _reap(self) -> None:
        if self.process is not None:
            self.process.wait(30)
            self.process = None

    def tail(self, chars: int = 4000) -> str:
        if not self.layout.log.exists():
            return ""
        return self.layout.log.read_text(errors="replace")[-chars:]


def run_once(layout: Layout, timeout: float) -> tuple[int, float]:
    """``syncd once``: its exit code and the seconds it took."""
    started = time.monotonic()
    with layout.log.open("ab") as log:
        finished = subprocess.run(
            syncd_command("once", "-c", str(layout.config), "--timeout", str(timeout)),
            stdout=log,
            stderr=log,
            cwd=ROOT,
            timeout=timeout + 60,
            check=False,
        )

    return finished.returncode, time.monotonic() - started


def journal_rows(layout: Layout) -> list[dict[str, Any]]:
    """Every row of the journal, read beside a running (or killed) daemon."""
    if not layout.journal.exists():
        return []
    db = sqlite3.connect(layout.journal, timeout=10)
    try:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM documents")]
    finally:
        db.close()


def stage_counts(layout: Layout) -> dict[str, int]:
    return dict(collections.Counter(row["stage"] for row in journal_rows(layout)))


def steps_in_flight(layout: Layout) -> dict[str, int]:
    """Stages whose documents were leased by a step: what a kill interrupted."""
    now = time.time()
    rows = journal_rows(layout)
    return dict(
        collections.Counter(row["stage"] for row in rows if row["lease_until"] > now)
    )


def live(layout: Layout) -> int:
    return sum(
        1 for row in journal_rows(layout) if row["stage"] not in ("delivered", "failed")
    )


def wait_for(condition: Any, timeout: float, what: str) -> float:
    """Wait until ``condition()`` holds; return the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(POLL_SECONDS)

    return time.monotonic() - started


@dataclasses.dataclass
class Audit:
    """What the final check found; ``problems`` is empty when all held."""

    delivered: int = 0
    failed: int = 0
    reasons: dict[str, int] = dataclasses.field(default_factory=dict)
    creates: int = 0
    distinct: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def audit(layout: Layout, sim: Simulator, items: list[Item]) -> Audit:
    """Check the end state of a run against everything a user may rely on."""
    found = Audit(distinct=distinct_contents(items))
    problems = found.problems
    latest: dict[str, dict[str, Any]] = {}
    for row in sorted(journal_rows(layout), key=lambda row: row["id"]):
        latest[row["path"]] = row
    outbox_expected: set[Path] = set()
    for item in items:
        row = latest.get(item.name)
        if row is None:
            problems.append(f"{item.name}: never recorded in the journal")
            continue
        if row["stage"] == "delivered":
            found.delivered += 1
            outbox_expected.add(Path(row["outbox_path"]))
            problems.extend(_check_delivered(item, row, sim))
        elif row["stage"] == "failed":
            found.failed += 1
            reason = _failure_reason(row)
            found.reasons[reason] = found.reasons.get(reason, 0) + 1
            if reason == "missing":
                problems.append(f"{item.name}: failed without an .error.json")
        else:
            problems.append(f"{item.name}: still {row['stage']} at the end")

    extra = sorted(
        path.relative_to(layout.outbox).as_posix()
        for path in _files(layout.outbox)
        if path not in outbox_expected
    )
    if extra:
        problems.append(f"outbox files no delivery accounts for: {extra[:5]}")
    leftovers = [
        path.relative_to(layout.root).as_posix()
        for folder in (layout.outbox, layout.archive, layout.failed)
        for path in folder.rglob(".syncd-*.part")
    ]
    if leftovers:
        problems.append(f"temporary files left behind: {leftovers[:5]}")
    pending = [p.name for p in _files(layout.inbox) if p.suffix == ".pdf"]
    if pending:
        problems.append(f"PDFs still in the inbox: {pending[:5]}")
    found.creates = sim.creates()
    uploaded = found.distinct - found.reasons.get("too_large", 0)
    if found.creates != uploaded:
        problems.append(
            f"{found.creates} remote records for {uploaded} distinct documents"
        )
    if sim.leaks():
        problems.append(f"{sim.leaks()} storage requests carried the API key")
    integrity = _integrity(layout)
    if integrity != "ok":
        problems.append(f"journal integrity_check: {integrity}")

    return found


def _check_delivered(item: Item, row: dict[str, Any], sim: Simulator) -> list[str]:
    outbox = Path(row["outbox_path"] or "")
    if not outbox.is_file():
        return [f"{item.name}: delivered but {outbox} is missing"]
    data = outbox.read_bytes()
    problems = []
    try:
        if data != sim.result_bytes(row["remote_id"]):
            problems.append(f"{item.name}: outbox bytes differ from the result")
    except (KeyError, ValueError) as exc:
        problems.append(f"{item.name}: no result for {row['remote_id']}: {exc}")
    try:
        if not pypdf.PdfReader(outbox).pages:
            problems.append(f"{item.name}: outbox PDF has no pages")
    except Exception as exc:
        problems.append(f"{item.name}: outbox file is not a PDF: {exc}")
    archived = Path(row["final_path"] or "")
    if not archived.is_file() or archived.read_bytes() != item.data:
        problems.append(f"{item.name}: original not in the archive as dropped")

    return problems


def _failure_reason(row: dict[str, Any]) -> str:
    report = Path(str(row["final_path"]) + ".error.json")
    try:
        return str(json.loads(report.read_text())["reason"])
    except (OSError, ValueError, KeyError):
        return "missing"


def _files(folder: Path) -> list[Path]:
    if not folder.exists():
        return []
    return [path for path in folder.rglob("*") if path.is_file()]


def _integrity(layout: Layout) -> str:
    db = sqlite3.connect(layout.journal, timeout=10)
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


class OutageSimulator(Simulator):
    """A simulator whose servers can be stopped and started again, state kept.

    Stopping closes both listening sockets, so requests are refused the way
    they are when the service is down; the records, purchase orders,
    webhooks and stored bytes stay in memory and the servers come back on
    the same ports. Deliveries waiting to be retried are dropped, as a
    restarted service would drop them; the ones for records finishing while
    the servers are down go out once they are back.
    """

    def go_down(self) -> None:
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None or loop is None or stop is None:
            raise RuntimeError("the simulator is not running")
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)
        if thread.is_alive():
            raise RuntimeError("the simulator servers did not stop")
        runtime = self._running()
        for sock in runtime._sockets:
            sock.close()
        self._thread = self._loop = self._stop = None
        self._ready.clear()

    def come_back(self) -> None:
        runtime = self._running()
        ports = [
            int(url.rsplit(":", 1)[1]) for url in (self.base_url, self.storage_url)
        ]
        runtime._sockets = [_bind(self.options.host, port) for port in ports]
        self._thread = threading.Thread(
            target=self._thread_main, name="syncd-simulator", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(15) or self._failure is not None:
            raise RuntimeError(f"the simulator did not come back: {self._failure!r}")


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))

    return sock


def markdown(title: str, rows: list[tuple[str, str]]) -> str:
    """A small Markdown table for the README's "Reliability" section."""
    lines = [f"#### {title}", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]

    return "\n".join(lines)


def print_report(title: str, rows: list[tuple[str, str]], problems: list[str]) -> None:
    width = max(len(name) for name, _ in rows)
    print(f"\n== {title} ==")
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}")
    for problem in problems[:20]:
        print(f"  PROBLEM: {problem}")
    if len(problems) > 20:
        print(f"  ... and {len(problems) - 20} more problems")
    print("\nMarkdown for the README's Reliability section:\n")
    print(markdown(title, rows))
