"""Sample PDFs for tests, benchmarks and the demo.

``make_pdf`` gives a small valid PDF with a chosen page count; ``marker`` makes
otherwise equal documents differ byte for byte (different hashes).
``broken_pdf`` starts like a PDF but cannot be parsed, so the service fails it
in validation. ``write_pdf`` streams a valid PDF of an exact size to disk, for
uploads of hundreds of megabytes without holding them in memory.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from pypdf import PdfWriter

if TYPE_CHECKING:
    from pathlib import Path

_CHUNK = 1024 * 1024


def make_pdf(pages: int = 1, marker: str = "") -> bytes:
    """Return a valid PDF of ``pages`` blank US-letter pages.

    The output is deterministic. A non-empty ``marker`` is stored as the
    document's subject, so PDFs with different markers have different bytes.
    """
    if pages < 1:
        raise ValueError(f"pages must be at least 1, got {pages}")
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=612, height=792)
    if marker:
        writer.add_metadata({"/Subject": marker})
    out = io.BytesIO()
    writer.write(out)

    return out.getvalue()


def broken_pdf() -> bytes:
    """Return bytes that look like a PDF by their header but cannot be parsed."""
    return b"%PDF-1.7\n%broken on purpose: no objects, no cross-reference table\n"


def write_pdf(path: Path, size: int, pages: int = 1) -> None:
    """Write a valid PDF of exactly ``size`` bytes with ``pages`` pages.

    The bulk is an unreferenced stream of zeros, written in 1 MiB chunks, so
    gigabyte files cost no memory. Raise ValueError if ``size`` is too small
    to hold the document's structure.
    """
    if pages < 1:
        raise ValueError(f"pages must be at least 1, got {pages}")
    padding = 0
    # The structure's length depends on the digits of the padding length and
    # of the offsets, so settle it by iteration; it converges in a few rounds.
    for _ in range(8):
        head, tail = _skeleton(pages, padding)
        missing = size - (len(head) + padding + len(tail))
        if missing == 0:
            break
        padding += missing
        if padding < 0:
            message = f"size {size} is too small for a {pages}-page PDF"
            raise ValueError(message)
    else:
        raise ValueError(f"cannot lay out a PDF of exactly {size} bytes")

    with path.open("wb") as out:
        out.write(head)
        chunk = bytes(_CHUNK)
        remaining = padding
        while remaining > 0:
            step = min(remaining, _CHUNK)
            out.write(chunk[:step])
            remaining -= step
        out.write(tail)


def _skeleton(pages: int, padding: int) -> tuple[bytes, bytes]:
    """Return the bytes before and after ``padding`` bytes of stream data."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{3 + index} 0 R" for index in range(pages))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode())
    for _ in range(pages):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << >> >>"
        )

    head = io.BytesIO()
    head.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for number, body in enumerate(objects, start=1):
        offsets.append(head.tell())
        head.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    padding_number = len(objects) + 1
    offsets.append(head.tell())
    head.write(
        f"{padding_number} 0 obj\n<< /Length {padding} >>\nstream\n".encode("ascii")
    )

    xref_offset = head.tell() + padding + len(b"\nendstream\nendobj\n")
    tail = io.BytesIO()
    tail.write(b"\nendstream\nendobj\n")
    tail.write(f"xref\n0 {padding_number + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        tail.write(f"{offset:010d} 00000 n \n".encode())
    tail.write(
        f"trailer\n<< /Size {padding_number + 1} /Root 1 0 R >>\n"
        f"startxref\n{xref_offset}\n%%EOF\n".encode()
    )

    return head.getvalue(), tail.getvalue()
