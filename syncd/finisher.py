"""The last move of every document: its original leaves the inbox.

After delivery the original goes to the archive (or is deleted when there
is none); after a failure it goes to ``failed/`` beside a
``<name>.error.json`` that says why in words a person can act on. Each
destination name is written into the journal before the move, so a step
repeated after a crash finds its own earlier move instead of making a
second copy.

One case is left in place on purpose: an original that changed after it
was uploaded is a new version someone dropped under the same name. It is
not archived with the old result; the next scan takes it as a new document.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any, ClassVar

from syncd import files
from syncd.journal import Document, Stage
from syncd.logs import get_logger
from syncd.workers import Worker

log = get_logger(__name__)


class Finisher(Worker):
    """Moves originals out of the inbox and marks documents delivered or failed."""

    name: ClassVar[str] = "finisher"
    stages: ClassVar[tuple[Stage, ...]] = (Stage.DOWNLOADED, Stage.FAILING)

    async def step(self, doc: Document) -> None:
        if doc.stage is Stage.DOWNLOADED:
            with files.destination_trouble_is_transient(
                "moving the original out of the inbox"
            ):
                self._deliver(doc)
        else:
            with files.destination_trouble_is_transient(
                "moving the original to failed/"
            ):
                self._fail(doc)

    def _deliver(self, doc: Document) -> None:
        folders = self.context.settings.folders
        journal = self.context.journal
        original = files.locate(folders.inbox, doc.path)
        info = files.regular_file_stat(original)
        changed = info is not None and (info.st_size, info.st_mtime_ns) != (
            doc.size,
            doc.mtime_ns,
        )
        if changed:
            log.warning(
                "document.original_changed",
                doc=doc.id,
                file=doc.path,
                note="left in the inbox as a new document",
            )
        elif info is not None and folders.archive is not None:
            if doc.final_path is None:
                target = files.free_name(folders.archive, doc.path, folders.on_conflict)
                doc = journal.note(doc, final_path=str(target))
            files.move(original, Path(doc.final_path or ""))
        elif info is not None:
            original.unlink()

        now = self.context.clock()
        journal.advance(doc, Stage.DELIVERED)
        log.info(
            "document.delivered",
            doc=doc.id,
            file=doc.path,
            outbox=doc.outbox_path,
            remote_id=doc.remote_id,
            reused=doc.reused_from is not None,
            total_seconds=round(now - doc.discovered_at, 1),
            service_seconds=_between(doc.uploaded_at, doc.completed_at),
        )

    def _fail(self, doc: Document) -> None:
        folders = self.context.settings.folders
        journal = self.context.journal
        original = files.locate(folders.inbox, doc.path)
        if doc.final_path is None:
            target = files.free_name(folders.failed, doc.path, "rename")
            doc = journal.note(doc, final_path=str(target))
        target = Path(doc.final_path or "")
        if files.regular_file_stat(original) is not None:
            report = target.with_name(target.name + ".error.json")
            files.write_json_atomically(report, error_report(doc))
            files.move(original, target)
        elif not target.exists():
            log.info("document.vanished", doc=doc.id, file=doc.path)

        journal.advance(doc, Stage.FAILED)
        log.error(
            "document.failed",
            doc=doc.id,
            file=doc.path,
            reason=doc.error_reason,
            error=doc.error_message,
            moved_to=str(target),
        )


def error_report(doc: Document) -> dict[str, Any]:
    """What ``<name>.error.json`` says about a failed document."""
    return {
        "file": doc.path,
        "reason": doc.error_reason or "unknown",
        "message": doc.error_message or "",
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "remote_id": doc.remote_id,
        "attempts": doc.attempts,
        "sha256": doc.sha256,
        "pages": doc.pages,
    }


def _between(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return round(end - start, 1)
