"""Everything syncd does to the shared folders: find, write, move.

Writes into the outbox are atomic: a hidden temporary file in the target
folder, fsync, rename over the final name, fsync of the folder, so a person
or a program watching the outbox never sees half a PDF, even after a crash.
Moves across file systems (an archive on another mount) copy the same way
and only then remove the source.

Which names are never taken from the inbox: hidden files and folders, office
lock files, partial downloads, and the housekeeping folders of NAS boxes,
Samba, macOS, Windows and Syncthing. They are skipped silently; they are not
documents.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fnmatch
import json
import os
import secrets
import stat
import unicodedata
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any, ParamSpec, TypeVar

from syncd.errors import TransientError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Iterator

# Matched against every component of a path below the inbox.
JUNK_PATTERNS = (
    ".*",  # hidden: .DS_Store, ._resource forks, .~lock.*#, .stfolder, .Trash-*
    "~$*",  # Microsoft Office owner files
    "*.tmp",
    "*.part",
    "*.crdownload",
    "*.partial",
    "~*.tmp",
    "@eaDir",  # Synology thumbnails
    "#recycle",  # Synology and QNAP recycle bins
    "#snapshot",
    "@Recycle",
    "@Recently-Snapshot",
    "$RECYCLE.BIN",
    "System Volume Information",
    "Thumbs.db",
    "desktop.ini",
    "lost+found",
    "~syncthing~*",
    "*.sync-conflict-*",
)

# Up to this size, reading a file on the event loop's thread costs less than
# handing the work to a thread and back (most scans are a few hundred KiB);
# larger files go to a thread, so the loop never stalls on a 1 GiB read.
INLINE_READ_BYTES = 256 * 1024

_P = ParamSpec("_P")
_T = TypeVar("_T")

_TEMP_PREFIX = ".syncd-"
_TEMP_SUFFIX = ".part"
_CHUNK = 1024 * 1024

# errnos that mean "the destination cannot take a file now" rather than
# "this document is bad": retried later, the original left where it is.
DESTINATION_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}
)


# How long to wait before writing to a destination that could not take a file.
DESTINATION_RETRY_SECONDS = 60.0


@contextlib.contextmanager
def destination_trouble_is_transient(what: str) -> Iterator[None]:
    """Turn a destination that cannot take a file now (full, read-only,
    permission denied) into a retry of ``what``.

    The document waits and is tried again; the original stays where it is.
    Any other ``OSError`` passes through.
    """
    try:
        yield
    except OSError as exc:
        if exc.errno not in DESTINATION_ERRNOS:
            raise
        raise TransientError(
            f"{what} is not possible now ({exc.strerror}: {exc.filename});"
            " it is tried again later",
            retry_after=DESTINATION_RETRY_SECONDS,
        ) from exc


def is_junk(relative: str, extra_patterns: Iterable[str] = ()) -> bool:
    """Whether any component of ``relative`` is housekeeping, not a document."""
    patterns = (*JUNK_PATTERNS, *extra_patterns)
    parts = PurePosixPath(relative).parts
    for part in parts:
        if any(fnmatch.fnmatchcase(part, pattern) for pattern in patterns):
            return True
    # User globs may also name a whole relative path ("scans/raw/*").
    return any(fnmatch.fnmatchcase(relative, pattern) for pattern in extra_patterns)


def is_pdf_name(relative: str) -> bool:
    return relative.lower().endswith(".pdf")


def relative_key(inbox: Path, path: Path) -> str:
    """The journal's name for ``path``: relative, POSIX, Unicode NFC.

    macOS clients write NFD names over SMB while Linux tools write NFC; both
    must mean one document, so the key is normalised while the file keeps
    its own name on disk.
    """
    relative = path.relative_to(inbox).as_posix()
    return unicodedata.normalize("NFC", relative)


def locate(folder: Path, relative: str) -> Path:
    """The path on disk for a journal key, whichever Unicode form it uses."""
    direct = folder / relative
    if direct.exists():
        return direct
    candidate = folder
    for part in PurePosixPath(relative).parts:
        match = _find_part(candidate, part)
        if match is None:
            return direct
        candidate = match

    return candidate


def _find_part(folder: Path, part: str) -> Path | None:
    if (folder / part).exists():
        return folder / part
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if unicodedata.normalize("NFC", entry.name) == part:
                return folder / entry.name

    return None


def scan(
    inbox: Path, extra_patterns: Iterable[str] = ()
) -> Iterator[tuple[str, int, int]]:
    """Yield ``(key, size, mtime_ns)`` for each candidate PDF below ``inbox``.

    Only regular files are candidates: symlinks, FIFOs, devices and folders
    named ``*.pdf`` are passed over, and unreadable folders are skipped.
    """
    patterns = tuple(extra_patterns)
    pending = [inbox]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as iterator:
                entries = list(iterator)
        except OSError:
            continue
        for entry in entries:
            key = relative_key(inbox, Path(entry.path))
            if is_junk(key, patterns):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                    continue
                if not is_pdf_name(key) or not entry.is_file(follow_symlinks=False):
                    continue
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            yield key, info.st_size, info.st_mtime_ns


async def read_off_loop(
    size: int, function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs
) -> _T:
    """Run ``function``, which reads about ``size`` bytes, without stalling the loop.

    Small reads run at once; larger ones run in a thread.
    """
    if size <= INLINE_READ_BYTES:
        return function(*args, **kwargs)

    return await asyncio.to_thread(function, *args, **kwargs)


def regular_file_stat(path: Path) -> os.stat_result | None:
    """``lstat`` of a regular file; None if it is gone or is something else."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None

    return info


def free_name(folder: Path, relative: str, on_conflict: str) -> Path:
    """Where to put ``relative`` below ``folder`` under the conflict policy.

    ``rename`` picks ``name (2).pdf``, ``name (3).pdf``... when the name is
    taken; ``overwrite`` keeps the name.
    """
    target = folder / relative
    if on_conflict == "overwrite" or not _taken(target):
        return target
    stem, suffix = _split_suffix(target.name)
    number = 2
    while True:
        candidate = target.with_name(f"{stem} ({number}){suffix}")
        if not _taken(candidate):
            return candidate
        number += 1


def _taken(path: Path) -> bool:
    return path.exists() or path.with_name(path.name + ".error.json").exists()


def _split_suffix(name: str) -> tuple[str, str]:
    if name.lower().endswith(".pdf"):
        return name[:-4], name[-4:]

    return name, ""


def fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def open_temporary(folder: Path) -> tuple[Path, IO[bytes]]:
    """A new hidden temporary file in ``folder`` (created as needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f"{_TEMP_PREFIX}{secrets.token_hex(6)}{_TEMP_SUFFIX}"
    return temporary, temporary.open("xb")


def commit_temporary(temporary: Path, stream: IO[bytes], target: Path) -> None:
    """Make a fully written temporary file the target, durably."""
    stream.flush()
    os.fsync(stream.fileno())
    stream.close()
    temporary.replace(target)
    fsync_folder(target.parent)


class NotWhole(Exception):
    """A written file failed its check and was not put in place."""


async def write_atomically(
    target: Path,
    chunks: AsyncIterator[bytes],
    *,
    expected_size: int | None = None,
    check: Callable[[Path], bool] | None = None,
) -> int:
    """Write ``chunks`` to ``target`` so it appears whole or not at all.

    Returns the number of bytes written. Fewer bytes than ``expected_size``
    raise ``TransientError``; a ``check`` of the written file that fails
    raises ``NotWhole``. Any failure removes the temporary file and leaves an
    earlier ``target`` as it was.
    """
    temporary, stream = open_temporary(target.parent)
    written = 0
    try:
        async for chunk in chunks:
            stream.write(chunk)
            written += len(chunk)
        if expected_size is not None and written != expected_size:
            raise TransientError(
                f"download truncated: {written} of {expected_size} bytes"
            )
        stream.flush()
        if check is not None and not check(temporary):
            raise NotWhole(f"the service's answer is not a whole PDF ({written} bytes)")
        commit_temporary(temporary, stream, target)
    except BaseException:
        _discard(temporary, stream)
        raise

    return written


def _discard(temporary: Path, stream: IO[bytes]) -> None:
    """Close and remove a temporary file after a failure.

    Closing flushes what is still buffered, which fails again on a full
    disk; the file must go all the same, or each retry leaves one more
    behind and the disk never has room again.
    """
    with contextlib.suppress(OSError):
        stream.close()
    temporary.unlink(missing_ok=True)


def write_json_atomically(target: Path, data: dict[str, Any]) -> None:
    temporary, stream = open_temporary(target.parent)
    try:
        stream.write(json.dumps(data, indent=2, ensure_ascii=False).encode() + b"\n")
        commit_temporary(temporary, stream, target)
    except BaseException:
        _discard(temporary, stream)
        raise


def move(source: Path, target: Path) -> None:
    """Move a file durably, across file systems if need be."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        source.replace(target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _copy_then_remove(source, target)
        return
    fsync_folder(target.parent)
    fsync_folder(source.parent)


def _copy_then_remove(source: Path, target: Path) -> None:
    temporary, stream = open_temporary(target.parent)
    try:
        with source.open("rb") as original:
            while chunk := original.read(_CHUNK):
                stream.write(chunk)
        commit_temporary(temporary, stream, target)
    except BaseException:
        _discard(temporary, stream)
        raise
    source.unlink()
    fsync_folder(source.parent)


def remove_temporaries(folder: Path) -> int:
    """Delete temporary files a crash left behind below ``folder``."""
    removed = 0
    if not folder.is_dir():
        return 0
    for path in folder.rglob(f"{_TEMP_PREFIX}*{_TEMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1

    return removed
