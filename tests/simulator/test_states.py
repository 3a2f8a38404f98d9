"""The state machine: validation, page counting, purchase orders, completion."""

from __future__ import annotations

from typing import TYPE_CHECKING

from syncd.simulator import PurchaseOrder
from syncd.simulator.samples import broken_pdf, make_pdf

if TYPE_CHECKING:
    from sim_support import Api


def _order(api: Api, order_id: str = "po_1") -> dict:
    orders = api.http.get("/v1/user/purchase-orders").json()
    return next(order for order in orders if order["id"] == order_id)


def test_record_moves_from_validation_to_in_progress_to_completed(start_api) -> None:
    api = start_api(validation_seconds=0.3, processing_seconds=0.3)
    file_id = api.submit(make_pdf(4))

    validating = api.get(file_id)
    processing = api.wait_state(file_id, "in_progress")
    completed = api.wait_state(file_id, "completed")

    assert validating["state"] == "validation"
    assert validating["pageCount"] == 0
    assert processing["pageCount"] == 4
    assert completed["pageCount"] == 4
    assert completed["refunded"] is False
    assert completed["updatedAt"] > processing["updatedAt"] > validating["createdAt"]


def test_validation_reserves_the_pages_from_the_purchase_order(api: Api) -> None:
    before = _order(api)

    file_id = api.submit(make_pdf(7), purchaseOrderId="PO-2026-014")
    api.wait_state(file_id, "completed")

    after = _order(api)
    assert after["usedPages"] == before["usedPages"] + 7
    assert after["availablePages"] == before["availablePages"] - 7
    assert set(after) == {
        "id",
        "number",
        "status",
        "pages",
        "usedPages",
        "availablePages",
    }


def test_purchase_orders_answer_a_bare_array(api: Api) -> None:
    orders = api.http.get("/v1/user/purchase-orders").json()

    assert orders == [
        {
            "id": "po_1",
            "number": "PO-2026-014",
            "status": "approved",
            "pages": 100_000,
            "usedPages": 0,
            "availablePages": 100_000,
        }
    ]


def test_unreadable_pdf_fails_refunded_with_the_reason(api: Api) -> None:
    file_id = api.submit(broken_pdf(), name="broken.pdf", purchaseOrderId="po_1")

    failed = api.wait_state(file_id, "failed")

    assert failed["refunded"] is True
    assert failed["pageCount"] == 0
    assert "cannot be read" in failed["comments"][-1]["text"]
    assert _order(api)["usedPages"] == 0


def test_purchase_order_without_enough_pages_fails_refunded(start_api) -> None:
    api = start_api(purchase_orders=[PurchaseOrder(id="po_s", number="S", pages=2)])

    file_id = api.submit(make_pdf(3), purchaseOrderId="S")
    failed = api.wait_state(file_id, "failed")

    assert failed["refunded"] is True
    assert failed["pageCount"] == 3
    assert "cannot cover 3 pages" in failed["comments"][-1]["text"]
    assert _order(api, "po_s")["usedPages"] == 0


def test_record_without_bytes_stays_in_progress_and_costs_nothing(api: Api) -> None:
    record = api.create(make_pdf(2), purchaseOrderId="po_1")

    assert api.get(record["id"])["state"] == "in_progress"
    assert _order(api)["usedPages"] == 0


def test_fail_now_refunds_the_reserved_pages(start_api) -> None:
    api = start_api(processing_seconds=30)
    file_id = api.submit(make_pdf(5), purchaseOrderId="po_1")
    api.wait_state(file_id, "in_progress")
    assert _order(api)["usedPages"] == 5

    failed = api.sim.fail_now(file_id, "fixer rejected it")

    assert failed["state"] == "failed"
    assert failed["refunded"] is True
    assert failed["comments"][-1]["text"] == "fixer rejected it"
    assert _order(api)["usedPages"] == 0


def test_complete_now_finishes_a_record_at_once(start_api) -> None:
    api = start_api(validation_seconds=30, processing_seconds=30)
    file_id = api.submit(make_pdf(2), purchaseOrderId="po_1")

    done = api.sim.complete_now(file_id)

    assert done["state"] == "completed"
    assert api.get(file_id)["state"] == "completed"
    assert _order(api)["usedPages"] == 2
