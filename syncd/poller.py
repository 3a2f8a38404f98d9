"""Learning when the service is done with a document.

Processing can take minutes (automatic) or days (human fixers), so each
document is polled with its own backoff, from ``poll.interval_seconds`` up to
``poll.max_interval_seconds``, and every request goes through the client's
shared rate limit. While signed webhooks arrive, polling is only a slow
safety net at the longest interval; a webhook makes its document due at once.

The poller only marks a document ``downloadable`` (or ``failing``); it never
downloads. A webhook racing the poller is harmless: both only make the
document due, and the stage moves once.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, ClassVar

from syncd.errors import PermanentError
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
        return max(4, self.context.settings.upload.concurrency)

    async def step(self, doc: Document) -> None:
        assert doc.remote_id is not None
        journal = self.context.journal
        record = await self.context.api.get_file(doc.remote_id)
        if record is None:
            raise PermanentError(
                "remote_missing",
                f"the service no longer knows record {doc.remote_id}"
                " (deleted in the dashboard?)",
            )

        if record.outcome == "completed":
            journal.advance(doc, Stage.DOWNLOADABLE, remote_state=record.state)
            log.info(
                "document.completed",
                doc=doc.id,
                file=doc.path,
                remote_id=doc.remote_id,
                processing_seconds=_since(doc.uploaded_at, self.context.clock()),
            )
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


def _since(start: float | None, now: float) -> float | None:
    return None if start is None else round(now - start, 1)
