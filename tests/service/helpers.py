"""Tools for the service tests: a fake systemd notify socket, a daemon process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tests.harness import API_KEY, Tree, _merge, wait_until

if TYPE_CHECKING:
    from syncd.simulator import Simulator

ROOT = Path(__file__).resolve().parents[2]


class NotifySocket:
    """A datagram socket standing in for systemd's, recording every message.

    ``address`` is what ``$NOTIFY_SOCKET`` should hold: a path, or ``@name``
    for the abstract namespace.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        bound = "\0" + address[1:] if address.startswith("@") else address
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(bound)
        self._sock.settimeout(0.1)
        self._messages: list[tuple[float, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._closing.is_set():
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(
                line.split("=", 1) for line in data.decode().splitlines() if line
            )
            with self._lock:
                self._messages.append((time.monotonic(), fields))

    def messages(self) -> list[dict[str, str]]:
        with self._lock:
            return [fields for _, fields in self._messages]

    def timed(self) -> list[tuple[float, dict[str, str]]]:
        with self._lock:
            return list(self._messages)

    def count(self, name: str, value: str = "1") -> int:
        return sum(1 for fields in self.messages() if fields.get(name) == value)

    def wait_for(
        self, name: str, value: str = "1", count: int = 1, timeout: float = 30
    ) -> None:
        wait_until(
            lambda: self.count(name, value) >= count,
            timeout=timeout,
            what=f"{count} x {name}={value} (got {self.messages()})",
        )

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=5)
        self._sock.close()
        if not self.address.startswith("@"):
            Path(self.address).unlink(missing_ok=True)


def write_config(
    path: Path, sim: Simulator, tree: Tree, **sections: Any
) -> dict[str, Any]:
    """Write a fast test configuration as YAML; ``sections`` override parts."""
    data: dict[str, Any] = {
        "api": {
            "base_url": sim.base_url,
            "key": API_KEY,
            "max_requests_per_second": None,
            "timeout_seconds": 10,
        },
        "folders": {
            "inbox": str(tree.inbox),
            "outbox": str(tree.outbox),
            "archive": str(tree.archive),
            "failed": str(tree.failed),
        },
        "state_dir": str(tree.root / "state"),
        "upload": {"purchase_order": "PO-2026-014"},
        "watch": {
            "settle_seconds": 0.2,
            "rescan_seconds": 1,
            "polling_interval_seconds": 0.2,
            "give_up_after_seconds": 5,
        },
        "poll": {"interval_seconds": 0.2, "max_interval_seconds": 1},
        "http": {"listen": None},
        "logging": {"level": "debug", "format": "json"},
    }
    merged = _merge(data, sections)
    path.write_text(yaml.safe_dump(merged))

    return merged


class DaemonProcess:
    """``python -m syncd run -c FILE`` as a child process, output kept in files."""

    def __init__(
        self, config: Path, workdir: Path, env: dict[str, str] | None = None
    ) -> None:
        self.config = config
        self.workdir = workdir
        self.extra_env = env or {}
        self.stdout_path = workdir / f"stdout-{time.monotonic_ns()}.log"
        self.stderr_path = self.stdout_path.with_name(
            self.stdout_path.name.replace("stdout", "stderr")
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> DaemonProcess:
        env = {
            key: value
            for key, value in os.environ.items()
            if key
            not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM")
        }
        env.update(self.extra_env)
        env["PYTHONPATH"] = str(ROOT)
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "syncd", "run", "-c", str(self.config)],
                stdout=out,
                stderr=err,
                env=env,
                cwd=self.workdir,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def signal(self, signum: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def output(self) -> str:
        return self.stdout_path.read_text(
            errors="replace"
        ) + self.stderr_path.read_text(errors="replace")

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (others, like tracebacks, skipped)."""
        found = []
        for line in self.output().splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return found

    def event(self, name: str) -> list[dict[str, Any]]:
        return [entry for entry in self.events() if entry.get("event") == name]

    def wait_for_event(self, name: str, count: int = 1, timeout: float = 30) -> None:
        def seen() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"the daemon exited ({self.process.returncode}) before "
                    f"{name!r}:\n{self.output()}"
                )
            return len(self.event(name)) >= count

        wait_until(seen, timeout=timeout, what=f"log event {name!r}")

    def stop(self, timeout: float = 15, signum: int | None = None) -> int:
        """SIGTERM (or ``signum``), then the exit code; fails after ``timeout``."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM if signum is None else signum)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"the daemon did not stop within {timeout}s:\n{self.output()}"
            ) from None

    def __enter__(self) -> DaemonProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
