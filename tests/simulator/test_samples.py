"""Sample PDFs: small valid ones, a broken one, big ones written to disk."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import pytest
from pypdf import PdfReader
from pypdf.errors import PdfReadError

from syncd.simulator.pdf import UnusablePdf, analyse
from syncd.simulator.samples import broken_pdf, make_pdf, write_pdf

if TYPE_CHECKING:
    from pathlib import Path


def test_make_pdf_has_the_requested_pages_and_is_deterministic() -> None:
    assert len(PdfReader(io.BytesIO(make_pdf(5))).pages) == 5
    assert make_pdf(2) == make_pdf(2)


def test_make_pdf_markers_give_different_bytes() -> None:
    assert make_pdf(1, marker="a") != make_pdf(1, marker="b")


def test_broken_pdf_looks_like_a_pdf_but_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(broken_pdf())

    assert broken_pdf().startswith(b"%PDF-")
    with pytest.raises(PdfReadError):
        PdfReader(io.BytesIO(broken_pdf()))
    with pytest.raises(UnusablePdf):
        analyse(path, "broken", "en-US")


@pytest.mark.parametrize("size", [2_000, 3 * 1024 * 1024 + 7])
def test_write_pdf_has_the_exact_size_and_reads_back(tmp_path: Path, size: int) -> None:
    path = tmp_path / "big.pdf"

    write_pdf(path, size, pages=3)

    assert path.stat().st_size == size
    assert len(PdfReader(path).pages) == 3
    assert analyse(path, "big", "en-US").pages == 3


def test_write_pdf_refuses_a_size_too_small(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="too small"):
        write_pdf(tmp_path / "tiny.pdf", 100)


def test_processed_result_of_a_big_file_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "big.pdf"
    write_pdf(path, 5 * 1024 * 1024, pages=2)

    analysis = analyse(path, "Big file", "fr-FR")
    result = tmp_path / "result.pdf"
    result.write_bytes(path.read_bytes() + analysis.update)
    reader = PdfReader(result)

    assert len(reader.pages) == 2
    assert reader.metadata is not None
    assert reader.metadata.title == "Big file"
    assert reader.trailer["/Root"]["/Lang"] == "fr-FR"
