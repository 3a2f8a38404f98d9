"""Page counting and the "remediated" result the simulator hands back.

Validation counts pages with pypdf, as the real service counts them before it
reserves them from a purchase order. The processed result is the uploaded PDF
followed by a PDF incremental update (ISO 32000-1, 7.5.6) that rewrites the
catalog with ``/Lang``, ``/MarkInfo << /Marked true >>`` and
``/ViewerPreferences << /DisplayDocTitle true >>`` and the document
information dictionary with a ``/Title``. Readers take the newest revision, so
the result is a valid, different PDF, and building it costs a few hundred
bytes whatever the size of the upload: nothing but the cross-reference data,
the catalog and the page tree is read, so a 1 GiB upload is never loaded.

Accepted risks: pypdf rebuilds a damaged cross-reference table by reading the
whole file into memory, so a huge *broken* upload costs its size in memory
once. Encrypted uploads are refused as unusable; the contract does not say
what the real service does with them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
from typing import TYPE_CHECKING, BinaryIO

from pypdf import PdfReader
from pypdf.errors import PyPdfError
from pypdf.generic import (
    ArrayObject,
    BooleanObject,
    ByteStringObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    NumberObject,
    PdfObject,
    TextStringObject,
)

if TYPE_CHECKING:
    from pathlib import Path

# How far from the end ``startxref`` may sit; PDF writers put it right before
# the final ``%%EOF``, but some append a little garbage after it.
_TAIL_WINDOW = 4096
# pypdf reads a byte at a time. A file up to this size is read into memory
# first, which makes checking it several times cheaper.
_IN_MEMORY_BYTES = 1024 * 1024
_PYPDF_LOG = logging.getLogger("pypdf")


class UnusablePdf(Exception):
    """The upload cannot be read as a PDF; the message says why."""


@dataclasses.dataclass(frozen=True)
class Analysis:
    """What validation learnt about one upload.

    ``update`` is the incremental update that, appended to the upload, gives
    the processed result.
    """

    pages: int
    update: bytes


def analyse(path: Path, title: str, lang: str) -> Analysis:
    """Count the pages of the PDF at ``path`` and build its processed update.

    Raise ``UnusablePdf`` if pypdf cannot read it, it is encrypted or it has no
    pages. The update is deterministic: the same bytes, title and language
    always give the same result.
    """
    size = path.stat().st_size
    with path.open("rb") as file:
        if size <= _IN_MEMORY_BYTES:
            return analyse_bytes(file.read(), title, lang)
        return _analysed(file, size, title, lang)


def analyse_bytes(data: bytes, title: str, lang: str) -> Analysis:
    """Do what ``analyse`` does, for a PDF already in memory."""
    return _analysed(io.BytesIO(data), len(data), title, lang)


def _analysed(stream: BinaryIO, size: int, title: str, lang: str) -> Analysis:
    try:
        reader = _quiet_reader(stream)
        if reader.is_encrypted:
            raise UnusablePdf("the PDF is encrypted; remove the password")
        pages = len(reader.pages)
        if pages == 0:
            raise UnusablePdf("the PDF has no pages")
        update = _incremental_update(reader, stream, size, title, lang)
    except UnusablePdf:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        message = f"the PDF cannot be read: {exc}"
        raise UnusablePdf(message) from exc

    return Analysis(pages=pages, update=update)


def _quiet_reader(stream: BinaryIO) -> PdfReader:
    # pypdf logs every repair it attempts as a warning; for an upload the
    # simulator is about to reject, those lines are noise in the test output.
    previous = _PYPDF_LOG.level
    _PYPDF_LOG.setLevel(logging.ERROR)
    try:
        return PdfReader(stream)
    finally:
        _PYPDF_LOG.setLevel(previous)


def _incremental_update(
    reader: PdfReader,
    stream: BinaryIO,
    size: int,
    title: str,
    lang: str,
) -> bytes:
    previous_xref = _startxref(stream, size)
    trailer = reader.trailer
    root_ref = trailer.raw_get("/Root")
    if not isinstance(root_ref, IndirectObject):
        raise UnusablePdf("the trailer has no indirect /Root catalog")
    old_size = int(trailer.get("/Size", 0))

    catalog = _dictionary(root_ref.get_object())
    catalog[NameObject("/Lang")] = TextStringObject(lang)
    catalog[NameObject("/MarkInfo")] = DictionaryObject(
        {NameObject("/Marked"): BooleanObject(True)}
    )
    preferences = catalog.get("/ViewerPreferences")
    if not isinstance(preferences, IndirectObject):
        merged = DictionaryObject(preferences or {})
        merged[NameObject("/DisplayDocTitle")] = BooleanObject(True)
        catalog[NameObject("/ViewerPreferences")] = merged

    info_ref = trailer.raw_get("/Info") if "/Info" in trailer else None
    info = DictionaryObject()
    if isinstance(info_ref, IndirectObject):
        info.update(_dictionary(info_ref.get_object()))
        info_number, info_generation = info_ref.idnum, info_ref.generation
    else:
        info_number, info_generation = max(old_size, 1), 0
    info[NameObject("/Title")] = TextStringObject(title)

    out = io.BytesIO()
    # The original may end without a newline; the update must start a line.
    out.write(b"\n")
    offsets: dict[int, tuple[int, int]] = {}
    for number, generation, obj in (
        (root_ref.idnum, root_ref.generation, catalog),
        (info_number, info_generation, info),
    ):
        offsets[number] = (size + out.tell(), generation)
        out.write(f"{number} {generation} obj\n".encode("ascii"))
        obj.write_to_stream(out)
        out.write(b"\nendobj\n")

    xref_offset = size + out.tell()
    out.write(b"xref\n0 1\n0000000000 65535 f \n")
    for number in sorted(offsets):
        offset, generation = offsets[number]
        out.write(f"{number} 1\n{offset:010d} {generation:05d} n \n".encode("ascii"))

    new_trailer = DictionaryObject(
        {
            NameObject("/Size"): NumberObject(max(old_size, info_number + 1)),
            NameObject("/Root"): root_ref,
            NameObject("/Info"): IndirectObject(info_number, info_generation, reader),
            NameObject("/Prev"): NumberObject(previous_xref),
        }
    )
    document_id = _updated_id(trailer.get("/ID"), title, lang)
    if document_id is not None:
        new_trailer[NameObject("/ID")] = document_id
    out.write(b"trailer\n")
    new_trailer.write_to_stream(out)
    out.write(f"\nstartxref\n{xref_offset}\n%%EOF\n".encode("ascii"))

    return out.getvalue()


def _dictionary(obj: PdfObject | None) -> DictionaryObject:
    if not isinstance(obj, DictionaryObject):
        raise UnusablePdf(f"expected a dictionary object, found {type(obj).__name__}")

    return DictionaryObject(obj)


def _startxref(stream: BinaryIO, size: int) -> int:
    stream.seek(max(size - _TAIL_WINDOW, 0))
    tail = stream.read()
    marker = tail.rfind(b"startxref")
    if marker < 0:
        raise UnusablePdf("no startxref near the end of the file")
    fields = tail[marker + len(b"startxref") :].split()
    if not fields or not fields[0].isdigit():
        raise UnusablePdf("startxref is not followed by an offset")
    offset = int(fields[0])

    # /Prev must point at a real cross-reference section, or readers that
    # follow the chain lose the original objects; pypdf may have repaired a
    # broken pointer silently, so check it here.
    stream.seek(offset)
    head = stream.read(16).lstrip()
    if not (head.startswith(b"xref") or head[:1].isdigit()):
        raise UnusablePdf("startxref does not point at a cross-reference section")

    return offset


def _updated_id(
    original: PdfObject | None, title: str, lang: str
) -> ArrayObject | None:
    # ISO 32000-1, 14.4: an update keeps the first identifier and changes the
    # second one.
    if not isinstance(original, ArrayObject) or len(original) != 2:
        return None
    first = original[0].get_object()
    if not isinstance(first, bytes | str):
        return None
    seed = bytes(first) if isinstance(first, bytes) else first.encode("latin-1")
    second = hashlib.sha256(seed + title.encode() + lang.encode()).digest()[:16]

    return ArrayObject([original[0], ByteStringObject(second)])
