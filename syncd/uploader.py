"""Uploading: one remote record per document, and its bytes, exactly once.

The order of commits is what makes this crash-safe and never billed twice:

1. ``stable -> creating``: a fresh idempotency key is committed *before*
   the record is requested.
2. The record is requested with that key. When this is a repeat (a crash or
   a lost answer after step 1), syncd first looks for a record it created
   and never heard back about (same name and size, created since step 1,
   still waiting for its bytes, unknown to the journal) and adopts it; only
   then does it ask again, with the same key. A service that honours the
   key returns the same record; one that ignores it would make a second
   record, but that record never gets bytes, so it is never validated and
   costs no pages.
3. ``creating -> uploading`` with the remote id.
4. The bytes are streamed to the pre-signed URL while being hashed; the last
   chunk is held back until the hash matches the one taken when the file
   settled, so a file changed during upload is never sent as half of each
   version: the upload is aborted and the document settles again.
5. ``uploading -> processing``.

With ``upload.duplicates: reuse``, content already uploaded is not uploaded
again: the document follows the earlier remote record.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from syncd import files
from syncd.api import UploadConflict, UploadUrlExpired, epoch
from syncd.errors import ConnectionLost, PermanentError, SyncdError, TransientError
from syncd.journal import Document, Stage
from syncd.logs import get_logger
from syncd.workers import Worker

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from syncd.api import RemoteFile
    from syncd.workers import Context

log = get_logger(__name__)

_CHUNK = 1024 * 1024
# How long to hold a document whose purchase order cannot take it now.
HOLD_SECONDS = 60.0
# Clocks of syncd and the service may disagree; a record created this long
# before our "creating" commit can still be ours.
CLOCK_SLACK_SECONDS = 300.0
URL_REFRESHES = 3


class ContentChanged(SyncdError):
    """The file's bytes no longer match the hash taken when it settled."""


class Uploader(Worker):
    """Takes stable documents to processing: create the record, send the bytes."""

    name: ClassVar[str] = "uploader"
    stages: ClassVar[tuple[Stage, ...]] = (
        Stage.STABLE,
        Stage.CREATING,
        Stage.UPLOADING,
    )

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        # Documents whose last create was answered with an error: the service
        # made nothing, so the next try need not look for a lost record. In
        # memory only: after a restart, every first try looks.
        self._answered_no: set[int] = set()

    @property
    def concurrency(self) -> int:
        return self.context.settings.upload.concurrency

    async def step(self, doc: Document) -> None:
        try:
            if doc.stage is Stage.STABLE:
                await self._start(doc)
            elif doc.stage is Stage.CREATING:
                await self._create(doc, repeat=True)
            else:
                await self._upload(doc, fresh_url=False)
        except FileNotFoundError:
            # Removed before its bytes were sent: nothing was billed.
            current = self.current(doc)
            if current is not None:
                log.info("document.vanished", doc=doc.id, file=doc.path)
                self.context.journal.forget(current)
        except ContentChanged as exc:
            self._resettle(doc, str(exc))

    def _resettle(self, doc: Document, why: str) -> None:
        current = self.current(doc)
        if current is None:
            return
        log.warning("document.changed", doc=doc.id, file=doc.path, why=why)
        self.context.journal.advance(
            current,
            Stage.DISCOVERED,
            changed_at=self.context.clock(),
            remote_id=None,
            upload_url=None,
            idempotency_key=None,
            sha256=None,
        )

    async def _start(self, doc: Document) -> None:
        journal = self.context.journal
        now = self.context.clock()
        upload = self.context.settings.upload_for(Path(doc.path))
        if upload.duplicates == "reuse" and doc.sha256:
            same = journal.find_same_content(doc.sha256, doc.id)
            if same is not None and same.remote_id:
                journal.advance(
                    doc,
                    Stage.PROCESSING,
                    remote_id=same.remote_id,
                    reused_from=same.id,
                    hold_reason=None,
                )
                log.info(
                    "document.reused",
                    doc=doc.id,
                    file=doc.path,
                    remote_id=same.remote_id,
                    same_as=same.path,
                )
                return
            if same is not None:
                # The same content is on its way up: wait for its record.
                journal.reschedule(doc, not_before=now + 2.0)
                return

        if upload.purchase_order:
            reason = self.context.purchase_orders.hold_reason(
                upload.purchase_order, doc.pages or 0
            )
            if reason:
                self._hold(doc, reason)
                return
        self._check_unchanged(doc)
        doc = journal.advance(
            doc,
            Stage.CREATING,
            idempotency_key=str(uuid.uuid4()),
            creating_at=now,
            hold_reason=None,
            keep_lease=True,
        )
        await self._create(doc, repeat=False)

    def _hold(self, doc: Document, reason: str) -> None:
        if reason != doc.hold_reason:
            log.warning("document.held", doc=doc.id, file=doc.path, reason=reason)
        self.context.journal.reschedule(
            doc, not_before=self.context.clock() + HOLD_SECONDS, hold_reason=reason
        )

    def _check_unchanged(self, doc: Document) -> None:
        path = files.locate(self.context.settings.folders.inbox, doc.path)
        info = files.regular_file_stat(path)
        if info is None:
            raise FileNotFoundError(path)
        if (info.st_size, info.st_mtime_ns) != (doc.size, doc.mtime_ns):
            raise ContentChanged("size or modification time changed before upload")

    async def _create(self, doc: Document, *, repeat: bool) -> None:
        assert doc.idempotency_key is not None
        journal = self.context.journal
        api = self.context.api
        upload = self.context.settings.upload_for(Path(doc.path))
        in_doubt = repeat and doc.id not in self._answered_no
        self._answered_no.discard(doc.id)
        record = await self._find_lost_record(doc) if in_doubt else None
        if record is None:
            order_id = None
            if upload.purchase_order:
                order = self.context.purchase_orders.find(upload.purchase_order)
                order_id = order.id if order else upload.purchase_order
            try:
                record = await api.create_file(
                    name=doc.name,
                    size=doc.size,
                    upload=upload,
                    purchase_order_id=order_id,
                    idempotency_key=doc.idempotency_key,
                )
            except ConnectionLost:
                raise
            except TransientError:
                # An error answer: nothing was made (see ApiClient.create_file).
                self._answered_no.add(doc.id)
                raise
            except PermanentError as exc:
                if exc.reason != "purchase_order_refused":
                    raise
                self._hold(doc, f"the service refused the purchase order: {exc}")
                return
        if upload.purchase_order:
            self.context.purchase_orders.spend(upload.purchase_order, doc.pages or 0)
        doc = journal.advance(
            doc,
            Stage.UPLOADING,
            remote_id=record.id,
            upload_url=record.upload_url,
            keep_lease=True,
        )
        log.debug("document.created", doc=doc.id, file=doc.path, remote_id=record.id)
        await self._upload(doc, fresh_url=True)

    async def _find_lost_record(self, doc: Document) -> RemoteFile | None:
        """A record this document asked for before a crash, if the service has one."""
        assert doc.creating_at is not None
        known = self.context.journal.remote_ids()
        candidates = [
            record
            for record in await self.context.api.find_files(doc.name)
            if record.name == doc.name
            and record.size == doc.size
            and record.upload_url
            and record.id not in known
            and epoch(record.created_at) >= doc.creating_at - CLOCK_SLACK_SECONDS
        ]
        if not candidates:
            return None
        record = min(candidates, key=lambda item: item.created_at)
        log.info("document.record_recovered", doc=doc.id, remote_id=record.id)

        return record

    async def _upload(self, doc: Document, *, fresh_url: bool) -> None:
        assert doc.remote_id is not None and doc.sha256 is not None
        api = self.context.api
        url = doc.upload_url if fresh_url else None
        for _ in range(URL_REFRESHES):
            if url is None:
                record = await api.get_file(doc.remote_id)
                if record is None:
                    raise ContentChanged(f"remote record {doc.remote_id} is gone")
                if not record.upload_url:
                    # The bytes arrived before a crash kept us from saying so.
                    self._uploaded(doc)
                    return
                url = record.upload_url
            self._check_unchanged(doc)
            try:
                await api.upload(url, doc.size, lambda: self._chunks(doc))
            except UploadUrlExpired:
                url = None
                continue
            except UploadConflict as exc:
                raise ContentChanged(str(exc)) from exc
            self._uploaded(doc)
            return
        raise TransientError("the upload URL kept expiring")

    def _uploaded(self, doc: Document) -> None:
        interval = self.context.settings.poll.interval_seconds
        self.context.journal.advance(
            doc,
            Stage.PROCESSING,
            upload_url=None,
            poll_interval=interval,
            not_before=self.context.clock() + interval,
        )
        log.info(
            "document.uploaded",
            doc=doc.id,
            file=doc.path,
            remote_id=doc.remote_id,
            pages=doc.pages,
            size=doc.size,
        )

    async def _chunks(self, doc: Document) -> AsyncIterator[bytes]:
        """The file's bytes; the last chunk only once the whole hash matches."""
        path = files.locate(self.context.settings.folders.inbox, doc.path)
        digest = hashlib.sha256()
        sent = 0
        with path.open("rb") as stream:
            held = await files.read_off_loop(doc.size, stream.read, _CHUNK)
            while held:
                chunk = await files.read_off_loop(doc.size, stream.read, _CHUNK)
                digest.update(held)
                sent += len(held)
                if not chunk and (sent != doc.size or digest.hexdigest() != doc.sha256):
                    raise ContentChanged("the file changed while it was uploaded")
                yield held
                held = chunk
        if sent != doc.size:
            raise ContentChanged("the file shrank while it was uploaded")
