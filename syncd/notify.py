"""Telling systemd how the daemon is doing: the sd_notify protocol.

systemd hands a ``Type=notify`` service the address of a datagram socket in
``$NOTIFY_SOCKET``; each datagram is a few ``NAME=value`` lines
(sd_notify(3)). Outside systemd the variable is unset and nothing is sent.
A few lines of socket code do what libsystemd would, without the dependency.

``supervise`` runs beside the workers and sends:

- ``READY=1`` once the daemon is ready: the journal is open, the watcher
  runs and the inbox was scanned. It is sent even when the API did not answer
  at start, and ``STATUS=`` says so: the service itself is working (files are
  found and wait), the API is retried, and a service that never reports
  ready would be killed and restarted by systemd after ``TimeoutStartSec=``,
  which heals nothing;
- ``STATUS=`` with the number of documents per stage, when it changes;
- ``WATCHDOG=1`` every half of ``$WATCHDOG_USEC``, but only while every
  worker has looked at the journal within the watchdog interval and the
  watcher's observer is alive, so systemd restarts a daemon that hangs
  rather than one that merely exists;
- ``STOPPING=1`` as soon as the daemon is told to stop.

``Notifier.reloading`` wraps a configuration reload in ``RELOADING=1`` and
``READY=1``, as systemd expects around ``ExecReload=``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from typing import TYPE_CHECKING

from syncd.journal import Stage
from syncd.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from syncd.daemon import Daemon

log = get_logger(__name__)

# How often the status is looked at; it is sent only when it changed.
STATUS_TICK_SECONDS = 1.0
# Counts are read again this often even without a commit, for changes the
# journal does not announce (a document forgotten because its file vanished).
STATUS_REFRESH_SECONDS = 10.0

# What STATUS= shows, in pipeline order: a name and the stages it counts.
_STATUS_GROUPS = (
    ("waiting", (Stage.DISCOVERED, Stage.STABLE)),
    ("uploading", (Stage.CREATING, Stage.UPLOADING)),
    ("processing", (Stage.PROCESSING,)),
    ("downloading", (Stage.DOWNLOADABLE, Stage.DOWNLOADED)),
    ("delivered", (Stage.DELIVERED,)),
    ("failed", (Stage.FAILING, Stage.FAILED)),
)


class Notifier:
    """Sends sd_notify messages to one address; does nothing without one.

    Each message opens its own socket, as libsystemd does: messages are rare,
    and no socket is left to close when the daemon stops.
    """

    def __init__(self, address: str | None) -> None:
        self.address = address or None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """The notifier for ``$NOTIFY_SOCKET`` (``os.environ`` by default)."""
        environ = os.environ if environ is None else environ

        return cls(environ.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *lines: str) -> bool:
        """Send ``NAME=value`` lines as one datagram; tell whether it went.

        A failure is logged, never raised: losing touch with systemd must not
        stop the work (the watchdog, if any, then restarts the service).
        """
        if self.address is None:
            return False

        # A leading "@" names a socket in the abstract namespace, which the
        # kernel spells with a leading NUL byte (unix(7)).
        target = self.address
        if target.startswith("@"):
            target = "\0" + target[1:]
        message = "\n".join(lines).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message, target)
        except OSError as exc:
            log.warning("systemd.notify_failed", address=self.address, error=str(exc))
            return False

        return True

    @contextlib.contextmanager
    def reloading(self) -> Iterator[None]:
        """Wrap a reload: ``RELOADING=1`` before it, ``READY=1`` after it.

        ``MONOTONIC_USEC`` lets systemd tell this reload from an earlier one;
        ``Type=notify-reload`` requires it, and plain ``notify`` accepts it.
        """
        now_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={now_usec}")
        try:
            yield
        finally:
            self.send("READY=1")


def watchdog_seconds(environ: Mapping[str, str] | None = None) -> float | None:
    """The watchdog interval systemd asked for, in seconds; None when off.

    ``$WATCHDOG_PID``, when set, names the process the watchdog is meant for;
    any other process (a child that inherited the environment) ignores it.
    """
    environ = os.environ if environ is None else environ
    pid = environ.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None

    return usec / 1_000_000 if usec > 0 else None


def status_text(counts: Mapping[Stage, int], *, api_answered: bool = True) -> str:
    """The ``STATUS=`` text: documents per stage, and whether the API answers.

    >>> status_text({Stage.DISCOVERED: 2, Stage.DELIVERED: 5})
    '2 waiting, 0 uploading, 0 processing, 0 downloading, 5 delivered, 0 failed'
    """
    text = ", ".join(
        f"{sum(counts.get(stage, 0) for stage in stages)} {name}"
        for name, stages in _STATUS_GROUPS
    )
    if not api_answered:
        text += "; the API has not answered yet, documents wait"

    return text


def stuck_parts(daemon: Daemon, now: float, limit: float) -> list[str]:
    """Name what has not checked in within ``limit`` seconds of ``now``.

    ``now`` is ``time.monotonic()``. Workers beat each time they look at the
    journal (at least every second when idle); the watcher counts once it
    was started and while its observer thread lives.
    """
    stuck = [
        f"worker {runner.worker.name}"
        for runner in daemon.runners
        if now - runner.last_beat > limit
    ]
    watcher = daemon.watcher
    if watcher is not None and watcher.mode != "none" and not watcher.alive:
        stuck.append("watcher")

    return stuck


async def supervise(
    daemon: Daemon, notifier: Notifier, watchdog: float | None = None
) -> None:
    """Report readiness, status, liveness and stopping until the daemon stops.

    Args:
        daemon: The daemon to report on; this waits for its ``ready`` event.
        notifier: Where messages go.
        watchdog: The watchdog interval in seconds (``watchdog_seconds()``);
            None sends no ``WATCHDOG=1``.
    """
    if not notifier.enabled:
        return

    await _first_of(daemon.ready, daemon.stopping)
    if daemon.stopping.is_set():
        notifier.send("STOPPING=1")
        return

    assert daemon.context is not None
    journal = daemon.context.journal
    book = daemon.context.purchase_orders
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def note_change(_stage: Stage) -> None:
        # Called on the committing thread, which may be the watcher's.
        loop.call_soon_threadsafe(changed.set)

    journal.subscribe(note_change)

    status = status_text(journal.counts(), api_answered=book.refreshed_at is not None)
    notifier.send("READY=1", f"STATUS={status}")
    log.info("systemd.ready", watchdog_seconds=watchdog)

    tick = STATUS_TICK_SECONDS if watchdog is None else min(1.0, watchdog / 2)
    next_ping = time.monotonic()
    next_refresh = time.monotonic() + STATUS_REFRESH_SECONDS
    withheld = False
    while not daemon.stopping.is_set():
        now = time.monotonic()
        if changed.is_set() or now >= next_refresh:
            changed.clear()
            next_refresh = now + STATUS_REFRESH_SECONDS
            answered = book.refreshed_at is not None
            latest = status_text(journal.counts(), api_answered=answered)
            if latest != status:
                status = latest
                notifier.send(f"STATUS={status}")
        if watchdog is not None and now >= next_ping:
            next_ping = now + watchdog / 2
            withheld = _ping(daemon, notifier, now, watchdog, withheld)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(daemon.stopping.wait(), timeout=tick)

    notifier.send("STOPPING=1")


def _ping(
    daemon: Daemon, notifier: Notifier, now: float, limit: float, withheld: bool
) -> bool:
    """Send ``WATCHDOG=1`` if nothing is stuck; tell whether it was withheld."""
    stuck = stuck_parts(daemon, now, limit)
    if stuck:
        # Once per episode: the line says why systemd is about to restart us.
        if not withheld:
            log.error("systemd.watchdog_withheld", stuck=stuck, limit_seconds=limit)
        return True

    if withheld:
        log.info("systemd.watchdog_resumed")
    notifier.send("WATCHDOG=1")

    return False


async def _first_of(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
