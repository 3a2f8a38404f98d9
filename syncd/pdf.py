"""Local checks that a file is a whole, usable PDF, and its page count.

A scanner or a Samba client may still be writing a file whose size has held
for a few seconds, so "is it whole" is answered by the bytes: a ``%PDF-``
header, an ``%%EOF`` marker near the end (ISO 32000-1, 7.5.5: the last line of
the file), and a cross-reference table pypdf can read. Page counting here lets
syncd hold a document locally when the purchase order cannot cover it, instead
of paying a round trip for a refusal.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import logging
from typing import TYPE_CHECKING

from pypdf import PdfReader
from pypdf.errors import PdfReadError

if TYPE_CHECKING:
    from pathlib import Path

# pypdf reports recoverable oddities of real-world PDFs as warnings on its
# own logger; they are not ours to show.
logging.getLogger("pypdf").setLevel(logging.ERROR)

_HEADER = b"%PDF-"
# Writers may put a little garbage after %%EOF; 1024 bytes is what PDF
# readers such as Acrobat tolerate.
_TAIL_BYTES = 1024
# The header may be preceded by a few bytes (ISO 32000-1, annex H.3).
_HEAD_BYTES = 1024
_CHUNK = 1024 * 1024


class Verdict(enum.StrEnum):
    """What the bytes say about a file."""

    OK = "ok"
    EMPTY = "empty"  # may still grow: a scanner created it and writes later
    INCOMPLETE = "incomplete"  # a PDF header but no end yet: still being written
    NOT_PDF = "not_pdf"
    CORRUPT = "corrupt"
    ENCRYPTED = "encrypted"


# Verdicts that may change while a writer is still busy with the file.
MAY_STILL_CHANGE = frozenset({Verdict.EMPTY, Verdict.INCOMPLETE})

MESSAGES = {
    Verdict.EMPTY: "the file is empty (0 bytes)",
    Verdict.INCOMPLETE: (
        "the file never became a whole PDF (no %%EOF at its end): it is "
        "truncated, or its writer never finished"
    ),
    Verdict.NOT_PDF: "the file is not a PDF (it does not start with %PDF-)",
    Verdict.CORRUPT: "the PDF is damaged and cannot be read",
    Verdict.ENCRYPTED: (
        "the PDF is encrypted or password-protected; save an unprotected copy "
        "and drop that instead"
    ),
}


@dataclasses.dataclass(frozen=True)
class Inspection:
    verdict: Verdict
    pages: int = 0
    detail: str = ""

    @property
    def message(self) -> str:
        base = MESSAGES.get(self.verdict, "")
        return f"{base} ({self.detail})" if self.detail else base


def inspect(path: Path) -> Inspection:
    """Tell whether ``path`` holds a whole, readable, unencrypted PDF.

    Raises:
        OSError: the file cannot be opened or read.
    """
    with path.open("rb") as stream:
        head = stream.read(_HEAD_BYTES)
        if not head:
            return Inspection(Verdict.EMPTY)
        if _HEADER not in head:
            return Inspection(Verdict.NOT_PDF)
        stream.seek(0, 2)
        size = stream.tell()
        stream.seek(max(0, size - _TAIL_BYTES))
        if b"%%EOF" not in stream.read():
            return Inspection(Verdict.INCOMPLETE)
        stream.seek(0)
        return _parse(stream)


def _parse(stream: object) -> Inspection:
    try:
        reader = PdfReader(stream)  # type: ignore[arg-type]
        if reader.is_encrypted:
            return Inspection(Verdict.ENCRYPTED)
        pages = len(reader.pages)
    # pypdf raises a wide range of errors on damaged files (its own, and
    # KeyError/ValueError/TypeError from deep inside the object parser).
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return Inspection(Verdict.CORRUPT, detail=str(exc)[:200])
    if pages == 0:
        return Inspection(Verdict.CORRUPT, detail="it has no pages")

    return Inspection(Verdict.OK, pages=pages)


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)

    return digest.hexdigest()


def looks_whole(path: Path) -> bool:
    """A cheap check of a downloaded result: header at the start, %%EOF at the end."""
    with path.open("rb") as stream:
        head = stream.read(_HEAD_BYTES)
        stream.seek(0, 2)
        size = stream.tell()
        stream.seek(max(0, size - _TAIL_BYTES))
        tail = stream.read()

    return _HEADER in head and b"%%EOF" in tail
