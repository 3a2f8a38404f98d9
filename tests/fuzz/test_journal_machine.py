"""The journal under random sequences of everything its callers do.

A model of each document (its stage, whether a step holds it, the remote
record it follows) runs beside a ``SqliteJournal`` on a temporary file, and
hypothesis drives both with the calls the watcher, the workers and the
webhook make, including duplicate and out-of-order notifications and
crashes (close, reopen, release every lease). After every step:

- an illegal transition is never accepted;
- a path is queued at most once while its document is alive;
- terminal documents never change again;
- the journal and the model agree on every document's stage.

The "nothing stuck" rule recovers as a restart does and then claims with
the clock past every due time: every live document must come back, so none
is left without a next step.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from syncd.downloader import Downloader
from syncd.finisher import Finisher
from syncd.journal import (
    LIVE,
    TRANSITIONS,
    Document,
    SqliteJournal,
    Stage,
    StaleDocument,
)
from syncd.poller import Poller
from syncd.uploader import Uploader
from syncd.watcher import Settler
from tests.fuzz.profiles import fuzz_settings

PATHS = ("a.pdf", "b.pdf", "sub/c.pdf", "sub/d é.pdf")
REMOTE_IDS = ("r1", "r2", "r3")
WORKERS = (Settler, Uploader, Poller, Downloader, Finisher)


@dataclasses.dataclass
class Model:
    path: str
    stage: Stage
    remote_id: str | None = None


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_every_live_stage_has_a_worker_to_move_it_on() -> None:
    handled = {stage for worker in WORKERS for stage in worker.stages}

    assert handled == set(LIVE)


class JournalMachine(RuleBasedStateMachine):
    held = Bundle("held")

    def __init__(self) -> None:
        super().__init__()
        self._folder = tempfile.TemporaryDirectory(prefix="syncd-journal-fuzz-")
        self.path = Path(self._folder.name) / "journal.sqlite3"
        self.clock = Clock()
        self.journal = SqliteJournal(self.path, clock=self.clock)
        self.model: dict[int, Model] = {}
        self.leased: set[int] = set()
        self.terminal: dict[int, Document] = {}
        # Bumped on every crash, so that handles of a dead process are spent.
        self.generation = 0

    @initialize()
    def start(self) -> None:
        self.journal.release_all_leases()

    def teardown(self) -> None:
        self.journal.close()
        self._folder.cleanup()

    # -- the watcher ----------------------------------------------------

    @rule(paths=st.lists(st.sampled_from(PATHS), max_size=3))
    def discover(self, paths: list[str]) -> None:
        alive = {doc.path for doc in self.model.values() if not doc.stage.terminal}
        fresh = set(paths) - alive
        added = self.journal.add_discovered([(path, 100, 1) for path in paths])

        # A count of the new documents, or the list of them.
        assert (added if isinstance(added, int) else len(added)) == len(fresh)
        for document in self.journal.oldest_waiting(limit=1000):
            if document.id not in self.model:
                self.model[document.id] = Model(document.path, Stage.DISCOVERED)

    # -- the workers ----------------------------------------------------

    @rule(
        target=held,
        stages=st.sets(st.sampled_from(LIVE), min_size=1),
        limit=st.integers(1, 4),
    )
    def claim(self, stages: set[Stage], limit: int) -> object:
        taken = self.journal.claim(stages, limit)

        for document in taken:
            assert document.stage in stages
            assert document.id not in self.leased, "claimed while leased"
            assert document.not_before <= self.clock.now
            self.leased.add(document.id)
        return (self.generation, taken)

    @rule(handle=consumes(held), choice=st.data())
    def advance(
        self, handle: tuple[int, list[Document]], choice: st.DataObject
    ) -> None:
        generation, documents = handle
        if not documents or generation != self.generation:
            return
        document = choice.draw(st.sampled_from(documents))
        if document.id not in self.leased or document.id not in self.model:
            return
        target = choice.draw(st.sampled_from(list(Stage)))
        remote = choice.draw(st.sampled_from(REMOTE_IDS))
        current = self.journal.get(document.id)
        assert current is not None

        if target not in TRANSITIONS[current.stage]:
            with pytest.raises(ValueError, match="illegal transition"):
                self.journal.advance(current, target, remote_id=remote)
            assert self.journal.get(document.id) == current
            self.journal.reschedule(current, not_before=self.clock.now)
        else:
            self.journal.advance(current, target, remote_id=remote)
            self.model[document.id].stage = target
            self.model[document.id].remote_id = remote
            if target.terminal:
                terminal = self.journal.get(document.id)
                assert terminal is not None
                self.terminal[document.id] = terminal
        self.leased.discard(document.id)

    @rule(handle=consumes(held), delay=st.floats(0, 120), choice=st.data())
    def reschedule(
        self, handle: tuple[int, list[Document]], delay: float, choice: st.DataObject
    ) -> None:
        generation, documents = handle
        if not documents or generation != self.generation:
            return
        document = choice.draw(st.sampled_from(documents))
        current = self.journal.get(document.id)
        if current is None or document.id not in self.leased:
            return
        self.journal.reschedule(
            current, not_before=self.clock.now + delay, attempts=current.attempts + 1
        )
        self.leased.discard(document.id)

    @rule(handle=consumes(held), choice=st.data())
    def forget(self, handle: tuple[int, list[Document]], choice: st.DataObject) -> None:
        generation, documents = handle
        if not documents or generation != self.generation:
            return
        document = choice.draw(st.sampled_from(documents))
        current = self.journal.get(document.id)
        if current is None or document.id not in self.leased:
            return
        self.journal.forget(current)
        del self.model[document.id]
        self.leased.discard(document.id)

    @rule(handle=held)
    def a_stale_handle_is_refused(self, handle: tuple[int, list[Document]]) -> None:
        _, documents = handle
        for document in documents:
            current = self.journal.get(document.id)
            if current is None or current.stage == document.stage:
                continue
            legal = sorted(TRANSITIONS[document.stage])
            if legal:
                with pytest.raises(StaleDocument):
                    self.journal.advance(document, legal[0])

    # -- the webhook ----------------------------------------------------

    @rule(remote=st.sampled_from(REMOTE_IDS), repeats=st.integers(1, 3))
    def notify(self, remote: str, repeats: int) -> None:
        processing = [
            doc_id
            for doc_id, doc in self.model.items()
            if doc.stage is Stage.PROCESSING and doc.remote_id == remote
        ]
        for _ in range(repeats):
            assert self.journal.hint_remote(remote) == len(processing)
        for doc_id in processing:
            document = self.journal.get(doc_id)
            assert document is not None
            if doc_id not in self.leased:
                assert document.not_before <= self.clock.now

    @rule(remote=st.sampled_from(REMOTE_IDS))
    def notify_before_the_record_is_known(self, remote: str) -> None:
        # A notification may outrun the upload's commit: it changes nothing.
        before = {doc.id: doc for doc in self.journal.since(0)}
        if any(doc.remote_id == remote for doc in before.values()):
            return
        assert self.journal.hint_remote(remote) == 0
        assert {doc.id: doc for doc in self.journal.since(0)} == before

    # -- time and crashes -----------------------------------------------

    @rule(seconds=st.floats(0, 300))
    def time_passes(self, seconds: float) -> None:
        self.clock.now += seconds

    @rule()
    def crash(self) -> None:
        self.journal.close()
        self.journal = SqliteJournal(self.path, clock=self.clock)
        self.journal.release_all_leases()
        self.leased.clear()
        self.generation += 1

    @precondition(lambda self: bool(self.model))
    @rule()
    def nothing_is_stuck(self) -> None:
        self.crash()
        latest = max(doc.not_before for doc in self.journal.since(0))
        self.clock.now = max(self.clock.now, latest) + 1
        live = {doc_id for doc_id, doc in self.model.items() if not doc.stage.terminal}

        claimed = {doc.id for doc in self.journal.claim(LIVE, limit=1000)}

        assert claimed == live
        self.crash()

    # -- what must always hold ------------------------------------------

    @invariant()
    def stages_match_the_model(self) -> None:
        actual = {doc.id: doc.stage for doc in self.journal.since(0)}
        assert actual == {doc_id: doc.stage for doc_id, doc in self.model.items()}

    @invariant()
    def a_live_path_is_queued_once(self) -> None:
        live = [doc.path for doc in self.journal.since(0) if not doc.stage.terminal]
        assert len(live) == len(set(live))

    @invariant()
    def terminal_documents_never_change(self) -> None:
        for doc_id, snapshot in self.terminal.items():
            assert self.journal.get(doc_id) == snapshot


TestJournal = JournalMachine.TestCase
TestJournal.settings = fuzz_settings()
