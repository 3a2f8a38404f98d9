"""systemd's notify protocol: readiness, status, watchdog and stopping."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
import uuid
from typing import TYPE_CHECKING

import pytest
from structlog.testing import capture_logs

from syncd.api import ApiClient
from syncd.daemon import Daemon, journal_path
from syncd.journal import SqliteJournal, Stage
from syncd.notify import Notifier, status_text, stuck_parts, supervise
from syncd.notify import watchdog_seconds as read_watchdog
from syncd.purchase_orders import PurchaseOrderBook
from syncd.simulator.samples import make_pdf
from syncd.watcher import Settler, Watcher
from syncd.workers import Context, Runner
from tests.harness import Tree, make_settings, wait_until
from tests.service.helpers import DaemonProcess, NotifySocket, write_config

if TYPE_CHECKING:
    from pathlib import Path

    from syncd.simulator import Simulator

NAMES = [f"doc-{index}.pdf" for index in range(6)]


@pytest.fixture(params=["path", "abstract"])
def notify_socket(request: pytest.FixtureRequest, tmp_path: Path) -> NotifySocket:
    if request.param == "path":
        address = str(tmp_path / "notify.sock")
    else:
        address = f"@syncd-test-{uuid.uuid4().hex}"
    sock = NotifySocket(address)
    request.addfinalizer(sock.close)
    return sock


def test_notifier_does_nothing_without_a_socket() -> None:
    notifier = Notifier.from_environ({})

    assert not notifier.enabled
    assert notifier.send("READY=1") is False


def test_notifier_reaches_path_and_abstract_sockets(
    notify_socket: NotifySocket,
) -> None:
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": notify_socket.address})

    assert notifier.send("STATUS=hello", "READY=1")

    notify_socket.wait_for("READY", timeout=5)
    assert notify_socket.messages() == [{"STATUS": "hello", "READY": "1"}]


def test_reloading_brackets_the_work_with_reloading_and_ready(
    notify_socket: NotifySocket,
) -> None:
    notifier = Notifier(notify_socket.address)

    with notifier.reloading():
        pass

    notify_socket.wait_for("READY", timeout=5)
    first, second = notify_socket.messages()
    assert first["RELOADING"] == "1"
    now_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert 0 < int(first["MONOTONIC_USEC"]) <= now_usec
    assert second == {"READY": "1"}


def test_watchdog_interval_comes_from_watchdog_usec_for_this_process_only() -> None:
    mine = str(os.getpid())

    assert read_watchdog({"WATCHDOG_USEC": "2000000"}) == 2.0
    assert read_watchdog({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": mine}) == 2.0
    assert read_watchdog({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}) is None
    assert read_watchdog({"WATCHDOG_USEC": "0"}) is None
    assert read_watchdog({"WATCHDOG_USEC": "soon"}) is None
    assert read_watchdog({}) is None


def test_status_counts_documents_per_group_of_stages() -> None:
    counts = {
        Stage.DISCOVERED: 10,
        Stage.STABLE: 2,
        Stage.CREATING: 1,
        Stage.UPLOADING: 2,
        Stage.PROCESSING: 40,
        Stage.DOWNLOADABLE: 1,
        Stage.DELIVERED: 1021,
        Stage.FAILING: 1,
        Stage.FAILED: 1,
    }

    assert status_text(counts) == (
        "12 waiting, 3 uploading, 40 processing, 1 downloading, "
        "1021 delivered, 2 failed"
    )
    assert status_text({}, api_answered=False).endswith(
        "; the API has not answered yet, documents wait"
    )


class _Beater:
    """Keeps a runner's heartbeat fresh, as its loop would, until paused."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.beating = True

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            if self.beating:
                self.runner.last_beat = time.monotonic()
            await asyncio.sleep(0.02)


def _idle_daemon(simulator: Simulator, tree: Tree) -> Daemon:
    """A daemon set up as ``run`` would, with its runners' loops not started."""
    settings = make_settings(simulator, tree)
    daemon = Daemon(settings)
    journal = SqliteJournal(journal_path(settings))
    api = ApiClient(settings.api)
    book = PurchaseOrderBook(api, journal)
    daemon.journal = journal
    daemon.context = Context(settings, journal, api, book)
    daemon.runners = [Runner(Settler(daemon.context))]
    daemon.ready.set()
    return daemon


def test_watchdog_pings_stop_while_a_worker_is_stuck_and_resume_after(
    simulator: Simulator, tree: Tree, notify_socket: NotifySocket
) -> None:
    daemon = _idle_daemon(simulator, tree)
    (runner,) = daemon.runners
    beater = _Beater(runner)
    interval = 0.4

    async def scenario() -> list[dict[str, object]]:
        notifier = Notifier(notify_socket.address)
        tasks = [
            asyncio.create_task(supervise(daemon, notifier, interval)),
            asyncio.create_task(beater.run(daemon.stopping)),
        ]
        with capture_logs() as logs:
            await _until(lambda: notify_socket.count("WATCHDOG") >= 2)

            beater.beating = False
            runner.last_beat = time.monotonic() - 3600
            await _until(lambda: _named(logs, "systemd.watchdog_withheld"))
            pings_when_stuck = notify_socket.count("WATCHDOG")
            # Three whole ping intervals with the worker stuck: no ping.
            await _until(lambda: False, timeout=3 * interval / 2, expect=False)
            assert notify_socket.count("WATCHDOG") == pings_when_stuck

            beater.beating = True
            await _until(lambda: notify_socket.count("WATCHDOG") > pings_when_stuck)
            daemon.stop()
            await asyncio.gather(*tasks)
        return logs

    try:
        logs = asyncio.run(scenario())
    finally:
        assert daemon.context is not None
        asyncio.run(daemon.context.api.aclose())
        daemon.context.journal.close()

    (withheld,) = _named(logs, "systemd.watchdog_withheld")
    assert withheld["stuck"] == ["worker settler"]
    assert _named(logs, "systemd.watchdog_resumed")
    notify_socket.wait_for("STOPPING", timeout=5)


def test_a_dead_watcher_counts_as_stuck(simulator: Simulator, tree: Tree) -> None:
    daemon = _idle_daemon(simulator, tree)
    assert daemon.context is not None
    watcher = Watcher(daemon.settings, daemon.context.journal)
    daemon.watcher = watcher
    try:
        now = time.monotonic()
        assert stuck_parts(daemon, now, 1.0) == []

        watcher.start()
        assert stuck_parts(daemon, now, 1.0) == []
        watcher.stop()
        assert stuck_parts(daemon, now, 1.0) == ["watcher"]
        assert stuck_parts(daemon, now + 5, 1.0) == ["worker settler", "watcher"]
    finally:
        asyncio.run(daemon.context.api.aclose())
        daemon.context.journal.close()


def test_service_lifecycle_notifies_ready_status_watchdog_and_stopping(
    simulator: Simulator, tree: Tree, notify_socket: NotifySocket
) -> None:
    for name in NAMES[:2]:
        tree.drop(name)
    config = tree.root / "config.yaml"
    write_config(config, simulator, tree)
    env = {"NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": "2000000"}

    with DaemonProcess(config, tree.root, env) as daemon:
        notify_socket.wait_for("READY")
        # Readiness comes after the start-up work: the journal exists and
        # the files already in the inbox were recorded by the first scan.
        assert (tree.root / "state" / "journal.sqlite3").exists()
        ready = next(m for m in notify_socket.messages() if m.get("READY") == "1")
        assert ready["STATUS"].startswith("2 waiting,")
        assert notify_socket.messages().index(ready) == 0

        wait_until(lambda: len(tree.listing(tree.outbox)) == 2, what="delivery")
        notify_socket.wait_for(
            "STATUS",
            "0 waiting, 0 uploading, 0 processing, "
            "0 downloading, 2 delivered, 0 failed",
        )
        notify_socket.wait_for("WATCHDOG", count=3, timeout=10)
        code = daemon.stop(timeout=15)

    assert code == 0
    messages = notify_socket.messages()
    assert messages[-1] == {"STOPPING": "1"}
    pings = [at for at, fields in notify_socket.timed() if "WATCHDOG" in fields]
    gaps = [later - earlier for earlier, later in itertools.pairwise(pings)]
    # Half of WATCHDOG_USEC, with room for a busy test machine.
    assert all(0.5 <= gap <= 1.9 for gap in gaps), gaps


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"]
)
def test_a_stop_signal_mid_run_loses_no_document_across_a_restart(
    simulator: Simulator, tree: Tree, notify_socket: NotifySocket, signum: int
) -> None:
    config = tree.root / "config.yaml"
    write_config(config, simulator, tree)
    env = {"NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": "2000000"}
    # Distinct content, so that no document reuses another's result.
    for name in NAMES:
        tree.drop(name, data=make_pdf(1, marker=name))

    with DaemonProcess(config, tree.root, env) as first:
        notify_socket.wait_for("READY")
        wait_until(lambda: simulator.creates() >= 1, what="a first upload")
        stopped_at = time.monotonic()
        code = first.stop(timeout=15, signum=signum)
        stop_seconds = time.monotonic() - stopped_at
    delivered_before = tree.listing(tree.outbox)

    assert code == 0
    assert stop_seconds < 10, "must stop well within TimeoutStopSec=30"
    assert notify_socket.count("STOPPING") == 1
    assert len(delivered_before) < len(NAMES), "stop came too late to test"

    with DaemonProcess(config, tree.root, env) as second:
        notify_socket.wait_for("READY", count=2)
        wait_until(
            lambda: tree.listing(tree.outbox) == sorted(NAMES),
            timeout=60,
            what="every document in the outbox",
        )
        assert second.stop(timeout=15) == 0

    assert tree.listing(tree.archive) == sorted(NAMES)
    assert tree.listing(tree.failed) == []
    assert simulator.creates() == len(NAMES)


def _named(logs: list[dict[str, object]], event: str) -> list[dict[str, object]]:
    return [entry for entry in logs if entry.get("event") == event]


async def _until(condition: object, timeout: float = 10, expect: bool = True) -> None:
    """Wait on the loop until ``condition()`` holds (or, ``expect=False``, the end).

    With ``expect=False`` the whole ``timeout`` passes and the condition must
    never have held: a bounded wait for something that must not happen.
    """
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            if expect:
                raise AssertionError(f"timed out after {timeout}s")
            return
        await asyncio.sleep(0.02)
    if not expect:
        raise AssertionError("the condition held, but must not")
