"""Finding candidates in the inbox and writing into the outbox safely."""

from __future__ import annotations

import asyncio
import os
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from syncd import files
from syncd.errors import TransientError


@pytest.mark.parametrize(
    "name",
    [
        ".DS_Store",
        "@eaDir/scan.pdf",
        "~$report.pdf",
        "upload.tmp",
        "scan.pdf.part",
        ".~lock.report.pdf#",
        ".stfolder/x.pdf",
        "a/.hidden/x.pdf",
        "#recycle/old.pdf",
        "report.sync-conflict-20260101-120000-ABCDEFG.pdf",
        "Thumbs.db",
    ],
)
def test_housekeeping_names_are_junk(name: str) -> None:
    assert files.is_junk(name)


def test_ordinary_names_are_not_junk() -> None:
    assert not files.is_junk("finance/Report 2026 (final).pdf")
    assert files.is_junk("raw/x.pdf", ["raw/*"])


def test_scan_takes_regular_pdfs_and_passes_over_everything_else(
    tmp_path: Path,
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "TWO.PDF").write_bytes(b"%PDF-1.4")
    (tmp_path / "notes.txt").write_text("no")
    (tmp_path / "folder.pdf").mkdir()
    (tmp_path / "link.pdf").symlink_to(tmp_path / "TWO.PDF")
    os.mkfifo(tmp_path / "fifo.pdf")
    (tmp_path / ".hidden.pdf").write_bytes(b"%PDF-1.4")

    found = sorted(key for key, _, _ in files.scan(tmp_path))

    assert found == ["TWO.PDF", "a/one.pdf"]


def test_keys_are_nfc_and_locate_finds_an_nfd_name(tmp_path: Path) -> None:
    nfd = unicodedata.normalize("NFD", "Übersicht.pdf")
    (tmp_path / nfd).write_bytes(b"x")

    ((key, _, _),) = files.scan(tmp_path)

    assert key == unicodedata.normalize("NFC", "Übersicht.pdf")
    assert files.locate(tmp_path, key).name == nfd


def test_free_name_renames_on_conflict(tmp_path: Path) -> None:
    (tmp_path / "a.pdf").write_bytes(b"x")
    (tmp_path / "a (2).pdf").write_bytes(b"x")

    assert files.free_name(tmp_path, "a.pdf", "rename").name == "a (3).pdf"
    assert files.free_name(tmp_path, "a.pdf", "overwrite").name == "a.pdf"
    assert files.free_name(tmp_path, "b.pdf", "rename").name == "b.pdf"


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def test_write_atomically_puts_the_whole_file_in_place(tmp_path: Path) -> None:
    target = tmp_path / "out" / "a.pdf"

    written = asyncio.run(files.write_atomically(target, _chunks(b"ab", b"cd")))

    assert written == 4
    assert target.read_bytes() == b"abcd"
    assert list(target.parent.iterdir()) == [target]


def test_a_short_write_leaves_no_file_and_keeps_the_old_one(tmp_path: Path) -> None:
    target = tmp_path / "a.pdf"
    target.write_bytes(b"old")

    with pytest.raises(TransientError, match="truncated"):
        asyncio.run(files.write_atomically(target, _chunks(b"ab"), expected_size=10))

    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


def test_a_failed_check_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "a.pdf"

    with pytest.raises(files.NotWhole):
        asyncio.run(
            files.write_atomically(target, _chunks(b"nope"), check=lambda _: False)
        )

    assert list(tmp_path.iterdir()) == []


def test_remove_temporaries_cleans_what_a_crash_left(tmp_path: Path) -> None:
    path, stream = files.open_temporary(tmp_path / "sub")
    stream.close()

    assert files.remove_temporaries(tmp_path) == 1
    assert not path.exists()


def test_move_creates_folders_and_moves(tmp_path: Path) -> None:
    source = tmp_path / "a.pdf"
    source.write_bytes(b"x")

    files.move(source, tmp_path / "x" / "y" / "a.pdf")

    assert not source.exists()
    assert (tmp_path / "x" / "y" / "a.pdf").read_bytes() == b"x"
