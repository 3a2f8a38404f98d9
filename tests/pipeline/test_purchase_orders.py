"""Documents wait for their purchase order instead of failing on it."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd import purchase_orders
from syncd.api import ApiClient
from syncd.cli import status_report
from syncd.config import ApiSettings
from syncd.journal import SqliteJournal
from syncd.logs import configure_logging
from syncd.simulator import PurchaseOrder, Simulator, SimulatorOptions
from tests.harness import API_KEY, BackgroundDaemon, Tree, make_settings, wait_until


@pytest.fixture(autouse=True)
def quick_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    # The daemon reads the orders every two minutes; tests cannot wait that.
    monkeypatch.setattr(purchase_orders, "REFRESH_SECONDS", 0.3)


@pytest.fixture
def pending_order() -> Iterator[Simulator]:
    order = PurchaseOrder(id="po_1", number="PO-2026-014", status="pending")
    options = SimulatorOptions(
        api_key=API_KEY, processing_seconds=0.1, purchase_orders=[order]
    )
    with Simulator(options) as simulator:
        yield simulator


def _held(running: BackgroundDaemon) -> list[str]:
    assert running.daemon.journal is not None
    report = status_report(running.daemon.journal)
    return [doc["held"] for doc in report["oldest_waiting"] if doc["held"]]


def test_a_pending_order_holds_documents_until_it_is_approved(
    pending_order: Simulator, tree: Tree
) -> None:
    tree.drop("a.pdf", pages=3)
    with BackgroundDaemon(make_settings(pending_order, tree)) as running:
        wait_until(lambda: _held(running), what="a hold")
        assert "pending, not approved" in _held(running)[0]
        assert pending_order.creates() == 0

        pending_order.update_purchase_order("PO-2026-014", status="approved")
        wait_until(lambda: tree.listing(tree.outbox) == ["a.pdf"], what="delivery")

    assert pending_order.creates() == 1


def test_an_order_without_enough_pages_holds_only_what_it_cannot_cover(
    tree: Tree,
) -> None:
    order = PurchaseOrder(id="po_1", number="PO-2026-014", pages=10, used_pages=6)
    options = SimulatorOptions(
        api_key=API_KEY, processing_seconds=0.1, purchase_orders=[order]
    )
    tree.drop("small.pdf", pages=2)
    tree.drop("large.pdf", pages=8)
    with (
        Simulator(options) as simulator,
        BackgroundDaemon(make_settings(simulator, tree)) as running,
    ):
        wait_until(lambda: tree.listing(tree.outbox) == ["small.pdf"], what="small")
        wait_until(lambda: _held(running), what="the large one held")
        assert "the document needs 8" in _held(running)[0]
        assert tree.listing(tree.failed) == []

        simulator.update_purchase_order("PO-2026-014", pages=100)
        wait_until(
            lambda: tree.listing(tree.outbox) == ["large.pdf", "small.pdf"],
            what="the large one after more pages",
        )
        assert simulator.creates() == 2


def test_a_route_bills_its_folder_to_its_own_order(tree: Tree) -> None:
    orders = [
        PurchaseOrder(id="po_1", number="PO-2026-014"),
        PurchaseOrder(id="po_2", number="PO-2026-020", pages=50),
    ]
    options = SimulatorOptions(
        api_key=API_KEY, processing_seconds=0.1, purchase_orders=orders
    )
    tree.drop("finance/invoice.pdf", pages=4)
    tree.drop("general.pdf", pages=1)
    with Simulator(options) as simulator:
        settings = make_settings(
            simulator,
            tree,
            routes=[{"folder": "finance", "purchase_order": "PO-2026-020"}],
        )
        with BackgroundDaemon(settings):
            wait_until(lambda: len(tree.listing(tree.outbox)) == 2, what="both")
        pages_left = {
            o["number"]: o["availablePages"] for o in simulator.purchase_orders()
        }

    assert pages_left == {"PO-2026-014": 100_000 - 1, "PO-2026-020": 50 - 4}


def test_a_purchase_order_below_a_tenth_of_its_pages_is_warned_about_once(
    tmp_path: Path,
) -> None:
    order = PurchaseOrder(id="po_1", number="PO-2026-014", pages=1000, used_pages=950)
    options = SimulatorOptions(api_key=API_KEY, purchase_orders=[order])
    output = io.StringIO()
    configure_logging("info", "json", stream=output)
    journal = SqliteJournal(tmp_path / "journal.sqlite3")

    async def refresh_twice(base_url: str) -> None:
        settings = ApiSettings(base_url=base_url, key=API_KEY)
        async with ApiClient(settings) as api:
            book = purchase_orders.PurchaseOrderBook(api, journal)
            await book.refresh()
            await book.refresh()

    try:
        with Simulator(options) as simulator:
            asyncio.run(refresh_twice(simulator.base_url))
    finally:
        journal.close()
        configure_logging("info", "console")

    events = [json.loads(line) for line in output.getvalue().splitlines()]
    warnings = [e for e in events if e["event"] == "purchase_order.low"]
    assert len(warnings) == 1
    assert warnings[0]["available_pages"] == 50
    assert warnings[0]["purchase_order"] == "PO-2026-014"
