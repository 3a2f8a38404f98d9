"""The journal's state machine, claims and look-ups, on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.journal import TRANSITIONS, SqliteJournal, Stage, StaleDocument


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def journal(tmp_path: Path, clock: Clock) -> SqliteJournal:
    journal = SqliteJournal(tmp_path / "journal.sqlite3", clock=clock)
    yield journal
    journal.close()


def test_a_live_path_is_queued_once(journal: SqliteJournal) -> None:
    added = journal.add_discovered([("a.pdf", 10, 1), ("b.pdf", 20, 2)])
    assert [path for _, path in added] == ["a.pdf", "b.pdf"]
    assert journal.add_discovered([("a.pdf", 10, 1)]) == []
    assert journal.counts()[Stage.DISCOVERED] == 2


def test_a_path_is_queued_again_after_its_document_ended(
    journal: SqliteJournal,
) -> None:
    journal.add_discovered([("a.pdf", 10, 1)])
    (doc,) = journal.claim([Stage.DISCOVERED], 10)
    journal.advance(doc, Stage.FAILING, error_reason="x", error_message="y")
    (doc,) = journal.claim([Stage.FAILING], 10)
    journal.advance(doc, Stage.FAILED)

    assert len(journal.add_discovered([("a.pdf", 10, 1)])) == 1


def test_claim_leases_so_a_document_is_not_taken_twice(
    journal: SqliteJournal,
) -> None:
    journal.add_discovered([("a.pdf", 10, 1)])

    first = journal.claim([Stage.DISCOVERED], 10)
    second = journal.claim([Stage.DISCOVERED], 10)

    assert [doc.path for doc in first] == ["a.pdf"]
    assert second == []


def test_claim_skips_documents_not_yet_due(
    journal: SqliteJournal, clock: Clock
) -> None:
    journal.add_discovered([("a.pdf", 10, 1)])
    (doc,) = journal.claim([Stage.DISCOVERED], 1)
    journal.reschedule(doc, not_before=clock.now + 5)

    assert journal.claim([Stage.DISCOVERED], 1) == []
    assert journal.next_due([Stage.DISCOVERED]) == clock.now + 5
    clock.now += 5
    assert len(journal.claim([Stage.DISCOVERED], 1)) == 1


def test_claim_ahead_takes_documents_falling_due_that_soon(
    journal: SqliteJournal, clock: Clock
) -> None:
    journal.add_discovered([("a.pdf", 10, 1), ("b.pdf", 10, 1), ("c.pdf", 10, 1)])
    claimed = journal.claim([Stage.DISCOVERED], 3)
    for doc, wait in zip(claimed, (0, 0.8, 1.5), strict=True):
        journal.reschedule(doc, not_before=clock.now + wait)

    taken = journal.claim([Stage.DISCOVERED], 10, ahead=1.0)

    assert [doc.path for doc in taken] == ["a.pdf", "b.pdf"]
    assert journal.next_due([Stage.DISCOVERED]) == clock.now + 1.5


def test_release_all_leases_resumes_work_after_a_crash(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = SqliteJournal(path, clock=clock)
    journal.add_discovered([("a.pdf", 10, 1)])
    journal.claim([Stage.DISCOVERED], 1)
    journal.close()

    reopened = SqliteJournal(path, clock=clock)
    assert reopened.claim([Stage.DISCOVERED], 1) == []
    assert reopened.release_all_leases() == 1
    assert len(reopened.claim([Stage.DISCOVERED], 1)) == 1
    reopened.close()


def test_advance_refuses_an_illegal_transition(journal: SqliteJournal) -> None:
    journal.add_discovered([("a.pdf", 10, 1)])
    (doc,) = journal.claim([Stage.DISCOVERED], 1)

    with pytest.raises(ValueError, match="illegal transition discovered -> delivered"):
        journal.advance(doc, Stage.DELIVERED)


def test_advance_from_a_stale_stage_raises_stale_document(
    journal: SqliteJournal,
) -> None:
    journal.add_discovered([("a.pdf", 10, 1)])
    (doc,) = journal.claim([Stage.DISCOVERED], 1)
    journal.advance(doc, Stage.STABLE, sha256="abc", pages=1)

    with pytest.raises(StaleDocument):
        journal.advance(doc, Stage.STABLE, sha256="abc", pages=1)


def test_advance_rejects_unknown_fields(journal: SqliteJournal) -> None:
    journal.add_discovered([("a.pdf", 10, 1)])
    (doc,) = journal.claim([Stage.DISCOVERED], 1)

    with pytest.raises(ValueError, match="not journal fields"):
        journal.advance(doc, Stage.STABLE, stage_hack="x")


def test_every_live_stage_can_fail_and_terminal_stages_are_final() -> None:
    for stage in Stage:
        if stage.terminal:
            assert TRANSITIONS[stage] == frozenset()
        elif stage is not Stage.FAILING:
            assert Stage.FAILING in TRANSITIONS[stage]


def test_advance_stamps_the_stage_time(journal: SqliteJournal, clock: Clock) -> None:
    journal.add_discovered([("a.pdf", 10, 1)])
    (doc,) = journal.claim([Stage.DISCOVERED], 1)
    clock.now += 7

    stable = journal.advance(doc, Stage.STABLE, sha256="abc", pages=3)

    assert stable.stable_at == clock.now
    assert stable.pages == 3
    assert stable.lease_until == 0


def test_hint_remote_makes_only_processing_documents_due(
    journal: SqliteJournal, clock: Clock
) -> None:
    journal.add_discovered([("a.pdf", 10, 1)])
    (doc,) = journal.claim([Stage.DISCOVERED], 1)
    doc = journal.advance(doc, Stage.STABLE, sha256="abc", pages=1)
    doc = journal.advance(doc, Stage.PROCESSING, remote_id="r1", not_before=5_000)

    assert journal.hint_remote("unknown") == 0
    assert journal.hint_remote("r1") == 1
    assert journal.get(doc.id).not_before == clock.now  # type: ignore[union-attr]


def _processing(journal: SqliteJournal, path: str, remote_id: str, due: float) -> int:
    journal.add_discovered([(path, 10, 1)])
    (doc,) = journal.claim([Stage.DISCOVERED], 1)
    doc = journal.advance(doc, Stage.STABLE, sha256=path, pages=1)
    doc = journal.advance(doc, Stage.PROCESSING, remote_id=remote_id, not_before=due)
    return doc.id


def test_complete_remote_moves_unleased_processing_documents_only(
    journal: SqliteJournal, clock: Clock
) -> None:
    free = _processing(journal, "a.pdf", "r1", due=5_000)
    held = _processing(journal, "b.pdf", "r2", due=4_000)
    clock.now = 6_000
    (leased,) = journal.claim([Stage.PROCESSING], 1)
    assert leased.id == held

    moved = journal.complete_remote(["r1", "r2", "unknown"])

    assert [doc.id for doc in moved] == [free]
    assert moved[0].stage is Stage.DOWNLOADABLE
    assert moved[0].completed_at == clock.now
    assert journal.get(held).stage is Stage.PROCESSING  # type: ignore[union-attr]
    assert journal.complete_remote(["r1"]) == []


def test_listeners_hear_of_new_work(journal: SqliteJournal) -> None:
    heard: list[Stage] = []
    journal.subscribe(heard.append)

    journal.add_discovered([("a.pdf", 10, 1)])
    (doc,) = journal.claim([Stage.DISCOVERED], 1)
    journal.advance(doc, Stage.STABLE, sha256="abc", pages=1)

    assert heard == [Stage.DISCOVERED, Stage.STABLE]


def test_find_same_content_prefers_a_document_with_a_remote_record(
    journal: SqliteJournal,
) -> None:
    journal.add_discovered([("a.pdf", 10, 1), ("b.pdf", 10, 1), ("c.pdf", 10, 1)])
    docs = journal.claim([Stage.DISCOVERED], 3)
    a, b, c = (journal.advance(d, Stage.STABLE, sha256="same", pages=1) for d in docs)
    journal.advance(b, Stage.PROCESSING, remote_id="rb")

    found = journal.find_same_content("same", c.id)

    assert found is not None and found.remote_id == "rb"
    # A later document with no record yet is never waited for.
    assert journal.find_same_content("same", a.id) is not None
    assert journal.find_same_content("other", a.id) is None


def test_integrity_check_of_a_fresh_journal_is_ok(journal: SqliteJournal) -> None:
    assert journal.integrity_check() == "ok"


def test_same_content_waits_for_a_later_document_already_creating_its_record(
    journal: SqliteJournal,
) -> None:
    journal.add_discovered([("a.pdf", 10, 1), ("b.pdf", 10, 1)])
    first, second = journal.claim([Stage.DISCOVERED], 2)
    second = journal.advance(second, Stage.STABLE, sha256="same", pages=1)
    journal.advance(second, Stage.CREATING, idempotency_key="k")
    first = journal.advance(first, Stage.STABLE, sha256="same", pages=1)

    found = journal.find_same_content("same", first.id)

    assert found is not None and found.id == second.id
    assert found.remote_id is None
