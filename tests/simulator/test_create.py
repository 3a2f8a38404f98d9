"""Creating file records: the file object, validation errors, idempotency."""

from __future__ import annotations

import re
from typing import Any

import pytest

from syncd.simulator import PurchaseOrder
from tests.simulator.sim_support import FILES, Api

ISO_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
FILE_FIELDS = {
    "id",
    "name",
    "size",
    "tags",
    "state",
    "owner",
    "extension",
    "pageCount",
    "comments",
    "createdAt",
    "updatedAt",
    "excludeWatermark",
    "refunded",
    "publiclyAvailable",
}


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "a.pdf", "size": 1000, "mime": "application/pdf"}
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


def test_create_answers_the_file_object_with_an_upload_url(api: Api) -> None:
    response = api.http.post(
        FILES,
        json=_body(
            comment="please check tables",
            tags=["t1", "t2"],
            excludeWatermark=True,
            additionalNotification={"email": "ops@example.com"},
        ),
    )

    assert response.status_code == 201
    record = response.json()
    assert set(record) == FILE_FIELDS | {"uploadUrl"}
    assert re.fullmatch(r"[0-9a-f]{24}", record["id"])
    assert record["state"] == "in_progress"
    assert record["pageCount"] == 0
    assert record["extension"] == "pdf"
    assert record["tags"] == ["t1", "t2"]
    assert record["excludeWatermark"] is True
    assert record["refunded"] is False
    assert record["publiclyAvailable"] is False
    assert set(record["owner"]) == {"userid", "firstName", "lastName"}
    assert record["comments"][0]["text"] == "please check tables"
    assert ISO_MILLIS.match(record["createdAt"])
    assert ISO_MILLIS.match(record["updatedAt"])
    assert record["uploadUrl"].startswith(api.sim.storage_url + "/upload/")
    assert api.sim.creates() == 1


@pytest.mark.parametrize(
    "body",
    [
        _body(name=None),
        _body(name=""),
        _body(size=None),
        _body(size=0),
        _body(size="1000"),
        _body(size=True),
        _body(mime=None),
        _body(tags="t1"),
        _body(tags=[1]),
        _body(excludeWatermark="yes"),
        _body(additionalNotification={"email": "nobody"}),
        ["not", "an", "object"],
    ],
)
def test_malformed_create_body_is_400_with_message(api: Api, body: Any) -> None:
    response = api.http.post(FILES, json=body)

    assert response.status_code == 400
    assert response.json()["error"] == "Bad Request"
    assert response.json()["message"]


def test_body_that_is_not_json_is_400(api: Api) -> None:
    response = api.http.post(FILES, content=b"{not json")

    assert response.status_code == 400


@pytest.mark.parametrize(
    "body", [_body(mime="image/png", name="a.png"), _body(name="a.docx")]
)
def test_non_pdf_is_415(api: Api, body: dict[str, Any]) -> None:
    response = api.http.post(FILES, json=body)

    assert response.status_code == 415
    assert response.json()["error"] == "Unsupported Media Type"


def test_file_over_the_maximum_size_is_413(start_api) -> None:
    api = start_api(max_upload_bytes=5000)

    assert api.http.post(FILES, json=_body(size=5000)).status_code == 201
    response = api.http.post(FILES, json=_body(size=5001))

    assert response.status_code == 413
    assert "5000" in response.json()["message"]


@pytest.mark.parametrize("reference", ["po_nope", "PO-pending", "PO-empty"])
def test_unusable_purchase_order_is_422(start_api, reference: str) -> None:
    api = start_api(
        purchase_orders=[
            PurchaseOrder(id="po_p", number="PO-pending", status="pending"),
            PurchaseOrder(id="po_e", number="PO-empty", pages=10, used_pages=10),
        ]
    )

    response = api.http.post(FILES, json=_body(purchaseOrderId=reference))

    assert response.status_code == 422
    assert response.json()["error"] == "Unprocessable Entity"
    assert api.sim.creates() == 0


@pytest.mark.parametrize("reference", ["po_1", "PO-2026-014"])
def test_purchase_order_is_found_by_id_or_number(api: Api, reference: str) -> None:
    response = api.http.post(FILES, json=_body(purchaseOrderId=reference))

    assert response.status_code == 201


def test_idempotency_key_returns_the_same_record_and_logs_a_replay(api: Api) -> None:
    headers = {"Idempotency-Key": "doc-1"}

    first = api.http.post(FILES, json=_body(), headers=headers)
    second = api.http.post(FILES, json=_body(), headers=headers)

    assert first.json()["id"] == second.json()["id"]
    assert api.sim.creates() == 1
    creates = [e for e in api.sim.requests() if e["path"] == FILES]
    assert [e["replay"] for e in creates] == [False, True]
    assert {e["idempotency_key"] for e in creates} == {"doc-1"}


def test_idempotency_key_reused_with_another_body_is_422(api: Api) -> None:
    headers = {"Idempotency-Key": "doc-1"}
    api.http.post(FILES, json=_body(), headers=headers)

    response = api.http.post(FILES, json=_body(size=2000), headers=headers)

    assert response.status_code == 422
    assert api.sim.creates() == 1


def test_idempotency_key_is_ignored_when_not_honoured(start_api) -> None:
    api = start_api(honour_idempotency=False)
    headers = {"Idempotency-Key": "doc-1"}

    first = api.http.post(FILES, json=_body(), headers=headers)
    second = api.http.post(FILES, json=_body(), headers=headers)

    assert first.json()["id"] != second.json()["id"]
    assert api.sim.creates() == 2
    assert not any(e["replay"] for e in api.sim.requests())
