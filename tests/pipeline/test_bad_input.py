"""Bad input gets a clear reason in failed/, junk is ignored, the rest goes on."""

from __future__ import annotations

import io
import json
import os

import pytest
from pypdf import PdfWriter

from syncd.errors import ExitCode
from syncd.simulator import Simulator
from syncd.simulator.samples import make_pdf
from tests.harness import Tree, make_settings, run_once


def _encrypted_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=100, height=100)
    writer.encrypt("secret")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _reason(tree: Tree, name: str) -> dict[str, object]:
    report = tree.failed / f"{name}.error.json"
    return dict(json.loads(report.read_text()))


@pytest.mark.parametrize(
    ("data", "reason", "words"),
    [
        (b"", "empty", "empty"),
        (b"Hello, this is a text file", "not_pdf", "not a PDF"),
        (make_pdf(2)[:300], "incomplete", "truncated"),
        (b"%PDF-1.4\ngarbage garbage\n%%EOF\n", "corrupt", "damaged"),
        (_encrypted_pdf(), "encrypted", "password"),
    ],
    ids=["empty", "not-pdf", "truncated", "corrupt", "encrypted"],
)
def test_a_bad_file_goes_to_failed_with_a_reason_and_others_deliver(
    simulator: Simulator, tree: Tree, data: bytes, reason: str, words: str
) -> None:
    tree.drop("bad.pdf", data=data)
    tree.drop("good.pdf")
    settings = make_settings(simulator, tree, watch={"give_up_after_seconds": 1})

    assert run_once(settings) == ExitCode.SOME_FAILED

    assert tree.listing(tree.outbox) == ["good.pdf"]
    assert (tree.failed / "bad.pdf").read_bytes() == data
    report = _reason(tree, "bad.pdf")
    assert report["reason"] == reason
    assert words in str(report["message"])
    assert simulator.creates() == 1


def test_a_file_over_the_size_limit_fails_without_upload(
    simulator: Simulator, tree: Tree
) -> None:
    tree.drop("big.pdf", data=make_pdf(1) + b"\n" * (1024 * 1024 + 10))
    settings = make_settings(simulator, tree, upload={"max_file_mb": 1})

    assert run_once(settings) == ExitCode.SOME_FAILED

    report = _reason(tree, "big.pdf")
    assert report["reason"] == "too_large"
    assert "upload.max_file_mb" in str(report["message"])
    assert simulator.creates() == 0


def test_an_empty_file_that_grows_into_a_pdf_is_delivered(
    simulator: Simulator, tree: Tree
) -> None:
    import threading

    path = tree.drop("scan.pdf", data=b"")
    settings = make_settings(simulator, tree, watch={"give_up_after_seconds": 30})
    timer = threading.Timer(1.0, lambda: path.write_bytes(make_pdf(2)))
    timer.start()
    try:
        assert run_once(settings) == ExitCode.OK
    finally:
        timer.cancel()

    assert tree.listing(tree.outbox) == ["scan.pdf"]


def test_junk_links_fifos_and_folders_are_ignored_not_failed(
    simulator: Simulator, tree: Tree
) -> None:
    tree.drop("real.pdf")
    for junk in (".DS_Store", "~$doc.pdf", "x.pdf.part", "a.tmp", "@eaDir/t.pdf"):
        tree.drop(junk, data=b"junk")
    tree.drop("notes.txt", data=b"not a pdf name")
    (tree.inbox / "folder.pdf").mkdir()
    (tree.inbox / "link.pdf").symlink_to(tree.inbox / "real.pdf")
    os.mkfifo(tree.inbox / "pipe.pdf")
    settings = make_settings(simulator, tree, watch={"ignore": ["skip-*"]})
    tree.drop("skip-me.pdf")

    assert run_once(settings) == ExitCode.OK

    assert tree.listing(tree.outbox) == ["real.pdf"]
    assert tree.listing(tree.failed) == []
    assert (tree.inbox / "skip-me.pdf").exists()
    assert (tree.inbox / ".DS_Store").exists()
    assert simulator.creates() == 1
