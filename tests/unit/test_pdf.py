"""Telling whole, usable PDFs from everything else."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pypdf import PdfWriter

from syncd import pdf


def _pdf(pages: int = 2, password: str | None = None) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=200)
    if password:
        writer.encrypt(password)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _inspect(tmp_path: Path, data: bytes) -> pdf.Inspection:
    path = tmp_path / "x.pdf"
    path.write_bytes(data)
    return pdf.inspect(path)


def test_a_whole_pdf_is_ok_and_its_pages_are_counted(tmp_path: Path) -> None:
    result = _inspect(tmp_path, _pdf(3))

    assert result.verdict is pdf.Verdict.OK
    assert result.pages == 3


@pytest.mark.parametrize(
    ("data", "verdict"),
    [
        (b"", pdf.Verdict.EMPTY),
        (b"PK\x03\x04 a zip file", pdf.Verdict.NOT_PDF),
        (b"%PDF-1.7\n1 0 obj\n<<", pdf.Verdict.INCOMPLETE),
        (b"%PDF-1.7\nthis is not a pdf body\n%%EOF\n", pdf.Verdict.CORRUPT),
    ],
)
def test_bad_files_get_a_verdict(
    tmp_path: Path, data: bytes, verdict: pdf.Verdict
) -> None:
    assert _inspect(tmp_path, data).verdict is verdict


def test_a_truncated_pdf_is_incomplete(tmp_path: Path) -> None:
    data = _pdf(2)

    assert _inspect(tmp_path, data[: len(data) // 2]).verdict is pdf.Verdict.INCOMPLETE


def test_an_encrypted_pdf_is_named_as_such(tmp_path: Path) -> None:
    result = _inspect(tmp_path, _pdf(1, password="secret"))

    assert result.verdict is pdf.Verdict.ENCRYPTED
    assert "password" in result.message


def test_looks_whole_checks_both_ends(tmp_path: Path) -> None:
    path = tmp_path / "x.pdf"
    path.write_bytes(_pdf(1))
    assert pdf.looks_whole(path)

    path.write_bytes(_pdf(1)[:-20])
    assert not pdf.looks_whole(path)
