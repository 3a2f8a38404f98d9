"""The running daemon finds files as they arrive, however they arrive."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest
from watchdog.observers import Observer

from syncd import files
from syncd import watcher as watcher_module
from syncd.finisher import Finisher
from syncd.journal import Document, SqliteJournal, Stage
from syncd.simulator import Simulator
from syncd.simulator.samples import make_pdf
from syncd.uploader import ContentChanged, Uploader
from syncd.watcher import file_system_type, needs_polling
from syncd.workers import Context
from tests.harness import BackgroundDaemon, Tree, make_settings, wait_until


@pytest.mark.parametrize("mode", ["native", "polling"])
def test_a_file_dropped_while_running_is_delivered(
    simulator: Simulator, tree: Tree, mode: str
) -> None:
    settings = make_settings(simulator, tree, watch={"mode": mode})
    with BackgroundDaemon(settings) as running:
        assert running.daemon.watcher is not None
        assert running.daemon.watcher.mode == mode
        tree.drop("new.pdf")
        wait_until(lambda: tree.listing(tree.outbox) == ["new.pdf"], what="delivery")

    assert simulator.creates() == 1


def test_a_file_no_event_announced_is_found_by_the_rescan(
    simulator: Simulator, tree: Tree
) -> None:
    settings = make_settings(simulator, tree, watch={"rescan_seconds": 1})
    with BackgroundDaemon(settings) as running:
        watcher = running.daemon.watcher
        assert watcher is not None
        # As if the event queue had overflowed: no event reaches syncd.
        watcher.stop()
        tree.drop("unannounced.pdf")
        wait_until(
            lambda: tree.listing(tree.outbox) == ["unannounced.pdf"],
            what="delivery",
        )

    assert simulator.creates() == 1


def test_with_the_inotify_limit_reached_auto_falls_back_to_polling(
    simulator: Simulator, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    class NoWatchesLeft(Observer):
        def start(self) -> None:
            raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(watcher_module, "Observer", NoWatchesLeft)
    settings = make_settings(simulator, tree, watch={"mode": "auto"})
    with BackgroundDaemon(settings) as running:
        assert running.daemon.watcher is not None
        assert running.daemon.watcher.mode == "polling"
        tree.drop("new.pdf")
        wait_until(lambda: tree.listing(tree.outbox) == ["new.pdf"], what="delivery")


def test_a_folder_moved_in_at_once_delivers_all_its_files(
    simulator: Simulator, tree: Tree
) -> None:
    staging = tree.root / "staging" / "batch"
    staging.mkdir(parents=True)
    names = [f"batch/scan-{index:02}.pdf" for index in range(50)]
    for name in names:
        (tree.root / "staging" / name).write_bytes(make_pdf(1, marker=name))
    settings = make_settings(simulator, tree, upload={"concurrency": 8})

    with BackgroundDaemon(settings):
        shutil.move(staging, tree.inbox / "batch")
        wait_until(
            lambda: tree.listing(tree.outbox) == names, timeout=60, what="50 files"
        )

    assert simulator.creates() == 50


def test_a_file_renamed_while_it_settles_is_delivered_under_its_new_name(
    simulator: Simulator, tree: Tree
) -> None:
    settings = make_settings(simulator, tree, watch={"settle_seconds": 1.0})
    with BackgroundDaemon(settings):
        path = tree.drop("Scan0001.tmp.pdf")
        wait_until(lambda: path.exists(), what="the drop")
        path.rename(tree.inbox / "invoice.pdf")
        wait_until(
            lambda: tree.listing(tree.outbox) == ["invoice.pdf"], what="delivery"
        )

    assert simulator.creates() == 1


def test_a_new_version_under_a_delivered_name_is_a_new_document(
    simulator: Simulator, tree: Tree
) -> None:
    settings = make_settings(simulator, tree)
    with BackgroundDaemon(settings):
        tree.drop("report.pdf", data=make_pdf(1, marker="v1"))
        wait_until(lambda: tree.listing(tree.archive) == ["report.pdf"], what="v1")
        tree.drop("report.pdf", data=make_pdf(2, marker="v2"))
        wait_until(
            lambda: tree.listing(tree.outbox) == ["report (2).pdf", "report.pdf"],
            what="v2",
        )

    assert simulator.creates() == 2
    assert tree.listing(tree.archive) == ["report (2).pdf", "report.pdf"]


def test_a_new_version_dropped_before_archiving_stays_for_its_own_upload(
    simulator: Simulator, tree: Tree
) -> None:
    path = tree.drop("report.pdf", data=make_pdf(1, marker="v1"))
    settings = make_settings(simulator, tree)
    journal = SqliteJournal(tree.root / "j.sqlite3")
    info = path.stat()
    journal.add_discovered([("report.pdf", info.st_size, info.st_mtime_ns)])
    (doc,) = journal.claim([Stage.DISCOVERED], 1)
    for stage in (Stage.STABLE, Stage.PROCESSING, Stage.DOWNLOADABLE):
        doc = journal.advance(doc, stage, keep_lease=True, remote_id="r1")
    doc = journal.advance(doc, Stage.DOWNLOADED, keep_lease=True)
    tree.drop("report.pdf", data=make_pdf(2, marker="v2"))
    finisher = Finisher(Context(settings, journal, None, None))  # type: ignore[arg-type]

    asyncio.run(finisher.step(doc))

    assert journal.get(doc.id).stage is Stage.DELIVERED  # type: ignore[union-attr]
    assert path.read_bytes() == make_pdf(2, marker="v2")
    assert tree.listing(tree.archive) == []
    assert len(journal.add_discovered([("report.pdf", 1, 1)])) == 1
    journal.close()


def test_the_inbox_deleted_and_recreated_keeps_working(
    simulator: Simulator, tree: Tree
) -> None:
    settings = make_settings(simulator, tree, watch={"rescan_seconds": 0.5})
    with BackgroundDaemon(settings):
        shutil.rmtree(tree.inbox)
        tree.inbox.mkdir()
        tree.drop("after.pdf")
        wait_until(lambda: tree.listing(tree.outbox) == ["after.pdf"], what="delivery")


def test_mount_table_tells_network_file_systems(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 0:21 / / rw - ext4 /dev/vda rw\n"
        "40 22 0:35 / /srv/share rw - nfs4 server:/export rw\n"
        "41 22 0:36 / /srv/smb\\040share rw - cifs //nas/docs rw\n"
        "42 22 0:37 / /mnt/fuse rw - fuse.sshfs host: rw\n"
    )

    assert file_system_type(Path("/srv/share/inbox"), mountinfo) == "nfs4"
    assert file_system_type(Path("/srv/smb share/in"), mountinfo) == "cifs"
    assert file_system_type(Path("/var/lib"), mountinfo) == "ext4"
    assert needs_polling("nfs4")
    assert needs_polling("cifs")
    assert needs_polling("fuse.sshfs")
    assert not needs_polling("ext4")


def test_a_file_changed_during_upload_is_never_sent_as_half_of_each(
    simulator: Simulator, tree: Tree
) -> None:
    original = make_pdf(3, marker="before") + b"%" * (3 * 1024 * 1024)
    path = tree.drop("big.pdf", data=original)
    info = path.stat()
    settings = make_settings(simulator, tree)
    journal = SqliteJournal(tree.root / "j.sqlite3")
    journal.add_discovered([("big.pdf", info.st_size, info.st_mtime_ns)])
    (doc,) = journal.claim([Stage.DISCOVERED], 1)
    doc = journal.advance(
        doc, Stage.STABLE, sha256=hashlib.sha256(original).hexdigest(), pages=3
    )
    uploader = Uploader(Context(settings, journal, None, None))  # type: ignore[arg-type]

    async def read_while_changing(doc: Document) -> int:
        sent = 0
        async for chunk in uploader._chunks(doc):
            sent += len(chunk)
            if sent == len(chunk):
                with path.open("r+b") as stream:
                    stream.seek(len(original) - 10)
                    stream.write(b"X" * 10)
        return sent

    with pytest.raises(ContentChanged):
        asyncio.run(read_while_changing(doc))
    journal.close()


def test_a_file_rewritten_while_its_record_is_created_goes_up_as_the_new_one(
    simulator: Simulator, tree: Tree
) -> None:
    # Every request takes half a second, so the file can be rewritten while
    # syncd waits for its record, after it has read and hashed the old one.
    simulator.set_faults(latency_seconds=0.5)
    before = make_pdf(2, marker="before")
    after = make_pdf(3, marker="after")
    settings = make_settings(simulator, tree)
    journal = tree.root / "state" / "journal.sqlite3"

    with BackgroundDaemon(settings):
        path = tree.drop("report.pdf", data=before)
        wait_until(lambda: _stages(journal) == ["creating"], what="the create")
        path.write_bytes(after)
        wait_until(lambda: _stages(journal) == ["delivered"], what="delivery")

    assert (tree.archive / "report.pdf").read_bytes() == after
    delivered = (tree.outbox / "report.pdf").read_bytes()
    assert delivered.startswith(after)
    assert not tree.listing(tree.failed)
    # The record made for the old content never got its bytes: it is never
    # validated, so it costs no pages.
    with_results = [
        record for record in simulator.files() if record["state"] == "completed"
    ]
    assert len(with_results) == 1
    assert simulator.result_bytes(with_results[0]["id"]) == delivered


def _stages(journal: Path) -> list[str]:
    if not journal.exists():
        return []
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=5)
    try:
        return [row[0] for row in db.execute("SELECT stage FROM documents")]
    finally:
        db.close()


def test_nfd_and_nfc_names_are_one_document(tmp_path: Path) -> None:
    import unicodedata

    name = unicodedata.normalize("NFD", "Café.pdf")
    (tmp_path / name).write_bytes(b"%PDF-")

    keys = [key for key, _, _ in files.scan(tmp_path)]

    assert keys == [unicodedata.normalize("NFC", name)]
    assert files.locate(tmp_path, keys[0]).exists()
