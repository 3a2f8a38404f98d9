"""Bringing the remediated PDF into the outbox, whole or not at all.

The outbox name is chosen once and written into the journal before the
first byte arrives, so a repeated download (after a crash, a truncated
answer) replaces syncd's own earlier attempt instead of adding
``name (2).pdf``. The file is written beside its final name, checked to be a
whole PDF, synced and renamed into place; the original in the inbox is not
touched here. A full or read-only outbox is retried later.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from syncd import files, pdf
from syncd.errors import PermanentError, TransientError
from syncd.journal import Document, Stage
from syncd.logs import get_logger
from syncd.workers import Worker

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

log = get_logger(__name__)

# A service that keeps answering something that is not a PDF will not heal.
MAX_BAD_RESULTS = 5


class Downloader(Worker):
    """Takes downloadable documents to downloaded: the result is in the outbox."""

    name: ClassVar[str] = "downloader"
    stages: ClassVar[tuple[Stage, ...]] = (Stage.DOWNLOADABLE,)

    @property
    def concurrency(self) -> int:
        return self.context.settings.upload.concurrency

    async def step(self, doc: Document) -> None:
        remote_id = doc.remote_id
        assert remote_id is not None
        folders = self.context.settings.folders
        journal = self.context.journal
        if doc.outbox_path is None:
            target = files.free_name(folders.outbox, doc.path, folders.on_conflict)
            doc = journal.note(doc, outbox_path=str(target))
        target = Path(doc.outbox_path or "")

        async def sink(chunks: AsyncIterator[bytes], expected: int | None) -> int:
            return await files.write_atomically(
                target, chunks, expected_size=expected, check=pdf.looks_whole
            )

        try:
            with files.destination_trouble_is_transient(
                "writing the result into the outbox"
            ):
                size = await self.context.api.download(remote_id, sink)
        except files.NotWhole as exc:
            if doc.attempts + 1 >= MAX_BAD_RESULTS:
                raise PermanentError("bad_result", str(exc)) from exc
            raise TransientError(str(exc)) from exc

        journal.advance(doc, Stage.DOWNLOADED)
        log.debug("document.downloaded", doc=doc.id, file=doc.path, size=size)
