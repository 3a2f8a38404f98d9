"""Finding finished documents in the service's list instead of polling each one."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from syncd.errors import ExitCode
from syncd.simulator import Simulator, SimulatorOptions
from tests.harness import API_KEY, Tree, make_settings, run_once

DOCUMENTS = 6
ONE_RECORD = re.compile(r"^/v1/external/user/files/[^/]+$")
LIST = "/v1/external/user/files"


def _reads(simulator: Simulator) -> tuple[int, int]:
    """How many times the daemon read one record, and the list."""
    gets = [
        r["path"]
        for r in simulator.requests()
        if r["method"] == "GET" and r["origin"] == "api"
    ]
    return sum(bool(ONE_RECORD.match(path)) for path in gets), gets.count(LIST)


@pytest.fixture
def quick_service() -> Iterator[Simulator]:
    with Simulator(SimulatorOptions(api_key=API_KEY, processing_seconds=0.0)) as sim:
        yield sim


@pytest.fixture
def service_without_list_filter() -> Iterator[Simulator]:
    options = SimulatorOptions(
        api_key=API_KEY, processing_seconds=0.0, list_by_state=False
    )
    with Simulator(options) as sim:
        yield sim


def test_documents_in_the_completed_list_are_not_polled_one_by_one(
    quick_service: Simulator, tree: Tree
) -> None:
    for index in range(DOCUMENTS):
        tree.drop(f"doc-{index}.pdf")
    # The sweep runs every 2 s; each document's own first poll would be due
    # 4 s after its upload.
    settings = make_settings(
        quick_service, tree, poll={"interval_seconds": 4, "max_interval_seconds": 8}
    )

    assert run_once(settings) == ExitCode.OK

    assert len(tree.listing(tree.outbox)) == DOCUMENTS
    records_read, lists_read = _reads(quick_service)
    assert records_read == 0
    assert lists_read >= 1


def test_a_service_whose_list_takes_no_state_is_polled_per_document(
    service_without_list_filter: Simulator, tree: Tree
) -> None:
    for index in range(DOCUMENTS):
        tree.drop(f"doc-{index}.pdf")
    settings = make_settings(service_without_list_filter, tree)

    assert run_once(settings) == ExitCode.OK

    assert len(tree.listing(tree.outbox)) == DOCUMENTS
    records_read, lists_read = _reads(service_without_list_filter)
    # The refusal stops the sweep at once; every document is polled instead.
    assert lists_read == 1
    assert records_read >= DOCUMENTS
