"""Finding PDFs in the inbox, and waiting until each one is whole.

``Watcher`` only records what it finds: each candidate file becomes a
``discovered`` document in the journal (at most once while it is alive).
It listens to inotify through watchdog, and falls back to polling where
events cannot be trusted: network file systems (NFS, SMB/CIFS, FUSE), whose
changes made by other machines never raise a local event, and hosts whose
inotify watch limit is reached. A scan at start and a periodic rescan catch
whatever events missed (a queue overflow, a gap while syncd was down).

``Settler`` takes discovered documents and decides when each is whole: its
size and modification time have held for ``watch.settle_seconds`` and the
bytes read as a complete PDF. Scanners often write a file in bursts, close it
and reopen it; an empty or unfinished PDF is therefore given until
``watch.give_up_after_seconds`` before it is failed as incomplete.
"""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from syncd import files, pdf
from syncd.errors import BadDocument, TransientError
from syncd.journal import Document, Stage
from syncd.logs import get_logger
from syncd.workers import Worker

if TYPE_CHECKING:
    from syncd.config import Settings
    from syncd.journal import Journal

log = get_logger(__name__)

# File systems whose changes by other machines raise no inotify event.
NETWORK_FILE_SYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "9p",
        "ceph",
        "glusterfs",
        "lustre",
        "gpfs",
        "afs",
        "davfs",
        "sshfs",
    }
)


def file_system_type(path: Path, mountinfo: Path = Path("/proc/self/mountinfo")) -> str:
    """The type of the file system ``path`` lives on, from the mount table."""
    target = path.resolve()
    best, best_type = "", "unknown"
    try:
        lines = mountinfo.read_text().splitlines()
    except OSError:
        return best_type
    for line in lines:
        # Fields: id parent major:minor root mount-point options ... - type src
        before, _, after = line.partition(" - ")
        fields = before.split()
        if len(fields) < 5 or not after:
            continue
        mount_point = fields[4].replace("\\040", " ")
        if target.is_relative_to(mount_point) and len(mount_point) > len(best):
            best, best_type = mount_point, after.split()[0]

    return best_type


def needs_polling(fs_type: str) -> bool:
    return fs_type in NETWORK_FILE_SYSTEMS or fs_type.startswith("fuse")


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher) -> None:
        self._watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("deleted", "opened", "closed_no_write"):
            return
        raw = event.dest_path if event.event_type == "moved" else event.src_path
        path = Path(raw if isinstance(raw, str) else raw.decode())
        if event.is_directory:
            # A folder dropped or moved in at once brings files that raise
            # no event of their own.
            self._watcher.scan(path)
        else:
            self._watcher.consider(path)


class Watcher:
    """Records candidate PDFs of the inbox in the journal; never acts on them."""

    def __init__(self, settings: Settings, journal: Journal) -> None:
        self._settings = settings
        self._journal = journal
        self._observer: Any = None
        self.mode = "none"

    @property
    def inbox(self) -> Path:
        return self._settings.folders.inbox

    def update_settings(self, settings: Settings) -> None:
        self._settings = settings

    def start(self) -> None:
        """Start observing (in watchdog's thread); logs the mode chosen."""
        self.inbox.mkdir(parents=True, exist_ok=True)
        watch = self._settings.watch
        mode = watch.mode
        fs_type = file_system_type(self.inbox)
        if mode == "auto":
            mode = "polling" if needs_polling(fs_type) else "native"
        observer = self._make_observer(mode)
        try:
            observer.start()
        except OSError as exc:
            if mode != "native" or exc.errno not in (errno.ENOSPC, errno.EMFILE):
                raise
            log.warning(
                "watch.fallback",
                reason="inotify limit reached (fs.inotify.max_user_watches)",
                error=str(exc),
            )
            mode = "polling"
            observer = self._make_observer(mode)
            observer.start()
        self._observer = observer
        self.mode = mode
        log.info("watch.started", inbox=str(self.inbox), mode=mode, fs_type=fs_type)

    def _make_observer(self, mode: str) -> Any:
        if mode == "polling":
            interval = self._settings.watch.polling_interval_seconds
            observer: Any = PollingObserver(timeout=interval)
        else:
            observer = Observer()
        observer.schedule(_Handler(self), str(self.inbox), recursive=True)
        return observer

    @property
    def alive(self) -> bool:
        return self._observer is not None and bool(self._observer.is_alive())

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None

    def scan(self, folder: Path | None = None) -> int:
        """Record every candidate below ``folder`` (the inbox); count the new."""
        folder = folder or self.inbox
        if not folder.is_dir():
            return 0
        found = []
        patterns = self._settings.watch.ignore
        for key, size, mtime in files.scan(folder, patterns):
            if folder != self.inbox:
                key = files.relative_key(self.inbox, folder / key)
            found.append((key, size, mtime))
        added = self._record(found)
        if added:
            log.info("watch.scanned", folder=str(folder), found=len(found), new=added)

        return added

    def consider(self, path: Path) -> None:
        """Record ``path`` if it is a candidate PDF below the inbox."""
        try:
            key = files.relative_key(self.inbox, path)
        except ValueError:
            return
        if not files.is_pdf_name(key) or files.is_junk(
            key, self._settings.watch.ignore
        ):
            return
        info = files.regular_file_stat(path)
        if info is None:
            return
        self._record([(key, info.st_size, info.st_mtime_ns)])

    def _record(self, found: list[tuple[str, int, int]]) -> int:
        added = self._journal.add_discovered(found)
        for doc_id, key in added:
            log.info("document.discovered", doc=doc_id, file=key)

        return len(added)

    async def rescan_forever(self, stopping: asyncio.Event) -> None:
        """Scan the whole inbox every ``watch.rescan_seconds``."""
        while not stopping.is_set():
            try:
                await asyncio.wait_for(
                    stopping.wait(), timeout=self._settings.watch.rescan_seconds
                )
            except TimeoutError:
                await asyncio.to_thread(self.scan)


class Settler(Worker):
    """Takes a discovered file once it is whole; fails it when it never is.

    Covers: files still being written (size or mtime moving), scanners that
    close and reopen a file, empty placeholders that grow later, files
    removed or renamed before upload (forgotten quietly), unreadable files,
    files over ``upload.max_file_mb``, and PDFs that are not PDFs, damaged
    or encrypted.
    """

    name: ClassVar[str] = "settler"
    stages: ClassVar[tuple[Stage, ...]] = (Stage.DISCOVERED,)

    @property
    def concurrency(self) -> int:
        return 8

    async def step(self, doc: Document) -> None:
        settings = self.context.settings
        journal = self.context.journal
        now = self.context.clock()
        path = files.locate(settings.folders.inbox, doc.path)
        info = files.regular_file_stat(path)
        if info is None:
            log.info("document.vanished", doc=doc.id, file=doc.path)
            journal.forget(doc)
            return

        settle = settings.watch.settle_seconds
        if (info.st_size, info.st_mtime_ns) != (doc.size, doc.mtime_ns):
            journal.reschedule(
                doc,
                not_before=now + settle,
                size=info.st_size,
                mtime_ns=info.st_mtime_ns,
                changed_at=now,
            )
            return
        if now < doc.changed_at + settle:
            journal.reschedule(doc, not_before=doc.changed_at + settle)
            return

        upload = settings.upload_for(Path(doc.path))
        if info.st_size > upload.max_file_mb * 1024 * 1024:
            raise BadDocument(
                "too_large",
                f"the file is {info.st_size / 1048576:.1f} MB, over the"
                f" {upload.max_file_mb} MB limit (upload.max_file_mb)",
            )
        inspection = await self._inspect(path, info.st_size)
        still_young = now < doc.discovered_at + settings.watch.give_up_after_seconds
        if inspection.verdict in pdf.MAY_STILL_CHANGE and still_young:
            journal.reschedule(doc, not_before=now + settle)
            return
        if inspection.verdict is not pdf.Verdict.OK:
            raise BadDocument(inspection.verdict.value, inspection.message)

        sha256 = await files.read_off_loop(info.st_size, pdf.sha256_of, path)
        after = files.regular_file_stat(path)
        if after is None or (after.st_size, after.st_mtime_ns) != (
            doc.size,
            doc.mtime_ns,
        ):
            journal.reschedule(doc, not_before=now + settle, changed_at=now)
            return
        journal.advance(doc, Stage.STABLE, sha256=sha256, pages=inspection.pages)
        log.info(
            "document.stable",
            doc=doc.id,
            file=doc.path,
            size=doc.size,
            pages=inspection.pages,
            waited=round(now - doc.discovered_at, 1),
        )

    async def _inspect(self, path: Path, size: int) -> pdf.Inspection:
        try:
            return await files.read_off_loop(size, pdf.inspect, path)
        except PermissionError as exc:
            raise BadDocument(
                "unreadable",
                f"syncd may not read the file ({exc.strerror}); give syncd's"
                " group read access to the inbox",
            ) from exc
        except FileNotFoundError as exc:
            raise TransientError("the file went away while being checked") from exc
        except OSError as exc:
            raise TransientError(f"the file could not be read: {exc}") from exc
