"""A misbehaving service costs time, never documents or second records."""

from __future__ import annotations

import json
from typing import Any

import pytest

from syncd.errors import ExitCode
from syncd.simulator import Simulator, SimulatorOptions
from syncd.simulator.samples import make_pdf
from tests.harness import (
    API_KEY,
    BackgroundDaemon,
    Tree,
    make_settings,
    run_once,
    wait_until,
)


def _run_against(tree: Tree, count: int = 8, **options: Any) -> list[dict[str, Any]]:
    """Deliver ``count`` files through a simulator with ``options``; its log."""
    for index in range(count):
        tree.drop(f"doc-{index:02}.pdf", pages=1 + index % 3)
    sim_options = SimulatorOptions(
        api_key=API_KEY, processing_seconds=0.2, seed=7, **options
    )
    with Simulator(sim_options) as simulator:
        code = run_once(make_settings(simulator, tree), timeout=120)
        assert code == ExitCode.OK
        assert len(tree.listing(tree.outbox)) == count
        for record in simulator.files():
            if record["state"] == "completed":
                delivered = tree.outbox / record["name"]
                assert delivered.read_bytes() == simulator.result_bytes(record["id"])
        assert simulator.creates() == count
        assert simulator.leaks() == 0
        return simulator.requests()


@pytest.mark.parametrize("mode", ["bytes", "url", "redirect"])
def test_every_download_answer_of_the_contract_is_accepted_without_leaking_the_key(
    tree: Tree, mode: str
) -> None:
    _run_against(tree, count=3, download_mode=mode)


def test_server_errors_and_rate_limits_are_retried(tree: Tree) -> None:
    _run_against(tree, error_rate=0.2, rate_429=0.1, retry_after_form="mixed")


@pytest.mark.parametrize("status", [408, 502, 503, 504])
def test_each_transient_status_is_retried(tree: Tree, status: int) -> None:
    log = _run_against(tree, count=4, error_rate=0.3, error_status=status)

    assert any(entry["status"] == status for entry in log)


def test_dropped_connections_never_create_a_second_record(tree: Tree) -> None:
    _run_against(tree, drop_rate=0.15)


def test_dropped_connections_without_idempotency_still_one_record_each(
    tree: Tree,
) -> None:
    # Dropped before the service saw them: nothing was created, so the look
    # for a lost record finds none and syncd asks again.
    _run_against(tree, drop_rate=0.15, honour_idempotency=False)


def test_lost_answers_without_idempotency_still_one_record_each(
    tree: Tree,
) -> None:
    # The service carries out the request and the answer never arrives: a
    # create that did make a record, an upload that did store the bytes.
    # Only looking for the record before asking again avoids a second one.
    log = _run_against(tree, lost_answer_rate=0.2, honour_idempotency=False)

    lost = {
        (entry["origin"], entry["method"]) for entry in log if entry["fault"] == "lost"
    }
    assert {("api", "POST"), ("storage", "PUT")} <= lost


def test_a_create_refused_by_the_rate_limit_is_asked_again_without_a_search(
    tree: Tree,
) -> None:
    # A service that takes one request a second, with no burst: were each
    # retry to look for a lost record first, the look would take the second's
    # only turn and the create would be refused every time.
    tree.drop("a.pdf")
    options = SimulatorOptions(
        api_key=API_KEY, processing_seconds=0.2, rate_limit_per_second=1.0
    )
    with Simulator(options) as simulator:
        assert run_once(make_settings(simulator, tree), timeout=30) == ExitCode.OK
        refused = [
            entry
            for entry in simulator.requests()
            if entry["method"] == "POST" and entry["status"] == 429
        ]
        assert simulator.creates() == 1

    assert tree.listing(tree.outbox) == ["a.pdf"]
    assert refused, "the service's limit never refused a create"


def test_timed_out_requests_are_retried_and_still_one_record_each(
    tree: Tree,
) -> None:
    # A third of the requests take longer than syncd waits: each is given up
    # and asked again, and no document gets a second record. (A request the
    # service carries out unanswered is the lost-answer test above.)
    count = 6
    for index in range(count):
        tree.drop(f"slow-{index}.pdf")
    options = SimulatorOptions(
        api_key=API_KEY,
        processing_seconds=0.2,
        honour_idempotency=False,
        latency_spike_rate=0.3,
        latency_spike_seconds=1.0,
        seed=3,
    )
    with Simulator(options) as simulator:
        settings = make_settings(simulator, tree, api={"timeout_seconds": 0.5})
        assert run_once(settings, timeout=120) == ExitCode.OK
        creates_asked = [
            entry for entry in simulator.requests() if entry["method"] == "POST"
        ]
        assert simulator.creates() == count

    assert len(tree.listing(tree.outbox)) == count
    # Some creates were given up on and asked again.
    assert len(creates_asked) > count


def test_truncated_downloads_are_fetched_again(tree: Tree) -> None:
    _run_against(tree, truncate_rate=0.3)


def test_expired_upload_urls_are_renewed(tree: Tree) -> None:
    _run_against(tree, count=3, expire_upload_urls=True)


def test_same_content_twice_is_uploaded_once_and_delivered_twice(
    simulator: Simulator, tree: Tree
) -> None:
    data = make_pdf(2)
    tree.drop("a.pdf", data=data)
    tree.drop("copy/a-again.pdf", data=data)

    assert run_once(make_settings(simulator, tree)) == ExitCode.OK

    assert tree.listing(tree.outbox) == ["a.pdf", "copy/a-again.pdf"]
    assert simulator.creates() == 1


def test_duplicates_upload_sends_same_content_again(
    simulator: Simulator, tree: Tree
) -> None:
    data = make_pdf(2)
    tree.drop("a.pdf", data=data)
    tree.drop("b.pdf", data=data)
    settings = make_settings(simulator, tree, upload={"duplicates": "upload"})

    assert run_once(settings) == ExitCode.OK

    assert simulator.creates() == 2


def test_a_request_the_service_refuses_fails_the_document_with_its_message(
    tree: Tree,
) -> None:
    # The service takes smaller files than syncd lets through: its 413 is a
    # final answer, not one to retry.
    tree.drop("large.pdf", data=make_pdf(40))
    tree.drop("small.pdf")
    options = SimulatorOptions(
        api_key=API_KEY, processing_seconds=0.2, max_upload_bytes=2048
    )
    with Simulator(options) as simulator:
        assert run_once(make_settings(simulator, tree)) == ExitCode.SOME_FAILED
        refused = [
            entry
            for entry in simulator.requests()
            if entry["method"] == "POST" and entry["status"] == 413
        ]

    assert tree.listing(tree.outbox) == ["small.pdf"]
    assert tree.listing(tree.failed) == ["large.pdf", "large.pdf.error.json"]
    report = json.loads((tree.failed / "large.pdf.error.json").read_text())
    assert report["reason"] == "too_large"
    assert "exceeds the maximum of 2048 bytes" in report["message"]
    assert len(refused) == 1


def test_a_document_the_service_rejects_fails_with_its_reason(tree: Tree) -> None:
    tree.drop("rejected.pdf")
    tree.drop("fine.pdf")
    options = SimulatorOptions(api_key=API_KEY, processing_seconds=3600)
    with (
        Simulator(options) as simulator,
        BackgroundDaemon(make_settings(simulator, tree)),
    ):
        wait_until(lambda: _uploaded(simulator) == 2, what="both uploads")
        for record in simulator.files():
            if record["name"] == "rejected.pdf":
                simulator.fail_now(record["id"], "scanned upside down")
            else:
                simulator.complete_now(record["id"])
        wait_until(
            lambda: tree.listing(tree.failed) and tree.listing(tree.outbox),
            what="one failure and one delivery",
        )

    report = json.loads((tree.failed / "rejected.pdf.error.json").read_text())
    assert report["reason"] == "rejected_by_service"
    assert "scanned upside down" in report["message"]
    assert report["remote_id"]
    assert tree.listing(tree.outbox) == ["fine.pdf"]


def _uploaded(simulator: Simulator) -> int:
    return sum(1 for record in simulator.files() if record["pageCount"] > 0)


def test_a_route_may_ask_for_same_content_to_be_uploaded_again(
    simulator: Simulator, tree: Tree
) -> None:
    data = make_pdf(2)
    tree.drop("audit/a.pdf", data=data)
    tree.drop("audit/b.pdf", data=data)
    settings = make_settings(
        simulator, tree, routes=[{"folder": "audit", "duplicates": "upload"}]
    )

    assert run_once(settings) == ExitCode.OK

    assert simulator.creates() == 2
