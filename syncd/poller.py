"""Learning when the service is done with a document.

Processing can take minutes (automatic) or days (human fixers), so each
document is polled with its own backoff, from ``poll.interval_seconds`` up to
``poll.max_interval_seconds``, and every request goes through the client's
shared rate limit. While signed webhooks arrive, polling is only a slow
safety net at the longest interval; a webhook makes its document due at once.

The poller only marks a document ``downloadable`` (or ``failing``); it never
downloads. A webhook racing the poller is harmless: both only make the
document due, and the stage moves once.

Beside the per-document polls, the ``Sweeper`` reads the service's list of
completed records, newest first: one request answers for up to a hundred
documents, so a busy inbox is not polled one document at a time. The list
by state is an assumption of the API client, so the sweep only moves
documents on sooner; every document keeps its own poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import TYPE_CHECKING, ClassVar

from syncd.api import epoch
from syncd.errors import AuthError, PermanentError, TransientError
from syncd.journal import Document, Stage
from syncd.logs import get_logger
from syncd.workers import Worker

if TYPE_CHECKING:
    from syncd.workers import Context

log = get_logger(__name__)

BACKOFF_FACTOR = 2.0
# Webhooks count as arriving while the last one is this recent, measured in
# longest poll intervals.
WEBHOOK_QUIET_INTERVALS = 2.0
# The sweep runs twice per first poll interval, so that it finds most
# documents before their own first poll falls due.
SWEEP_EVERY_INTERVALS = 0.5
# Each sweep reads back this far past the newest record the last one saw, for
# records whose update the service commits out of order.
SWEEP_OVERLAP_SECONDS = 1.0
SWEEP_MAX_PAGES = 10
# Polls are taken in batches: each wakeup also takes the documents falling
# due within this share of the first poll interval (at most a second). Ten
# thousand documents at the longest interval fall due about eleven a second;
# waking for each one on its own costs more than twice the CPU per poll that
# waking for a batch of them does (measured against the simulator).
POLL_BATCH_FRACTION = 0.05
POLL_BATCH_MAX_SECONDS = 1.0
# Polls are small reads; enough of them run at once for a whole batch. All
# of them still share the client's rate limit, where they yield to uploads
# and downloads.
POLL_CONCURRENCY = 16


class Poller(Worker):
    """Reads each processing document's record; marks it done or failed."""

    name: ClassVar[str] = "poller"
    stages: ClassVar[tuple[Stage, ...]] = (Stage.PROCESSING,)

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        # States outside the contract's list, each logged once.
        self._unknown_states: set[str] = set()

    @property
    def concurrency(self) -> int:
        return max(POLL_CONCURRENCY, self.context.settings.upload.concurrency)

    @property
    def claim_ahead(self) -> float:
        interval = self.context.settings.poll.interval_seconds
        return min(POLL_BATCH_MAX_SECONDS, interval * POLL_BATCH_FRACTION)

    async def step(self, doc: Document) -> None:
        assert doc.remote_id is not None
        journal = self.context.journal
        record = await self.context.api.get_file(doc.remote_id, background=True)
        if record is None:
            raise PermanentError(
                "remote_missing",
                f"the service no longer knows record {doc.remote_id}"
                " (deleted in the dashboard?)",
            )

        if record.outcome == "completed":
            journal.advance(doc, Stage.DOWNLOADABLE, remote_state=record.state)
            _log_completed(doc, self.context.clock(), "poll")
            return
        if record.outcome == "failed":
            detail = f": {record.comments}" if record.comments else ""
            raise PermanentError(
                "rejected_by_service",
                f"AccessibleDocs could not process the document (state"
                f" {record.state}, refunded {str(record.refunded).lower()}){detail}",
            )

        if not record.known_state and record.state not in self._unknown_states:
            self._unknown_states.add(record.state)
            log.warning("api.unknown_state", state=record.state, remote_id=record.id)
        interval = self._next_interval(doc)
        journal.reschedule(
            doc,
            not_before=self.context.clock() + interval,
            poll_interval=interval,
            remote_state=record.state,
        )

    def _next_interval(self, doc: Document) -> float:
        poll = self.context.settings.poll
        now = self.context.clock()
        seen = self.context.webhook_seen_at
        if (
            seen is not None
            and now - seen < poll.max_interval_seconds * WEBHOOK_QUIET_INTERVALS
        ):
            interval = poll.max_interval_seconds
        else:
            previous = doc.poll_interval or poll.interval_seconds
            interval = min(previous * BACKOFF_FACTOR, poll.max_interval_seconds)
        # Spread the polls of documents uploaded together.
        return interval * random.uniform(0.9, 1.1)  # noqa: S311 - jitter, not crypto


class Sweeper:
    """Finds finished documents in the service's list of completed records.

    A service that refuses the list (any answer but a transient error)
    stops the sweep for this run, logged once; the per-document polls go on.
    """

    def __init__(self, context: Context) -> None:
        self.context = context
        # ``updatedAt`` of the newest completed record seen, by the service's
        # clock; None until the first sweep.
        self._newest: float | None = None

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            if self.context.journal.next_due(Poller.stages) is not None:
                try:
                    await self.sweep()
                except TransientError as exc:
                    log.debug("poll.sweep_failed", error=str(exc))
                except (PermanentError, AuthError) as exc:
                    log.warning(
                        "poll.sweep_unavailable",
                        error=str(exc),
                        detail="each document is polled on its own",
                    )
                    return
            wait = self.context.settings.poll.interval_seconds * SWEEP_EVERY_INTERVALS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=wait)

    async def sweep(self) -> int:
        """Read the completed records changed since the last sweep; count moves."""
        since = None if self._newest is None else self._newest - SWEEP_OVERLAP_SECONDS
        records = await self.context.api.changed_since(
            "completed", since, SWEEP_MAX_PAGES
        )
        if records:
            newest = max(epoch(record.updated_at) for record in records)
            self._newest = max(newest, self._newest or newest)
        done = [record.id for record in records if record.outcome == "completed"]
        moved = self.context.journal.complete_remote(done)
        now = self.context.clock()
        for doc in moved:
            _log_completed(doc, now, "list")

        return len(moved)


def _log_completed(doc: Document, now: float, seen_in: str) -> None:
    log.info(
        "document.completed",
        doc=doc.id,
        file=doc.path,
        remote_id=doc.remote_id,
        processing_seconds=_since(doc.uploaded_at, now),
        seen_in=seen_in,
    )


def _since(start: float | None, now: float) -> float | None:
    return None if start is None else round(now - start, 1)
