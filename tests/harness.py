"""Shared test tools: a folder tree, settings for a fast run, ways to run the daemon."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from syncd.config import Settings, parse_settings
from syncd.daemon import Daemon
from syncd.errors import ExitCode
from syncd.simulator import Simulator
from syncd.simulator.samples import make_pdf

API_KEY = "test-key"


@dataclasses.dataclass
class Tree:
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

    def drop(self, name: str, data: bytes | None = None, pages: int = 1) -> Path:
        """Put a file into the inbox: ``data``, else a PDF of its own content."""
        path = self.inbox / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make_pdf(pages, marker=name) if data is None else data)
        return path

    def listing(self, folder: Path) -> list[str]:
        if not folder.exists():
            return []
        return sorted(
            path.relative_to(folder).as_posix()
            for path in folder.rglob("*")
            if path.is_file()
        )


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def make_settings(sim: Simulator, tree: Tree, **sections: Any) -> Settings:
    """Settings for a fast test run; ``sections`` override parts of them."""
    data: dict[str, Any] = {
        "api": {
            "base_url": sim.base_url,
            "key": API_KEY,
            "max_requests_per_second": None,
            "timeout_seconds": 10,
        },
        "folders": {
            "inbox": "inbox",
            "outbox": "outbox",
            "archive": "archive",
            "failed": "failed",
        },
        "state_dir": "state",
        "upload": {"purchase_order": "PO-2026-014"},
        "watch": {
            "settle_seconds": 0.2,
            "rescan_seconds": 1,
            "polling_interval_seconds": 0.2,
            "give_up_after_seconds": 3,
        },
        "poll": {"interval_seconds": 0.2, "max_interval_seconds": 1},
        "http": {"listen": None},
        "logging": {"level": "debug"},
    }
    return parse_settings(_merge(data, sections), base_dir=tree.root, environ={})


def run_once(settings: Settings, timeout: float = 60) -> ExitCode:
    return asyncio.run(Daemon(settings).run(once=True, timeout=timeout))


def wait_until(
    condition: Callable[[], bool], timeout: float = 30, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


class BackgroundDaemon:
    """``syncd run`` in a thread of the test process, stopped on exit."""

    def __init__(self, settings: Settings) -> None:
        self.daemon = Daemon(settings)
        self.code: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)
        self.error: BaseException | None = None

    def _main(self) -> None:
        async def body() -> int:
            self._loop = asyncio.get_running_loop()
            return await self.daemon.run()

        try:
            self.code = asyncio.run(body())
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> BackgroundDaemon:
        self._thread.start()
        wait_until(
            lambda: (
                self.error is not None
                or (self._loop is not None and self.daemon.ready.is_set())
            ),
            what="the daemon to be ready",
        )
        if self.error:
            raise self.error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self.daemon.stop)
        self._thread.join(timeout=20)
        assert not self._thread.is_alive(), "the daemon did not stop"

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        if self.error:
            raise self.error
