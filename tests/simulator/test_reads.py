"""Reading one record and listing records."""

from __future__ import annotations

from syncd.simulator.samples import make_pdf
from tests.simulator.sim_support import FILES, Api, wait_for


def test_unknown_file_is_404(api: Api) -> None:
    response = api.http.get(f"{FILES}/0123456789abcdef01234567")

    assert response.status_code == 404
    assert response.json()["error"] == "Not Found"


def test_read_of_a_record_waiting_for_bytes_carries_a_fresh_upload_url(
    start_api, pdf: bytes
) -> None:
    api = start_api(expire_upload_urls=True)
    record = api.create(pdf)

    read = api.get(record["id"])

    assert read["uploadUrl"] != record["uploadUrl"]
    assert api.upload(read["uploadUrl"], pdf).status_code == 200
    assert "uploadUrl" not in api.get(record["id"])


def test_list_items_waiting_for_bytes_carry_an_upload_url(api: Api, pdf: bytes) -> None:
    waiting = api.create(pdf, name="waiting.pdf")
    sent = api.submit(pdf, name="sent.pdf")

    items = {item["id"]: item for item in api.http.get(FILES).json()["items"]}

    assert "uploadUrl" in items[waiting["id"]]
    assert "uploadUrl" not in items[sent]
    assert api.upload(items[waiting["id"]]["uploadUrl"], pdf).status_code == 200


def test_list_is_newest_updated_first_and_pages_through_all(api: Api) -> None:
    ids = [api.create(make_pdf(1), name=f"doc-{n}.pdf")["id"] for n in range(5)]

    first = api.http.get(FILES, params={"limit": 2, "page": 1}).json()
    third = api.http.get(FILES, params={"limit": 2, "page": 3}).json()

    assert first["total"] == 5
    assert (first["page"], first["limit"]) == (1, 2)
    assert [item["id"] for item in first["items"]] == ids[::-1][:2]
    assert [item["id"] for item in third["items"]] == [ids[0]]


def test_list_filters_by_name_substring_and_state(api: Api, pdf: bytes) -> None:
    api.create(pdf, name="Invoice-March.pdf")
    done = api.submit(pdf, name="invoice-april.pdf")
    api.create(pdf, name="minutes.pdf")
    api.wait_state(done, "completed")

    found = api.http.get(FILES, params={"search": "invoice"}).json()
    completed = api.http.get(FILES, params={"state": "completed"}).json()

    assert {item["name"] for item in found["items"]} == {
        "Invoice-March.pdf",
        "invoice-april.pdf",
    }
    assert [item["id"] for item in completed["items"]] == [done]


def test_list_limit_is_capped_at_100(api: Api) -> None:
    body = api.http.get(FILES, params={"limit": 500}).json()

    assert body["limit"] == 100


def test_list_refuses_bad_parameters(api: Api) -> None:
    assert api.http.get(FILES, params={"state": "done"}).status_code == 400
    assert api.http.get(FILES, params={"page": 0}).status_code == 400
    assert api.http.get(FILES, params={"limit": "x"}).status_code == 400


def test_update_moves_a_record_to_the_top_of_the_list(api: Api, pdf: bytes) -> None:
    older = api.create(pdf, name="older.pdf")
    api.create(pdf, name="newer.pdf")

    api.upload(older["uploadUrl"], pdf)

    items = wait_for(lambda: api.http.get(FILES).json()["items"])
    assert items[0]["id"] == older["id"]


def test_company_file_list_filters_by_tags_and_users(api: Api, pdf: bytes) -> None:
    tagged = api.create(pdf, tags=["finance"])
    api.create(pdf)
    path = "/v1/external/admin/company/files"

    by_tag = api.http.get(path, params={"tags": "finance"}).json()
    other_user = api.http.get(path, params={"users": "someone_else"}).json()

    assert [item["id"] for item in by_tag["items"]] == [tagged["id"]]
    assert other_user["total"] == 0
