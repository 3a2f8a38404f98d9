"""Every kind of bad or odd input, with the result syncd documents for it.

This is the one list of them all. Each kind is a row of ``STATIC_KINDS``
(taken in one ``syncd once`` run, so each row also proves that the others
in the same run were unaffected) or a test of its own below, when it needs
a running daemon, another user or a mount. Results:

- ``delivered``: the result is in the outbox under the file's own name;
- ``failed:<reason>``: the original is in failed/ beside an .error.json
  giving that reason, and nothing was uploaded for it;
- ``ignored``: left where it is, neither uploaded nor failed.

Trouble with the outbox (read-only, full) is "retried later, the original
untouched"; once the outbox can take files again the document is delivered.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from pypdf import PdfWriter

from syncd import files
from syncd.errors import ExitCode
from syncd.journal import SqliteJournal, Stage
from syncd.simulator import Simulator
from syncd.simulator.samples import make_pdf
from tests.harness import (
    API_KEY,
    BackgroundDaemon,
    Tree,
    make_settings,
    run_once,
    wait_until,
)


def _encrypted() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=100, height=100)
    writer.encrypt("secret")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _symlink(tree: Tree, name: str) -> None:
    target = tree.root / "elsewhere.pdf"
    target.write_bytes(make_pdf(1, marker="elsewhere"))
    (tree.inbox / name).symlink_to(target)


def _fifo(tree: Tree, name: str) -> None:
    os.mkfifo(tree.inbox / name)


def _directory(tree: Tree, name: str) -> None:
    (tree.inbox / name).mkdir()
    (tree.inbox / name / "inside.txt").write_bytes(b"not a document")


NFD = unicodedata.normalize("NFD", "résumé décomposé.pdf")


@dataclasses.dataclass(frozen=True)
class Kind:
    """One kind of input: the names it drops and the result each must get."""

    kind: str
    names: tuple[str, ...]
    expect: str
    data: bytes | None = None
    make: Callable[[Tree, str], None] | None = None


STATIC_KINDS = [
    Kind("not a PDF", ("letter.pdf",), "failed:not_pdf", b"Dear customer,\n"),
    Kind("empty, never filled", ("empty.pdf",), "failed:empty", b""),
    Kind("truncated", ("truncated.pdf",), "failed:incomplete", make_pdf(3)[:300]),
    Kind("corrupt", ("corrupt.pdf",), "failed:corrupt", b"%PDF-1.4\nxx\n%%EOF\n"),
    Kind("encrypted", ("locked.pdf",), "failed:encrypted", _encrypted()),
    Kind(
        "over upload.max_file_mb",
        ("huge.pdf",),
        "failed:too_large",
        make_pdf(1) + b"\n" * (1024 * 1024 + 1),
    ),
    Kind("symlink", ("link.pdf",), "ignored", make=_symlink),
    Kind("FIFO", ("pipe.pdf",), "ignored", make=_fifo),
    Kind("directory named x.pdf", ("folder.pdf",), "ignored", make=_directory),
    Kind("hidden file", (".hidden.pdf",), "ignored"),
    Kind(
        "junk names",
        (
            ".DS_Store",
            "@eaDir/thumb.pdf",
            "~$report.pdf",
            "scan.tmp",
            "download.pdf.part",
            ".~lock.report.pdf#",
            ".stfolder/x.pdf",
            "#recycle/old.pdf",
        ),
        "ignored",
    ),
    Kind("not a .pdf name", ("notes.txt",), "ignored"),
    Kind("spaces in the name", ("annual report 2026 final.pdf",), "delivered"),
    Kind(
        "Unicode NFC",
        (unicodedata.normalize("NFC", "Übersicht café.pdf"),),
        "delivered",
    ),
    Kind("Unicode NFD", (NFD,), "delivered"),
    Kind("odd characters", ("a'b&c;d #1 (copy) [x] {y} 100% $z.pdf",), "delivered"),
    Kind("upper-case extension", ("SCAN0001.PDF",), "delivered"),
    Kind(
        "a folder dropped with 50 PDFs",
        tuple(f"dropped folder/doc-{index:02}.pdf" for index in range(50)),
        "delivered",
    ),
]


def _nfc(names: list[str]) -> list[str]:
    return sorted(unicodedata.normalize("NFC", name) for name in names)


def _report(tree: Tree, name: str) -> dict[str, object]:
    return dict(json.loads((tree.failed / f"{name}.error.json").read_text()))


def test_there_are_at_least_twenty_kinds() -> None:
    others = [
        name.removeprefix("test_")
        for name in globals()
        if name.startswith("test_") and name != "test_there_are_at_least_twenty_kinds"
    ]

    assert len(STATIC_KINDS) + len(others) >= 20


def test_each_static_kind_gets_its_result_in_one_shared_run(
    simulator: Simulator, tree: Tree
) -> None:
    for kind in STATIC_KINDS:
        for name in kind.names:
            if kind.make is not None:
                kind.make(tree, name)
            else:
                tree.drop(name, data=kind.data)
    settings = make_settings(
        simulator,
        tree,
        upload={"max_file_mb": 1},
        watch={"give_up_after_seconds": 1.5},
    )

    assert run_once(settings, timeout=120) == ExitCode.SOME_FAILED

    outbox = _nfc(tree.listing(tree.outbox))
    failed = tree.listing(tree.failed)
    expected_outbox = []
    for kind in STATIC_KINDS:
        for name in kind.names:
            if kind.expect == "delivered":
                expected_outbox.append(name)
            elif kind.expect.startswith("failed:"):
                reason = kind.expect.removeprefix("failed:")
                assert _report(tree, name)["reason"] == reason, kind.kind
                assert name in failed, kind.kind
            else:
                assert name not in failed, kind.kind
                assert name not in outbox, kind.kind
                path = tree.inbox / name
                assert path.exists() or path.is_symlink(), kind.kind
    assert outbox == _nfc(expected_outbox)
    delivered = len(expected_outbox)
    assert simulator.creates() == delivered


def test_a_file_renamed_while_it_settles_is_delivered_once(
    simulator: Simulator, tree: Tree
) -> None:
    settings = make_settings(simulator, tree, watch={"settle_seconds": 1.0})
    with BackgroundDaemon(settings):
        path = tree.drop("Scan0001.pdf")
        path.rename(tree.inbox / "invoice.pdf")
        wait_until(lambda: tree.listing(tree.outbox) == ["invoice.pdf"], what="it")

    assert simulator.creates() == 1


def test_a_different_pdf_under_a_delivered_name_is_a_new_document(
    simulator: Simulator, tree: Tree
) -> None:
    with BackgroundDaemon(make_settings(simulator, tree)):
        tree.drop("report.pdf", data=make_pdf(1, marker="first"))
        wait_until(lambda: tree.listing(tree.archive) == ["report.pdf"], what="v1")
        tree.drop("report.pdf", data=make_pdf(2, marker="second"))
        wait_until(
            lambda: tree.listing(tree.outbox) == ["report (2).pdf", "report.pdf"],
            what="the second version",
        )

    assert simulator.creates() == 2


def test_an_empty_file_that_grows_into_a_pdf_is_delivered(
    simulator: Simulator, tree: Tree
) -> None:
    settings = make_settings(simulator, tree, watch={"give_up_after_seconds": 30})
    with BackgroundDaemon(settings):
        path = tree.drop("scan.pdf", data=b"")
        wait_until(lambda: _stage_of(tree, "scan.pdf") is not None, what="discovery")
        path.write_bytes(make_pdf(2, marker="grown"))
        wait_until(lambda: tree.listing(tree.outbox) == ["scan.pdf"], what="it")

    assert tree.listing(tree.failed) == []


def test_the_inbox_deleted_and_recreated_keeps_working(
    simulator: Simulator, tree: Tree
) -> None:
    with BackgroundDaemon(make_settings(simulator, tree)):
        tree.drop("before.pdf")
        wait_until(lambda: tree.listing(tree.outbox) == ["before.pdf"], what="1st")
        shutil.rmtree(tree.inbox)
        tree.inbox.mkdir()
        tree.drop("after.pdf")
        wait_until(
            lambda: tree.listing(tree.outbox) == ["after.pdf", "before.pdf"],
            what="a file in the recreated inbox",
        )


def _stage_of(tree: Tree, name: str) -> Stage | None:
    journal = SqliteJournal(tree.root / "state" / "journal.sqlite3")
    try:
        found = journal.find(name)
    finally:
        journal.close()
    return found[-1].stage if found else None


def _attempts_of(tree: Tree, name: str) -> int:
    journal = SqliteJournal(tree.root / "state" / "journal.sqlite3")
    try:
        found = journal.find(name)
    finally:
        journal.close()
    return found[-1].attempts if found else 0


@pytest.fixture
def quick_outbox_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    # A minute between tries is right for an operator, too long for a test.
    monkeypatch.setattr(files, "DESTINATION_RETRY_SECONDS", 0.3)


@contextlib.contextmanager
def _immutable(folder: Path) -> Iterator[None]:
    """chattr +i: even root cannot create files in the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["chattr", "+i", str(folder)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not available here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=False)


@pytest.mark.skipif(shutil.which("chattr") is None, reason="chattr is not installed")
@pytest.mark.usefixtures("quick_outbox_retry")
def test_a_read_only_outbox_is_retried_and_the_original_left_alone(
    simulator: Simulator, tree: Tree
) -> None:
    with _immutable(tree.outbox), BackgroundDaemon(make_settings(simulator, tree)):
        original = tree.drop("held.pdf")
        wait_until(lambda: _attempts_of(tree, "held.pdf") >= 2, what="retries")

        assert _stage_of(tree, "held.pdf") is Stage.DOWNLOADABLE
        assert original.exists()
        assert tree.listing(tree.failed) == []
        subprocess.run(["chattr", "-i", str(tree.outbox)], check=True)
        wait_until(lambda: tree.listing(tree.outbox) == ["held.pdf"], what="it")

    assert not original.exists()


@contextlib.contextmanager
def _small_tmpfs(folder: Path, size: str) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"mounting a small tmpfs is not permitted: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
@pytest.mark.usefixtures("quick_outbox_retry")
def test_a_full_outbox_is_retried_and_delivers_once_there_is_room(
    simulator: Simulator, tree: Tree
) -> None:
    with _small_tmpfs(tree.outbox, "64k"):
        filler = tree.outbox / "filler.bin"
        with contextlib.suppress(OSError):
            filler.write_bytes(b"\0" * 64 * 1024)
        with BackgroundDaemon(make_settings(simulator, tree)):
            original = tree.drop("full.pdf", data=make_pdf(3, marker="full"))
            wait_until(lambda: _attempts_of(tree, "full.pdf") >= 2, what="retries")

            assert original.exists()
            assert not list(tree.outbox.glob(".syncd-*"))
            filler.unlink()
            wait_until(lambda: (tree.outbox / "full.pdf").exists(), what="it")
        assert tree.listing(tree.failed) == []


def _run_as_nobody(tree: Tree, config: Path) -> subprocess.CompletedProcess[str]:
    command = [
        "setpriv",
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        sys.executable,
        "-m",
        "syncd",
        "once",
        "-c",
        str(config),
        "--timeout",
        "60",
    ]
    root = Path(__file__).resolve().parent.parent.parent
    return subprocess.run(
        command, capture_output=True, text=True, cwd=root, check=False, timeout=120
    )


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv to run syncd as another user",
)
def test_an_unreadable_file_fails_with_a_permission_reason(
    simulator: Simulator,
) -> None:
    # Root reads any file, so syncd runs as "nobody" for this one, in a tree
    # outside pytest's private temporary folder.
    probe = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "true"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip("this host does not let syncd run as nobody")
    tree = Tree(Path(tempfile.mkdtemp(prefix="syncd-unreadable-")))
    try:
        tree.root.chmod(0o777)
        tree.inbox.mkdir(mode=0o777)
        tree.inbox.chmod(0o777)
        tree.drop("readable.pdf").chmod(0o666)
        tree.drop("unreadable.pdf").chmod(0o200)
        config = {
            "api": {"base_url": simulator.base_url, "key": API_KEY},
            "folders": {"inbox": "inbox", "outbox": "outbox", "failed": "failed"},
            "state_dir": "state",
            "upload": {"purchase_order": "PO-2026-014"},
            "watch": {"settle_seconds": 0.2},
            "poll": {"interval_seconds": 0.2, "max_interval_seconds": 1},
            "http": {"listen": None},
        }
        path = tree.root / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o644)

        finished = _run_as_nobody(tree, path)

        assert finished.returncode == ExitCode.SOME_FAILED, finished.stderr[-2000:]
        assert _report(tree, "unreadable.pdf")["reason"] == "unreadable"
        assert tree.listing(tree.outbox) == ["readable.pdf"]
    finally:
        shutil.rmtree(tree.root, ignore_errors=True)


def test_other_documents_are_unaffected_by_a_slow_kind(
    simulator: Simulator, tree: Tree
) -> None:
    # A scanner that keeps one file open for a long time holds nobody up.
    tree.drop("fine.pdf")
    slow = tree.drop("slow.pdf", data=b"%PDF-1.4\n")
    settings = make_settings(simulator, tree, watch={"give_up_after_seconds": 30})
    with BackgroundDaemon(settings):
        wait_until(lambda: tree.listing(tree.outbox) == ["fine.pdf"], what="fine")
        slow.write_bytes(make_pdf(1, marker="slow"))
        wait_until(
            lambda: tree.listing(tree.outbox) == ["fine.pdf", "slow.pdf"],
            what="the slow one",
        )
