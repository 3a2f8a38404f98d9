"""File records, purchase orders, webhooks and the state machine behind them.

``Store`` is the single source of truth of a simulator run. The servers'
event loop and test threads both call it, so every public method takes one
lock and returns copies, never live records.

Life of a record, as the contract's "States" section describes it::

    in_progress (created, waiting for bytes)
        -> validation         bytes arrived; pages counted
        -> in_progress        pages reserved from the purchase order
        -> completed          processing_seconds later
    validation -> failed (refunded) when the PDF is unreadable or the purchase
    order cannot cover its pages

Transitions are due at fixed times after the bytes arrive. A heap holds the
next due time of each record, so ``advance`` costs nothing when nothing is
due; the server calls it every few milliseconds (webhooks fire promptly) and
every read calls it first (answers are exact even between ticks). A
transition takes effect at its due time, not at the time it is noticed, so
``updatedAt`` is the same whoever observes it first.

The contract only names the file object's fields. The shape of an entry in
``comments`` is a guess: ``{"id", "text", "author", "createdAt"}`` with
``author`` ``"user"`` for the creation comment and ``"system"`` for the
reason a record failed.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import heapq
import itertools
import secrets
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any, Literal

from syncd.simulator.replies import ApiError

if TYPE_CHECKING:
    from pathlib import Path

    from syncd.simulator.options import PurchaseOrder, SimulatorOptions
    from syncd.simulator.pdf import Analysis

AttachOutcome = Literal["taken", "same", "different", "closed"]
STATES = ("validation", "in_progress", "completed", "failed")
OWNER = {"userid": "user_sim_1", "firstName": "Sam", "lastName": "Simulator"}

_VALIDATED = "validated"
_PROCESSED = "processed"


def new_id() -> str:
    """Return a 24-hex-digit id, the shape of the service's record ids."""
    return secrets.token_hex(12)


@functools.lru_cache(maxsize=4096)
def iso(timestamp: float) -> str:
    """Format an epoch time as ISO 8601 UTC with milliseconds and ``Z``.

    Cached: listings render the same records' times again and again.
    """
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)

    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclasses.dataclass(frozen=True)
class CreateRequest:
    """A validated ``POST /v1/external/user/files`` body."""

    name: str
    size: int
    mime: str
    comment: str | None = None
    tags: tuple[str, ...] = ()
    purchase_order: str | None = None
    exclude_watermark: bool = False
    notification_email: str | None = None


@dataclasses.dataclass(frozen=True)
class StoredBytes:
    """The bytes a record received: held in memory, or in a file."""

    data: bytes | None = None
    path: Path | None = None

    def read_bytes(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None

        return self.path.read_bytes()


@dataclasses.dataclass
class _Record:
    id: str
    seq: int
    request: CreateRequest
    purchase_order_id: str | None
    created_at: float
    updated_at: float
    state: str = "in_progress"
    page_count: int = 0
    refunded: bool = False
    comments: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    source: StoredBytes | None = None
    sha256: str | None = None
    analysis: Analysis | None = None
    failure: str | None = None
    reserved_pages: int = 0

    @property
    def waiting_for_bytes(self) -> bool:
        return self.source is None and self.state == "in_progress"


@dataclasses.dataclass(frozen=True)
class FileView:
    """A copy of one record: its file object and what the API layer needs."""

    object: dict[str, Any]
    waiting_for_bytes: bool
    source: StoredBytes | None
    update: bytes | None
    sha256: str | None
    size: int

    @property
    def id(self) -> str:
        return str(self.object["id"])

    @property
    def state(self) -> str:
        return str(self.object["state"])

    @property
    def result_size(self) -> int | None:
        if self.update is None:
            return None
        return self.size + len(self.update)


@dataclasses.dataclass(frozen=True)
class FileEvent:
    """A record reached a terminal state; webhooks announce it."""

    file_id: str
    state: str
    at: float
    object: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class UploadTarget:
    size: int
    has_bytes: bool
    sha256: str | None
    accepts_bytes: bool


class Store:
    """Thread-safe records, purchase orders and webhooks of one simulator.

    Use it from the event loop and from test threads alike. Times are epoch
    seconds passed in by the caller, so the state machine is easy to reason
    about and the same clock is used everywhere.
    """

    def __init__(self, options: SimulatorOptions) -> None:
        self._options = options
        self._lock = threading.RLock()
        self._files: dict[str, _Record] = {}
        self._seq = itertools.count(1)
        # Idempotency-Key -> id of the record it created.
        self._idempotency: dict[str, str] = {}
        self._orders: dict[str, PurchaseOrder] = {
            order.id: dataclasses.replace(order) for order in options.purchase_orders
        }
        self._order_numbers = {
            order.number: order.id for order in self._orders.values()
        }
        self._due: list[tuple[float, int, str, str]] = []
        self._events: list[FileEvent] = []
        self._webhooks: dict[str, dict[str, str]] = {}
        self._creates = 0

    # Creation and reads

    def create(
        self, request: CreateRequest, idempotency_key: str | None, now: float
    ) -> tuple[FileView, bool]:
        """Create a record, or find the one an Idempotency-Key already made.

        Return the record and whether this was a replay. Raise ``ApiError``
        422 if the purchase order is unusable or the key was used with a
        different body.
        """
        with self._lock:
            self._advance(now)
            honoured = self._options.honour_idempotency and idempotency_key
            if honoured:
                assert idempotency_key is not None
                file_id = self._idempotency.get(idempotency_key)
                if file_id is not None:
                    if self._files[file_id].request != request:
                        # draft-ietf-httpapi-idempotency-key-header: a key
                        # reused with another payload is a client error.
                        message = (
                            f"Idempotency-Key {idempotency_key!r} was already "
                            "used with a different request body"
                        )
                        raise ApiError(422, message)
                    return self._view(self._files[file_id]), True

            order_id = None
            if request.purchase_order is not None:
                order = self._usable_order(request.purchase_order)
                order_id = order.id
            record = _Record(
                id=new_id(),
                seq=next(self._seq),
                request=request,
                purchase_order_id=order_id,
                created_at=now,
                updated_at=now,
            )
            if request.comment:
                record.comments.append(_comment(request.comment, "user", now))
            self._files[record.id] = record
            self._creates += 1
            if honoured:
                assert idempotency_key is not None
                self._idempotency[idempotency_key] = record.id

            return self._view(record), False

    def get(self, file_id: str, now: float) -> FileView | None:
        with self._lock:
            self._advance(now)
            record = self._files.get(file_id)
            return None if record is None else self._view(record)

    def list_files(
        self,
        now: float,
        *,
        search: str | None = None,
        state: str | None = None,
        tags: frozenset[str] = frozenset(),
        page: int = 1,
        limit: int = 20,
    ) -> tuple[list[FileView], int]:
        """Return one page of records, newest ``updatedAt`` first, and the total."""
        with self._lock:
            self._advance(now)
            needle = search.casefold() if search else None
            matches = [
                record
                for record in self._files.values()
                if (needle is None or needle in record.request.name.casefold())
                and (state is None or record.state == state)
                and (not tags or tags <= set(record.request.tags))
            ]
            start = (page - 1) * limit
            # The same as sorting them all, newest first, and slicing; the
            # client sweeps the first page of many records often.
            newest = heapq.nlargest(
                start + limit, matches, key=lambda r: (r.updated_at, r.seq)
            )
            chosen = newest[start:]

            return [self._view(record) for record in chosen], len(matches)

    def all_files(self, now: float) -> list[FileView]:
        with self._lock:
            self._advance(now)
            return [self._view(record) for record in self._files.values()]

    def creates(self) -> int:
        with self._lock:
            return self._creates

    def states(self, now: float) -> dict[str, int]:
        with self._lock:
            self._advance(now)
            counts = Counter(record.state for record in self._files.values())
            return {state: counts.get(state, 0) for state in STATES}

    # Bytes

    def upload_target(self, file_id: str) -> UploadTarget | None:
        with self._lock:
            record = self._files.get(file_id)
            if record is None:
                return None
            return UploadTarget(
                size=record.request.size,
                has_bytes=record.source is not None,
                sha256=record.sha256,
                accepts_bytes=record.source is not None or record.waiting_for_bytes,
            )

    def attach_bytes(
        self,
        file_id: str,
        source: StoredBytes,
        sha256: str,
        analysis: Analysis | None,
        failure: str | None,
        now: float,
    ) -> AttachOutcome:
        """Give a record the uploaded bytes stored at ``source``.

        Return ``"taken"`` when the record now owns ``source``; otherwise the
        caller still owns it and should delete it: ``"same"`` when the record
        already had these bytes, ``"different"`` when it had others,
        ``"closed"`` when it no longer waits for any.
        """
        with self._lock:
            self._advance(now)
            record = self._files[file_id]
            if record.source is not None:
                return "same" if record.sha256 == sha256 else "different"
            if not record.waiting_for_bytes:
                return "closed"
            record.source = source
            record.sha256 = sha256
            record.analysis = analysis
            record.failure = failure
            record.state = "validation"
            record.updated_at = now
            self._schedule(now + self._options.validation_seconds, record, _VALIDATED)

            return "taken"

    # Test helpers

    def complete_now(self, file_id: str, now: float) -> FileView:
        """Finish a record at once, charging its purchase order as usual.

        Raise KeyError for an unknown id, ValueError if the record has no
        bytes yet or validation fails it.
        """
        with self._lock:
            self._advance(now)
            record = self._files[file_id]
            if record.source is None:
                raise ValueError(f"file {file_id} has not received its bytes yet")
            if record.state == "validation":
                self._finish_validation(record, now)
            if record.state == "failed":
                raise ValueError(f"file {file_id} failed: {record.failure}")
            if record.state != "completed":
                self._complete(record, now)

            return self._view(record)

    def fail_now(self, file_id: str, message: str, now: float) -> FileView:
        """Fail a record at once, refunding the pages it reserved.

        Raise KeyError for an unknown id.
        """
        with self._lock:
            self._advance(now)
            record = self._files[file_id]
            if record.state != "failed":
                self._fail(record, message, now)

            return self._view(record)

    # Purchase orders

    def purchase_orders(self) -> list[dict[str, Any]]:
        with self._lock:
            return [_order_object(order) for order in self._orders.values()]

    def update_purchase_order(self, reference: str, **changes: Any) -> dict[str, Any]:
        """Change an order as the dashboard would (approve it, add pages).

        Raise KeyError for an unknown id or number.
        """
        with self._lock:
            order_id = self._order_numbers.get(reference, reference)
            order = self._orders[order_id]
            self._orders[order_id] = dataclasses.replace(order, **changes)
            return _order_object(self._orders[order_id])

    def _usable_order(self, reference: str) -> PurchaseOrder:
        order_id = reference if reference in self._orders else None
        order_id = order_id or self._order_numbers.get(reference)
        if order_id is None:
            raise ApiError(422, f"purchase order {reference!r} was not found")
        order = self._orders[order_id]
        if order.status != "approved":
            message = (
                f"purchase order {order.number} is {order.status}; only approved "
                "purchase orders can be used"
            )
            raise ApiError(422, message)
        if order.available_pages <= 0:
            message = f"purchase order {order.number} has no pages left"
            raise ApiError(422, message)

        return order

    # Webhooks

    def add_webhook(self, event: str, url: str) -> list[dict[str, str]]:
        with self._lock:
            hook_id = new_id()
            self._webhooks[hook_id] = {"id": hook_id, "event": event, "url": url}
            return list(map(dict, self._webhooks.values()))

    def webhooks(self) -> list[dict[str, str]]:
        with self._lock:
            return list(map(dict, self._webhooks.values()))

    def delete_webhook(self, hook_id: str) -> list[dict[str, str]] | None:
        with self._lock:
            if self._webhooks.pop(hook_id, None) is None:
                return None
            return list(map(dict, self._webhooks.values()))

    # State machine

    def advance(self, now: float) -> None:
        """Apply every transition due by ``now``."""
        with self._lock:
            self._advance(now)

    def take_events(self) -> list[FileEvent]:
        """Return and forget the terminal transitions since the last call."""
        with self._lock:
            events, self._events = self._events, []
            return events

    def _advance(self, now: float) -> None:
        while self._due and self._due[0][0] <= now:
            due, _, file_id, step = heapq.heappop(self._due)
            record = self._files[file_id]
            # Entries are never removed from the heap; one whose record has
            # moved on (a test helper finished or failed it) is stale.
            if step == _VALIDATED and record.state == "validation":
                self._finish_validation(record, due)
            elif step == _PROCESSED and record.state == "in_progress":
                self._complete(record, due)

    def _schedule(self, due: float, record: _Record, step: str) -> None:
        heapq.heappush(self._due, (due, record.seq, record.id, step))

    def _finish_validation(self, record: _Record, at: float) -> None:
        if record.analysis is None:
            self._fail(record, record.failure or "the PDF cannot be read", at)
            return
        pages = record.analysis.pages
        record.page_count = pages
        if record.purchase_order_id is not None:
            order = self._orders[record.purchase_order_id]
            if order.status != "approved" or order.available_pages < pages:
                message = (
                    f"purchase order {order.number} cannot cover {pages} pages "
                    f"({order.available_pages} available, status {order.status})"
                )
                self._fail(record, message, at)
                return
            order.used_pages += pages
            record.reserved_pages = pages
        record.state = "in_progress"
        record.updated_at = at
        self._schedule(at + self._options.processing_seconds, record, _PROCESSED)

    def _complete(self, record: _Record, at: float) -> None:
        record.state = "completed"
        record.updated_at = at
        self._events.append(FileEvent(record.id, "completed", at, _object(record)))

    def _fail(self, record: _Record, message: str, at: float) -> None:
        if record.reserved_pages and record.purchase_order_id is not None:
            order = self._orders[record.purchase_order_id]
            order.used_pages = max(order.used_pages - record.reserved_pages, 0)
            record.reserved_pages = 0
        record.state = "failed"
        record.refunded = True
        record.failure = message
        record.updated_at = at
        record.comments.append(_comment(message, "system", at))
        self._events.append(FileEvent(record.id, "failed", at, _object(record)))

    def _view(self, record: _Record) -> FileView:
        analysis = record.analysis
        return FileView(
            object=_object(record),
            waiting_for_bytes=record.waiting_for_bytes,
            source=record.source,
            update=None if analysis is None else analysis.update,
            sha256=record.sha256,
            size=record.request.size,
        )


def _object(record: _Record) -> dict[str, Any]:
    request = record.request
    return {
        "id": record.id,
        "name": request.name,
        "size": request.size,
        "tags": list(request.tags),
        "state": record.state,
        "owner": dict(OWNER),
        "extension": "pdf",
        "pageCount": record.page_count,
        "comments": [dict(comment) for comment in record.comments],
        "createdAt": iso(record.created_at),
        "updatedAt": iso(record.updated_at),
        "excludeWatermark": request.exclude_watermark,
        "refunded": record.refunded,
        "publiclyAvailable": False,
    }


def _order_object(order: PurchaseOrder) -> dict[str, Any]:
    return {
        "id": order.id,
        "number": order.number,
        "status": order.status,
        "pages": order.pages,
        "usedPages": order.used_pages,
        "availablePages": order.available_pages,
    }


def _comment(text: str, author: str, at: float) -> dict[str, Any]:
    return {"id": new_id(), "text": text, "author": author, "createdAt": iso(at)}
