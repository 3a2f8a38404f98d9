"""What every pipeline worker shares: its context and the loop that runs it.

A worker handles documents in some stages of the journal. ``Runner`` claims
due documents, runs ``Worker.step`` on each (up to ``concurrency`` at once),
and turns what a step raised into the document's next move: a transient error
reschedules it with a backoff, a permanent one sends it to ``failing`` with
its reason. This is the one place where a broad ``except`` stands, so that
one document's trouble never stops the others.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import random
import time
from typing import TYPE_CHECKING, ClassVar

from syncd.errors import AuthError, PermanentError, TransientError
from syncd.journal import Document, Stage, StaleDocument
from syncd.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable

    from syncd.api import ApiClient
    from syncd.config import Settings
    from syncd.journal import Journal
    from syncd.purchase_orders import PurchaseOrderBook

log = get_logger(__name__)

# A worker that is idle still looks at the journal this often, which is also
# its heartbeat for the health check and the systemd watchdog.
IDLE_WAKE_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 300.0
BACKOFF_GROWTH = 1.6
AUTH_BACKOFF_SECONDS = 60.0


@dataclasses.dataclass
class Context:
    """What the workers share. ``settings`` is swapped on reload."""

    settings: Settings
    journal: Journal
    api: ApiClient
    purchase_orders: PurchaseOrderBook
    clock: Callable[[], float] = time.time
    # When the last signed webhook arrived; polling slows down while they do.
    webhook_seen_at: float | None = None


def backoff(attempts: int) -> float:
    """Seconds before retry ``attempts`` of a step: jittered, capped.

    A quarter to half a second after the first failure, growing by 1.6 each
    time up to five minutes: a flaky service is retried at once, and one
    that is down for an hour is asked a few dozen times per document, not
    thousands.
    """
    ceiling = min(MAX_BACKOFF_SECONDS, 0.5 * BACKOFF_GROWTH ** min(attempts, 20))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not crypto


class Worker(abc.ABC):
    """One kind of step: takes documents in ``stages``, commits their next stage."""

    name: ClassVar[str]
    stages: ClassVar[tuple[Stage, ...]]

    def __init__(self, context: Context) -> None:
        self.context = context

    @property
    def concurrency(self) -> int:
        return 4

    @property
    def claim_ahead(self) -> float:
        """Seconds before its due time a document may be taken with others.

        Whenever the runner wakes for a due document, it also takes those
        falling due this soon after it, so that documents due one by one
        are handled in batches.
        """
        return 0.0

    @abc.abstractmethod
    async def step(self, doc: Document) -> None:
        """Do one step for ``doc`` and commit its next stage in the journal."""

    def current(self, doc: Document) -> Document | None:
        """``doc`` as it is now, if it is still in one of this worker's stages.

        A step may have moved its document on (keeping the lease) before it
        failed; what follows applies to the stage it reached. A document
        that left this worker's stages belongs to another step now.
        """
        now = self.context.journal.get(doc.id)
        if now is None or now.stage not in self.stages:
            return None
        return now


class Runner:
    """Runs one worker until told to stop.

    It sleeps until the journal announces work in the worker's stages, a
    step ends, or the next rescheduled document falls due.
    """

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.wake = asyncio.Event()
        self.last_beat = time.monotonic()
        self.in_flight = 0

    async def run(self, stopping: asyncio.Event, grace_seconds: float = 8.0) -> None:
        journal = self.worker.context.journal
        running: set[asyncio.Task[None]] = set()
        # One task for the whole run, not two per sleep: stopping, a step
        # that ends and the journal's announcements all set ``wake``.
        stop_waker = asyncio.create_task(self._wake_when(stopping))
        try:
            while not stopping.is_set():
                self.last_beat = time.monotonic()
                self.wake.clear()
                running = {task for task in running if not task.done()}
                free = self.worker.concurrency - len(running)
                if free > 0 and self._work_is_due():
                    claimed = journal.claim(
                        self.worker.stages, free, ahead=self.worker.claim_ahead
                    )
                    for doc in claimed:
                        task = asyncio.create_task(self._step(doc))
                        task.add_done_callback(self._step_done)
                        running.add(task)
                self.in_flight = len(running)
                await self._sleep(len(running))
        finally:
            stop_waker.cancel()

        await self._finish(running, grace_seconds)

    def _work_is_due(self) -> bool:
        """Whether a claim would find anything: a read, where a claim writes."""
        due = self.worker.context.journal.next_due(self.worker.stages)
        return due is not None and due <= self.worker.context.clock()

    async def _wake_when(self, stopping: asyncio.Event) -> None:
        await stopping.wait()
        self.wake.set()

    def _step_done(self, _task: asyncio.Task[None]) -> None:
        self.wake.set()

    async def _sleep(self, running: int) -> None:
        """Wait for ``wake``, or until the next document falls due."""
        timeout = IDLE_WAKE_SECONDS
        if running < self.worker.concurrency:
            due = self.worker.context.journal.next_due(self.worker.stages)
            if due is not None:
                wait = due - self.worker.context.clock()
                timeout = min(timeout, max(wait, 0.005))
        if self.wake.is_set():
            return
        timer = asyncio.get_running_loop().call_later(timeout, self.wake.set)
        try:
            await self.wake.wait()
        finally:
            timer.cancel()

    async def _finish(self, running: set[asyncio.Task[None]], grace: float) -> None:
        """Let steps in flight end, then cancel the rest at a safe point.

        Every step commits its stage before it is done, so a cancelled step is
        simply resumed from its stage on the next start.
        """
        if not running:
            return
        _, pending = await asyncio.wait(running, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
            log.warning(
                "worker.cancelled_steps", worker=self.worker.name, count=len(pending)
            )

    async def _step(self, doc: Document) -> None:
        bound = log.bind(doc=doc.id, file=doc.path, worker=self.worker.name)
        try:
            await self.worker.step(doc)
        except StaleDocument:
            bound.debug("document.stale", stage=doc.stage)
        except PermanentError as exc:
            bound.warning("document.failing", reason=exc.reason, error=str(exc))
            self._fail(doc, exc.reason, str(exc))
        except AuthError as exc:
            bound.error("api.key_refused", error=str(exc))
            self._retry_later(doc, AUTH_BACKOFF_SECONDS)
        except TransientError as exc:
            wait = max(backoff(doc.attempts), exc.retry_after or 0.0)
            bound.warning(
                "document.retry",
                stage=doc.stage,
                attempts=doc.attempts + 1,
                wait=round(wait, 1),
                error=str(exc),
            )
            self._retry_later(doc, wait)
        except asyncio.CancelledError:
            raise
        # The boundary of one document's processing: whatever went wrong
        # here must not stop the worker or the other documents. The
        # traceback goes to the log and the document is tried again later.
        except Exception:  # noqa: BLE001
            bound.exception("document.step_crashed", stage=doc.stage)
            self._retry_later(doc, backoff(doc.attempts + 3))

    def _retry_later(self, doc: Document, wait: float) -> None:
        current = self.worker.current(doc)
        if current is None:
            return
        with contextlib.suppress(StaleDocument):
            self.worker.context.journal.reschedule(
                current,
                not_before=self.worker.context.clock() + wait,
                attempts=current.attempts + 1,
            )

    def _fail(self, doc: Document, reason: str, message: str) -> None:
        current = self.worker.current(doc)
        if current is None:
            return
        if current.stage is Stage.FAILING:
            # Moving a failed document failed too: try that again later.
            self._retry_later(current, backoff(current.attempts))
            return
        with contextlib.suppress(StaleDocument):
            self.worker.context.journal.advance(
                current,
                Stage.FAILING,
                error_reason=reason,
                error_message=message,
                attempts=current.attempts + 1,
            )
