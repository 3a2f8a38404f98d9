"""Polls falling due one after another are sent together, in one wakeup."""

from __future__ import annotations

import asyncio
import time

from syncd.api import ApiClient
from syncd.config import UploadSettings
from syncd.journal import SqliteJournal, Stage
from syncd.poller import Poller
from syncd.simulator import Simulator
from syncd.workers import Context, Runner
from tests.harness import Tree, make_settings

ONE_RECORD = "/v1/external/user/files/{id}"


def test_a_wakeup_also_polls_the_documents_due_within_the_batch_window(
    simulator: Simulator, tree: Tree
) -> None:
    # A first interval of 20 s gives a batch window of one second. The clock
    # stands still, so only a batch can reach a document not yet due.
    settings = make_settings(
        simulator, tree, poll={"interval_seconds": 20, "max_interval_seconds": 60}
    )
    now = time.time()
    journal = SqliteJournal(tree.root / "journal.sqlite3", clock=lambda: now)
    api = ApiClient(settings.api)
    due_in = {"due.pdf": 0.0, "soon.pdf": 0.8, "later.pdf": 1.5}

    async def scenario() -> dict[str, str]:
        remote = {}
        for name, wait in due_in.items():
            record = await api.create_file(
                name=name,
                size=10,
                upload=UploadSettings(),
                purchase_order_id=None,
                idempotency_key=name,
            )
            remote[name] = record.id
            journal.add_discovered([(name, 10, 1)])
            (doc,) = journal.claim([Stage.DISCOVERED], 1)
            doc = journal.advance(doc, Stage.STABLE)
            journal.advance(
                doc, Stage.PROCESSING, remote_id=record.id, not_before=now + wait
            )
        context = Context(settings, journal, api, None, clock=lambda: now)  # type: ignore[arg-type]
        stopping = asyncio.Event()
        running = asyncio.create_task(Runner(Poller(context)).run(stopping))
        deadline = time.monotonic() + 10
        while not all(
            _polled(simulator, remote[name]) for name in ("due.pdf", "soon.pdf")
        ):
            assert time.monotonic() < deadline, "the batch was not polled"
            await asyncio.sleep(0.02)
        stopping.set()
        await running
        await api.aclose()
        return remote

    try:
        remote = asyncio.run(scenario())
        later = journal.find(remote["later.pdf"])
    finally:
        journal.close()

    assert not _polled(simulator, remote["later.pdf"])
    assert [doc.not_before for doc in later] == [now + 1.5]


def _polled(simulator: Simulator, remote_id: str) -> bool:
    path = ONE_RECORD.format(id=remote_id)
    return any(
        entry["method"] == "GET" and entry["path"] == path
        for entry in simulator.requests()
    )
