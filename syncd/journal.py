"""The journal: every document's stage, kept in SQLite, the hub of syncd.

Each document is a small state machine. The watcher adds documents; each
worker claims documents in one stage, does one step and commits the next
stage. A restart therefore only has to resume every document from the stage
it is in. The stages and who moves a document out of each::

    discovered ──settler──▶ stable ──uploader──▶ creating ──▶ uploading
        ▲                     │ (same content known: reuse)      │
        └──── file changed ───┴──────────────┐                   ▼
                                             └─────────────▶ processing
    processing ──poller──▶ downloadable ──downloader──▶ downloaded
    downloaded ──finisher──▶ delivered
    any live stage ──▶ failing ──finisher──▶ failed

``creating`` is committed, with a fresh idempotency key, *before* the remote
record is requested, so after a crash the uploader knows a record may exist
and looks for it before asking for another one.

Workers take documents with :meth:`SqliteJournal.claim`, which leases them so
no two steps run on one document at once. A transition is a compare-and-set
on the stage: a step that lost a race (the webhook and the poller, say) gets
``StaleDocument`` instead of overwriting newer news.

Accepted risk: the database runs in WAL mode with ``synchronous=NORMAL``. A
killed process loses nothing; a power cut may lose the last transitions, which
the workers then repeat (every step is safe to repeat), but never corrupts the
file.

The journal is meant to stay small and replaceable: a PostgreSQL journal
shared by several daemons would implement the same methods, claiming with
``SELECT ... FOR UPDATE SKIP LOCKED`` where this one relies on being the only
writer.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from syncd.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path


class Stage(enum.StrEnum):
    """Where a document is in its life; see the module docstring."""

    DISCOVERED = "discovered"
    STABLE = "stable"
    CREATING = "creating"
    UPLOADING = "uploading"
    PROCESSING = "processing"
    DOWNLOADABLE = "downloadable"
    DOWNLOADED = "downloaded"
    DELIVERED = "delivered"
    FAILING = "failing"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (Stage.DELIVERED, Stage.FAILED)


TERMINAL = (Stage.DELIVERED, Stage.FAILED)
LIVE = tuple(stage for stage in Stage if not stage.terminal)

# Every legal move. Going back to ``discovered`` means the file changed under
# us, so its new content has to settle and be uploaded afresh.
TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    Stage.DISCOVERED: frozenset({Stage.STABLE}),
    Stage.STABLE: frozenset({Stage.CREATING, Stage.PROCESSING, Stage.DISCOVERED}),
    Stage.CREATING: frozenset({Stage.UPLOADING, Stage.DISCOVERED}),
    Stage.UPLOADING: frozenset({Stage.PROCESSING, Stage.DISCOVERED}),
    Stage.PROCESSING: frozenset({Stage.DOWNLOADABLE}),
    Stage.DOWNLOADABLE: frozenset({Stage.DOWNLOADED}),
    Stage.DOWNLOADED: frozenset({Stage.DELIVERED}),
    Stage.DELIVERED: frozenset(),
    Stage.FAILING: frozenset({Stage.FAILED}),
    Stage.FAILED: frozenset(),
}
for _stage in LIVE:
    if _stage is not Stage.FAILING:
        TRANSITIONS[_stage] = TRANSITIONS[_stage] | {Stage.FAILING}

# Ids bound into one statement, well under SQLite's limit on parameters.
_IDS_PER_STATEMENT = 500

# When a document enters a stage, the matching timestamp column is stamped.
_STAMPS = {
    Stage.STABLE: "stable_at",
    Stage.PROCESSING: "uploaded_at",
    Stage.DOWNLOADABLE: "completed_at",
    Stage.DELIVERED: "finished_at",
    Stage.FAILED: "finished_at",
}

# Fields a transition or a reschedule may set. Everything else is owned by
# the journal itself (id, stage, lease, timestamps).
_WRITABLE = frozenset(
    {
        "size",
        "mtime_ns",
        "changed_at",
        "sha256",
        "pages",
        "idempotency_key",
        "creating_at",
        "remote_id",
        "upload_url",
        "reused_from",
        "remote_state",
        "poll_interval",
        "outbox_path",
        "final_path",
        "hold_reason",
        "error_reason",
        "error_message",
        "attempts",
    }
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id              INTEGER PRIMARY KEY,
    path            TEXT NOT NULL,
    stage           TEXT NOT NULL,
    size            INTEGER NOT NULL DEFAULT 0,
    mtime_ns        INTEGER NOT NULL DEFAULT 0,
    changed_at      REAL NOT NULL,
    sha256          TEXT,
    pages           INTEGER,
    idempotency_key TEXT,
    creating_at     REAL,
    remote_id       TEXT,
    upload_url      TEXT,
    reused_from     INTEGER,
    remote_state    TEXT,
    poll_interval   REAL,
    outbox_path     TEXT,
    final_path      TEXT,
    hold_reason     TEXT,
    error_reason    TEXT,
    error_message   TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    not_before      REAL NOT NULL DEFAULT 0,
    lease_until     REAL NOT NULL DEFAULT 0,
    discovered_at   REAL NOT NULL,
    stable_at       REAL,
    uploaded_at     REAL,
    completed_at    REAL,
    finished_at     REAL,
    updated_at      REAL NOT NULL
);
-- A path is queued at most once while its document is alive.
CREATE UNIQUE INDEX IF NOT EXISTS documents_live_path
    ON documents(path) WHERE stage NOT IN ('delivered', 'failed');
CREATE INDEX IF NOT EXISTS documents_due ON documents(stage, not_before);
CREATE INDEX IF NOT EXISTS documents_remote ON documents(remote_id);
CREATE INDEX IF NOT EXISTS documents_sha ON documents(sha256);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

_SCHEMA_VERSION = "1"


class StaleDocument(Exception):
    """A transition found the document in another stage than expected."""


@dataclasses.dataclass(frozen=True)
class Document:
    """One row of the journal, as a worker sees it when it claims it."""

    id: int
    path: str  # relative to the inbox, POSIX separators
    stage: Stage
    size: int
    mtime_ns: int
    changed_at: float
    sha256: str | None
    pages: int | None
    idempotency_key: str | None
    creating_at: float | None
    remote_id: str | None
    upload_url: str | None
    reused_from: int | None
    remote_state: str | None
    poll_interval: float | None
    outbox_path: str | None
    final_path: str | None
    hold_reason: str | None
    error_reason: str | None
    error_message: str | None
    attempts: int  # failed tries of the current stage
    not_before: float
    lease_until: float
    discovered_at: float
    stable_at: float | None
    uploaded_at: float | None
    completed_at: float | None
    finished_at: float | None
    updated_at: float

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @classmethod
    def _from_row(cls, row: sqlite3.Row) -> Document:
        values = dict(row)
        values["stage"] = Stage(values["stage"])
        return cls(**values)


Listener = Callable[[Stage], None]


class Journal(Protocol):
    """What the daemon, its workers and its commands need of a journal.

    ``SqliteJournal`` is the one for a single daemon. A journal shared by
    several daemons (PostgreSQL, claiming with ``SELECT ... FOR UPDATE SKIP
    LOCKED`` and leases that expire) implements the same calls.
    """

    def subscribe(self, listener: Listener) -> None: ...
    def close(self) -> None: ...
    def add_discovered(
        self, found: Iterable[tuple[str, int, int]]
    ) -> list[tuple[int, str]]: ...
    def release_all_leases(self) -> int: ...
    def claim(
        self,
        stages: Iterable[Stage],
        limit: int,
        lease_seconds: float = ...,
        ahead: float = ...,
    ) -> list[Document]: ...
    def next_due(self, stages: Iterable[Stage]) -> float | None: ...
    def advance(
        self,
        doc: Document,
        to: Stage,
        *,
        not_before: float | None = None,
        keep_lease: bool = False,
        **fields: Any,
    ) -> Document: ...
    def reschedule(
        self, doc: Document, *, not_before: float, **fields: Any
    ) -> Document: ...
    def note(self, doc: Document, **fields: Any) -> Document: ...
    def forget(self, doc: Document) -> None: ...
    def hint_remote(self, remote_id: str) -> int: ...
    def complete_remote(self, remote_ids: Iterable[str]) -> list[Document]: ...
    def release_holds(self) -> int: ...
    def get(self, doc_id: int) -> Document | None: ...
    def find_same_content(self, sha256: str, doc_id: int) -> Document | None: ...
    def remote_ids(self) -> set[str]: ...
    def counts(self) -> dict[Stage, int]: ...
    def totals(self) -> dict[str, int]: ...
    def failure_reasons(self) -> dict[str, int]: ...
    def durations(self, limit: int = ...) -> list[dict[str, float]]: ...
    def live_count(self) -> int: ...
    def oldest_waiting(self, limit: int = ...) -> list[Document]: ...
    def recent(self, stage: Stage, limit: int = ...) -> list[Document]: ...
    def since(self, first_id: int) -> list[Document]: ...
    def find(self, reference: str) -> list[Document]: ...
    def put_meta(self, key: str, value: object) -> None: ...
    def get_meta(self, key: str) -> Any: ...
    def integrity_check(self) -> str: ...


class SqliteJournal:
    """The journal in one SQLite file, for one daemon on one machine.

    Safe to use from several threads (the watcher's and the event loop's):
    every call takes one lock and one short transaction.
    """

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None
            )
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                [f"state_dir: cannot open the journal {path}: {exc}"]
            ) from exc
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._db.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?)",
            (_SCHEMA_VERSION,),
        )

    # -- plumbing ---------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(stage)`` after each commit that moves work into a stage.

        Listeners run on the committing thread and must only hand off (set an
        event), never block.
        """
        self._listeners.append(listener)

    def _announce(self, stages: Iterable[Stage]) -> None:
        for stage in set(stages):
            for listener in self._listeners:
                listener(stage)

    def close(self) -> None:
        with self._lock:
            self._db.execute("PRAGMA optimize")
            self._db.close()

    # -- what the watcher calls -------------------------------------------

    def add_discovered(
        self, found: Iterable[tuple[str, int, int]]
    ) -> list[tuple[int, str]]:
        """Queue files ``(path, size, mtime_ns)`` not already alive.

        Returns ``(id, path)`` of each document this call added.
        """
        now = self._clock()
        added = []
        with self._transaction() as db:
            for path, size, mtime in found:
                row = db.execute(
                    "INSERT OR IGNORE INTO documents"
                    " (path, stage, size, mtime_ns, changed_at, discovered_at,"
                    "  updated_at)"
                    " VALUES (?, 'discovered', ?, ?, ?, ?, ?) RETURNING id",
                    (path, size, mtime, now, now, now),
                ).fetchone()
                if row is not None:
                    added.append((int(row[0]), path))
        if added:
            self._announce([Stage.DISCOVERED])

        return added

    # -- what the workers call --------------------------------------------

    def release_all_leases(self) -> int:
        """Free every lease; only right at start, when no step can be running."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE documents SET lease_until = 0 WHERE lease_until > 0"
            )
            return cursor.rowcount

    def claim(
        self,
        stages: Iterable[Stage],
        limit: int,
        lease_seconds: float = 86_400,
        ahead: float = 0.0,
    ) -> list[Document]:
        """Lease up to ``limit`` due documents in ``stages``, oldest due first.

        Documents due within ``ahead`` seconds count as due, so that a worker
        whose documents fall due one by one can take them in batches.
        """
        stage_list = [stage.value for stage in stages]
        marks = ",".join("?" * len(stage_list))
        now = self._clock()
        # ``marks`` holds only "?" placeholders: no value enters the SQL.
        with self._transaction() as db:
            rows = db.execute(
                f"UPDATE documents SET lease_until = ? WHERE id IN ("  # noqa: S608
                f" SELECT id FROM documents WHERE stage IN ({marks})"
                "  AND not_before <= ? AND lease_until <= ?"
                "  ORDER BY not_before, id LIMIT ?)"
                " RETURNING *",
                (now + lease_seconds, *stage_list, now + ahead, now, limit),
            ).fetchall()
        documents = [Document._from_row(row) for row in rows]

        return sorted(documents, key=lambda doc: (doc.not_before, doc.id))

    def next_due(self, stages: Iterable[Stage]) -> float | None:
        """When the earliest unleased document in ``stages`` becomes due."""
        stage_list = [stage.value for stage in stages]
        marks = ",".join("?" * len(stage_list))
        # ``marks`` holds only "?" placeholders: no value enters the SQL.
        rows = self._query(
            f"SELECT MIN(not_before) FROM documents WHERE stage IN ({marks})"  # noqa: S608
            " AND lease_until <= ?",
            (*stage_list, self._clock()),
        )
        value = rows[0][0]

        return None if value is None else float(value)

    def advance(
        self,
        doc: Document,
        to: Stage,
        *,
        not_before: float | None = None,
        keep_lease: bool = False,
        **fields: Any,
    ) -> Document:
        """Move ``doc`` from its stage to ``to``, setting ``fields``; free the lease.

        The document is due at ``not_before``, by default now: documents
        reach a stage in order, and one retried earlier is not overtaken by
        everything that arrives after it. ``attempts`` starts again at 0 in
        the new stage unless given.

        A step that goes on with the document in its new stage passes
        ``keep_lease``, so that no other step (its own worker's included,
        when the new stage is one it also handles) claims it meanwhile.

        Raises:
            StaleDocument: the document is no longer in ``doc.stage``.
            ValueError: ``to`` is not a legal next stage, or a field is unknown.
        """
        if to not in TRANSITIONS[doc.stage]:
            raise ValueError(f"illegal transition {doc.stage} -> {to} for {doc.id}")
        now = self._clock()
        changes = {"attempts": 0, **fields, "stage": to.value}
        if stamp := _STAMPS.get(to):
            changes[stamp] = now
        due = now if not_before is None else not_before
        updated = self._update(doc, changes, due, keep_lease=keep_lease)
        if not keep_lease:
            self._announce([to])

        return updated

    def reschedule(
        self, doc: Document, *, not_before: float, **fields: Any
    ) -> Document:
        """Keep ``doc`` in its stage, due again at ``not_before``; free the lease."""
        updated = self._update(doc, dict(fields), not_before)
        if not_before <= self._clock():
            self._announce([doc.stage])

        return updated

    def _update(
        self,
        doc: Document,
        changes: dict[str, Any],
        not_before: float,
        keep_lease: bool = False,
    ) -> Document:
        unknown = set(changes) - _WRITABLE - {"stage", *_STAMPS.values()}
        if unknown:
            raise ValueError(f"not journal fields: {sorted(unknown)}")
        changes["not_before"] = not_before
        if not keep_lease:
            changes["lease_until"] = 0
        changes["updated_at"] = self._clock()
        columns = ", ".join(f"{name} = ?" for name in changes)
        with self._transaction() as db:
            row = db.execute(
                f"UPDATE documents SET {columns}"  # noqa: S608 - names checked above
                " WHERE id = ? AND stage = ? RETURNING *",
                (*changes.values(), doc.id, doc.stage.value),
            ).fetchone()
        if row is None:
            raise StaleDocument(f"document {doc.id} left stage {doc.stage}")

        return Document._from_row(row)

    def note(self, doc: Document, **fields: Any) -> Document:
        """Record ``fields`` on a document that stays leased in its stage.

        Used to write down a decision (the outbox name chosen, say) before
        acting on it, so that a repeated step makes the same decision.
        """
        return self._update(doc, dict(fields), doc.not_before, keep_lease=True)

    def forget(self, doc: Document) -> None:
        """Drop a document whose file went away before it cost anything."""
        with self._transaction() as db:
            db.execute(
                "DELETE FROM documents WHERE id = ? AND stage = ?",
                (doc.id, doc.stage.value),
            )

    def hint_remote(self, remote_id: str) -> int:
        """Make documents processing ``remote_id`` due for a poll now; count them.

        The webhook calls this: a notification only says "look again", the
        poller still reads the record before anything is downloaded.
        """
        now = self._clock()
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE documents SET not_before = ?"
                " WHERE remote_id = ? AND stage = 'processing' AND not_before > ?",
                (now, remote_id, now),
            )
            found = db.execute(
                "SELECT COUNT(*) FROM documents"
                " WHERE remote_id = ? AND stage = 'processing'",
                (remote_id,),
            ).fetchone()[0]
        if cursor.rowcount:
            self._announce([Stage.PROCESSING])

        return int(found)

    def complete_remote(self, remote_ids: Iterable[str]) -> list[Document]:
        """Move unleased documents processing these records to ``downloadable``.

        For records the service listed as completed. A document a step holds
        is left to that step, which reads its record anyway.
        """
        now = self._clock()
        wanted = list(dict.fromkeys(remote_ids))
        moved: list[Document] = []
        with self._transaction() as db:
            for start in range(0, len(wanted), _IDS_PER_STATEMENT):
                batch = wanted[start : start + _IDS_PER_STATEMENT]
                marks = ",".join("?" * len(batch))
                # ``marks`` holds only "?" placeholders: no value enters the SQL.
                rows = db.execute(
                    "UPDATE documents SET stage = 'downloadable',"  # noqa: S608
                    " remote_state = 'completed', completed_at = ?, not_before = ?,"
                    " attempts = 0, updated_at = ?"
                    " WHERE stage = 'processing' AND lease_until <= ?"
                    f" AND remote_id IN ({marks}) RETURNING *",
                    (now, now, now, now, *batch),
                ).fetchall()
                moved.extend(Document._from_row(row) for row in rows)
        if moved:
            self._announce([Stage.DOWNLOADABLE])

        return moved

    def release_holds(self) -> int:
        """Make every document held for its purchase order due now; count them."""
        now = self._clock()
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE documents SET not_before = ?"
                " WHERE hold_reason IS NOT NULL AND not_before > ?"
                " AND stage IN ('stable', 'creating')",
                (now, now),
            )
        if cursor.rowcount:
            self._announce([Stage.STABLE, Stage.CREATING])

        return cursor.rowcount

    # -- look-ups ---------------------------------------------------------

    def get(self, doc_id: int) -> Document | None:
        rows = self._query("SELECT * FROM documents WHERE id = ?", (doc_id,))
        return Document._from_row(rows[0]) if rows else None

    def find_same_content(self, sha256: str, doc_id: int) -> Document | None:
        """Another document with this content whose record ``doc_id`` can share.

        One with a remote record comes first. Without one, a document that is
        getting its record (or an earlier one about to) is returned too, for
        the caller to wait for; of two waiting at once, the later waits.
        """
        rows = self._query(
            "SELECT * FROM documents WHERE sha256 = ? AND id != ?"
            " AND stage NOT IN ('failing', 'failed')"
            " AND (remote_id IS NOT NULL OR stage IN ('creating', 'uploading')"
            "      OR (stage = 'stable' AND id < ?))"
            " ORDER BY remote_id IS NULL, id LIMIT 1",
            (sha256, doc_id, doc_id),
        )
        return Document._from_row(rows[0]) if rows else None

    def remote_ids(self) -> set[str]:
        rows = self._query(
            "SELECT DISTINCT remote_id FROM documents WHERE remote_id IS NOT NULL"
        )
        return {row[0] for row in rows}

    def counts(self) -> dict[Stage, int]:
        """How many documents are in each stage (every stage is present)."""
        rows = self._query("SELECT stage, COUNT(*) FROM documents GROUP BY stage")
        counts = dict.fromkeys(Stage, 0)
        for stage, count in rows:
            counts[Stage(stage)] = count

        return counts

    def totals(self) -> dict[str, int]:
        """Documents ever uploaded (not reused) and ever downloaded, for metrics."""
        rows = self._query(
            "SELECT"
            " COALESCE(SUM(uploaded_at IS NOT NULL AND reused_from IS NULL), 0),"
            " COALESCE(SUM(stage IN ('downloaded', 'delivered')), 0)"
            " FROM documents"
        )
        uploads, downloads = rows[0]

        return {"uploads": int(uploads), "downloads": int(downloads)}

    def failure_reasons(self) -> dict[str, int]:
        """How many documents ended failed, by their ``error_reason``."""
        rows = self._query(
            "SELECT COALESCE(error_reason, 'unknown'), COUNT(*) FROM documents"
            " WHERE stage = 'failed' GROUP BY 1"
        )

        return {str(reason): int(count) for reason, count in rows}

    def durations(self, limit: int = 100_000) -> list[dict[str, float]]:
        """Seconds the newest delivered documents spent in each phase.

        Each item maps ``settle``, ``upload``, ``processing`` and ``delivery``
        to seconds, leaving out a phase whose timestamps are missing.
        """
        rows = self._query(
            "SELECT stable_at - discovered_at, uploaded_at - stable_at,"
            " completed_at - uploaded_at, finished_at - completed_at"
            " FROM documents WHERE stage = 'delivered'"
            " ORDER BY finished_at DESC, id DESC LIMIT ?",
            (limit,),
        )
        phases = ("settle", "upload", "processing", "delivery")

        return [
            {
                phase: max(float(seconds), 0.0)
                for phase, seconds in zip(phases, row, strict=True)
                if seconds is not None
            }
            for row in rows
        ]

    def live_count(self) -> int:
        rows = self._query(
            "SELECT COUNT(*) FROM documents WHERE stage NOT IN ('delivered', 'failed')"
        )
        return int(rows[0][0])

    def oldest_waiting(self, limit: int = 10) -> list[Document]:
        rows = self._query(
            "SELECT * FROM documents WHERE stage NOT IN ('delivered', 'failed')"
            " ORDER BY discovered_at, id LIMIT ?",
            (limit,),
        )
        return [Document._from_row(row) for row in rows]

    def recent(self, stage: Stage, limit: int = 10) -> list[Document]:
        rows = self._query(
            "SELECT * FROM documents WHERE stage = ?"
            " ORDER BY updated_at DESC, id DESC LIMIT ?",
            (stage.value, limit),
        )
        return [Document._from_row(row) for row in rows]

    def since(self, first_id: int) -> list[Document]:
        """Documents with an id of at least ``first_id`` (one run's work)."""
        rows = self._query("SELECT * FROM documents WHERE id >= ?", (first_id,))
        return [Document._from_row(row) for row in rows]

    def find(self, reference: str) -> list[Document]:
        """Documents whose id, remote id or inbox path is ``reference``."""
        rows = self._query(
            "SELECT * FROM documents WHERE CAST(id AS TEXT) = ? OR remote_id = ?"
            " OR path = ? OR final_path = ? ORDER BY id",
            (reference, reference, reference, reference),
        )
        return [Document._from_row(row) for row in rows]

    # -- small facts kept between runs ------------------------------------

    def put_meta(self, key: str, value: object) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )

    def get_meta(self, key: str) -> Any:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else None

    def integrity_check(self) -> str:
        return str(self._query("PRAGMA integrity_check")[0][0])
