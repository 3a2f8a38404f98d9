"""The daemon: opens the journal, starts the watcher and the workers, stops cleanly.

Start-up resumes every document from its stage: leases of the previous
process are released and temporary files it left in the output folders are
removed; nothing else needs repairing, because every step commits its stage
before it counts as done.

Workers never call each other. Each commit in the journal wakes the worker of
the stage it moved a document into; data flows one way, from the inbox to the
outbox, failed/ or the archive.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

from syncd import files, notify
from syncd.api import ApiClient
from syncd.config import load_settings
from syncd.downloader import Downloader
from syncd.errors import ConfigError, ExitCode, TransientError
from syncd.finisher import Finisher
from syncd.journal import Journal, SqliteJournal, Stage
from syncd.listener import HttpServer, open_server, register_at_start
from syncd.logs import configure_logging, get_logger, register_secret
from syncd.poller import Poller, Sweeper
from syncd.purchase_orders import PurchaseOrderBook, configured_references
from syncd.uploader import Uploader
from syncd.watcher import Settler, Watcher
from syncd.workers import Context, Runner

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from syncd.config import Settings

log = get_logger(__name__)

JOURNAL_NAME = "journal.sqlite3"
STOP_GRACE_SECONDS = 8.0  # within systemd's stop timeout, with room to spare
# Settings a reload (SIGHUP) leaves alone: the API client, the journal, the
# HTTP listener's socket and routes and the webhook registration are made
# from them once at start, and the inbox's observer and the documents in
# flight are tied to the inbox they were found in.
RESTART_ONLY = (
    "api",
    "state_dir",
    "http.listen",
    "http.tls_cert_file",
    "http.tls_key_file",
    "webhook.enabled",
    "webhook.path",
    "webhook.public_url",
    "webhook.register",
    "folders.inbox",
    "watch.mode",
    "watch.polling_interval_seconds",
)


def journal_path(settings: Settings) -> Path:
    return settings.state_dir / JOURNAL_NAME


class Daemon:
    """One syncd process: use ``run`` for the service, ``once`` for a batch."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.clock = clock
        self.stopping = asyncio.Event()
        self.journal: Journal | None = None
        self.context: Context | None = None
        self.watcher: Watcher | None = None
        self.runners: list[Runner] = []
        self.api_reachable = False
        self.http: HttpServer | None = None
        self.ready = asyncio.Event()
        self.notifier = notify.Notifier.from_environ()

    @property
    def http_port(self) -> int | None:
        """The port the HTTP listener bound (useful with port 0), once started."""
        return self.http.port if self.http is not None else None

    def stop(self) -> None:
        """Stop taking new work; steps in flight finish or stop at a safe point."""
        if not self.stopping.is_set():
            log.info("daemon.stopping")
            self.stopping.set()

    async def run(
        self, *, once: bool = False, timeout: float | None = None
    ) -> ExitCode:
        """Run until stopped (or, with ``once``, until the inbox is done).

        Returns the exit code; raises ``ConfigError`` or ``AuthError`` when
        the configuration or the key cannot work.
        """
        settings = self.settings
        started = self.clock()
        journal = SqliteJournal(journal_path(settings), clock=self.clock)
        self.journal = journal
        api = ApiClient(settings.api)
        tasks: list[asyncio.Task[None]] = []
        try:
            self._recover(journal)
            book = PurchaseOrderBook(api, journal, clock=self.clock)
            await self._check_service(book)
            self.context = Context(settings, journal, api, book, clock=self.clock)
            self.runners = [
                Runner(worker(self.context))
                for worker in (Settler, Uploader, Poller, Downloader, Finisher)
            ]
            self._connect_wakeups(journal)
            self.watcher = Watcher(settings, journal)
            tasks = self._start_tasks(book, once)
            await asyncio.to_thread(self.watcher.scan)
            self.ready.set()
            log.info(
                "daemon.ready",
                mode="once" if once else "run",
                live=journal.live_count(),
            )
            code = ExitCode.OK
            if once:
                code = await self._until_done(journal, started, timeout)
                self.stop()
            await asyncio.gather(*tasks)
        finally:
            # Reached early only when start-up failed or the run was
            # cancelled: whatever started must not outlive the journal.
            self.stopping.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.http is not None:
                self.http.close()
            if self.watcher is not None:
                self.watcher.stop()
            await api.aclose()
            journal.close()
            log.info("daemon.stopped")

        return code

    def _recover(self, journal: Journal) -> None:
        released = journal.release_all_leases()
        folders = self.settings.folders
        removed = sum(
            files.remove_temporaries(folder)
            for folder in (folders.outbox, folders.failed, folders.archive)
            if folder is not None
        )
        if released or removed:
            log.info("daemon.recovered", resumed=released, temporaries_removed=removed)

    async def _check_service(self, book: PurchaseOrderBook) -> None:
        """Read the purchase orders: proves the key, and that the POs exist.

        A service that does not answer at start is not fatal: documents wait
        and are retried, and the purchase orders are read again later.
        """
        try:
            await book.refresh()
        except TransientError as exc:
            log.warning("api.unreachable", error=str(exc))
            return
        self.api_reachable = True
        book.require(configured_references(self.settings))

    def _connect_wakeups(self, journal: Journal) -> None:
        loop = asyncio.get_running_loop()
        by_stage = {
            stage: runner for runner in self.runners for stage in runner.worker.stages
        }

        loop_thread = threading.get_ident()

        def wake(stage: Stage) -> None:
            runner = by_stage.get(stage)
            if runner is None:
                return
            # Most commits happen on the loop's own thread, where a direct
            # set() spares a write to the loop's self-pipe and a wakeup.
            if threading.get_ident() == loop_thread:
                runner.wake.set()
            else:
                loop.call_soon_threadsafe(runner.wake.set)

        journal.subscribe(wake)

    def _start_tasks(
        self, book: PurchaseOrderBook, once: bool
    ) -> list[asyncio.Task[None]]:
        assert self.watcher is not None and self.context is not None
        # Bound first: a port in use must fail the start before any task runs.
        if self.settings.http.listen is not None:
            self.http = open_server(self)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, self.stop)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, self.reload)
        tasks = [
            asyncio.create_task(runner.run(self.stopping, STOP_GRACE_SECONDS))
            for runner in self.runners
        ]
        tasks.append(asyncio.create_task(book.keep_fresh(self.stopping)))
        sweeper = Sweeper(self.context)
        tasks.append(asyncio.create_task(sweeper.run(self.stopping)))
        watchdog = notify.watchdog_seconds()
        tasks.append(
            asyncio.create_task(notify.supervise(self, self.notifier, watchdog))
        )
        if self.http is not None:
            tasks.append(asyncio.create_task(self.http.serve(self.stopping)))
            webhook = self.settings.webhook
            if webhook.register and webhook.public_url:
                register = register_at_start(self.context.api, webhook.public_url)
                tasks.append(asyncio.create_task(register))
        if not once:
            self.watcher.start()
            tasks.append(
                asyncio.create_task(self.watcher.rescan_forever(self.stopping))
            )

        return tasks

    def reload(self) -> None:
        """Read the configuration file again (SIGHUP) and apply what may change.

        A file with problems is refused and the running settings stay. Of a
        good file, the keys in ``RESTART_ONLY`` keep their running values,
        with a warning that they need a restart; the rest takes effect at
        each worker's next step.
        """
        with self.notifier.reloading():
            self._reload()

    def _reload(self) -> None:
        old = self.settings
        if old.source is None:
            log.error("config.reload_refused", problems=["no configuration file"])
            return
        try:
            new = load_settings(old.source)
        except ConfigError as exc:
            log.error(
                "config.reload_refused", file=str(old.source), problems=exc.problems
            )
            return

        # Before anything can log them.
        register_secret(new.api.key)
        if new.webhook.secret:
            register_secret(new.webhook.secret)
        held = [path for path in RESTART_ONLY if _at(old, path) != _at(new, path)]
        for path in held:
            new = _with_value(new, path, _at(old, path))
        changed = [
            field.name
            for field in dataclasses.fields(new)
            if field.name != "source"
            and getattr(old, field.name) != getattr(new, field.name)
        ]

        if new.logging != old.logging:
            configure_logging(new.logging.level, new.logging.format)
        self.settings = new
        if self.context is not None:
            self.context.settings = new
        if self.watcher is not None:
            self.watcher.update_settings(new)
        if held:
            log.warning("config.restart_needed", keys=held)
        log.info("config.reloaded", file=str(new.source), changed=changed)

    async def _until_done(
        self, journal: Journal, started: float, timeout: float | None
    ) -> ExitCode:
        deadline = None if timeout is None else time.monotonic() + timeout
        while journal.live_count():
            if self.stopping.is_set():
                return ExitCode.TEMPFAIL
            if deadline is not None and time.monotonic() >= deadline:
                log.warning("once.timed_out", pending=journal.live_count())
                return ExitCode.TEMPFAIL
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=0.2)
        failed = [
            doc
            for doc in journal.recent(Stage.FAILED, limit=100_000)
            if (doc.finished_at or 0) >= started
        ]
        log.info("once.done", failed=len(failed))

        return ExitCode.SOME_FAILED if failed else ExitCode.OK


def _at(settings: Settings, path: str) -> object:
    return functools.reduce(getattr, path.split("."), settings)


def _with_value(settings: Any, path: str, value: object) -> Any:
    """A copy of ``settings`` with the dotted ``path`` set to ``value``."""
    name, _, rest = path.partition(".")
    if rest:
        value = _with_value(getattr(settings, name), rest, value)

    return dataclasses.replace(settings, **{name: value})
