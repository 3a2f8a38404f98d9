"""No two steps ever run on one document at once.

The uploader commits ``creating`` and ``uploading`` in the middle of its step
and goes on with the document. Were those commits to free the lease, the
next claim would start a second step on the same document: it would look
for a "lost" record and, with a service that ignores ``Idempotency-Key``,
ask for a second one. A crash loop showed it: in a run without any crash,
documents were "recovered" from records their own first step had just made.
"""

from __future__ import annotations

import asyncio
import hashlib
import types
from collections.abc import AsyncIterator, Callable
from typing import Any

from syncd.api import RemoteFile
from syncd.journal import SqliteJournal, Stage
from syncd.simulator.samples import make_pdf
from syncd.uploader import Uploader
from syncd.workers import Context
from tests.harness import Tree, make_settings


class _Service:
    """Answers the uploader's calls and notes who could claim the document."""

    def __init__(self, journal: SqliteJournal) -> None:
        self.journal = journal
        self.claimable: dict[str, list[int]] = {}

    def _look(self, moment: str) -> None:
        taken = self.journal.claim(Uploader.stages, limit=10)
        self.claimable[moment] = [doc.id for doc in taken]

    async def create_file(self, **request: Any) -> RemoteFile:
        self._look("while creating")
        return _record(upload_url="http://127.0.0.1:9/upload/r1")

    async def upload(
        self, url: str, size: int, chunks: Callable[[], AsyncIterator[bytes]]
    ) -> None:
        self._look("while uploading")
        async for _ in chunks():
            pass

    async def find_files(self, name: str) -> list[RemoteFile]:
        raise AssertionError("a first attempt has no lost record to look for")


def _record(upload_url: str | None) -> RemoteFile:
    return RemoteFile(
        id="r1",
        name="a.pdf",
        size=0,
        state="in_progress",
        refunded=False,
        page_count=0,
        upload_url=upload_url,
        created_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:00.000Z",
        comments="",
    )


class _Orders:
    def hold_reason(self, reference: str, pages: int) -> None:
        return None

    def find(self, reference: str) -> None:
        return None

    def spend(self, reference: str, pages: int) -> None:
        return None


def test_a_document_is_not_claimable_while_its_upload_step_runs(tree: Tree) -> None:
    tree.drop("a.pdf", data=make_pdf(1))
    site = types.SimpleNamespace(base_url="http://127.0.0.1:9")
    settings = make_settings(site, tree, upload={"purchase_order": None})  # type: ignore[arg-type]
    journal = SqliteJournal(tree.root / "journal.sqlite3")
    try:
        info = (tree.inbox / "a.pdf").stat()
        journal.add_discovered([("a.pdf", info.st_size, info.st_mtime_ns)])
        [doc] = journal.claim([Stage.DISCOVERED], limit=1)
        data = (tree.inbox / "a.pdf").read_bytes()
        doc = journal.advance(
            doc, Stage.STABLE, sha256=hashlib.sha256(data).hexdigest()
        )
        [doc] = journal.claim(Uploader.stages, limit=1)
        service = _Service(journal)
        context = Context(settings, journal, service, _Orders())  # type: ignore[arg-type]

        asyncio.run(Uploader(context).step(doc))

        assert service.claimable == {"while creating": [], "while uploading": []}
        after = journal.get(doc.id)
        assert after is not None
        assert after.stage is Stage.PROCESSING
        assert after.lease_until == 0
    finally:
        journal.close()
