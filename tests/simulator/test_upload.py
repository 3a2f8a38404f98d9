"""Sending bytes to the storage origin's pre-signed upload URLs."""

from __future__ import annotations

import socket
import urllib.parse
from typing import TYPE_CHECKING

import pytest

from syncd.simulator import storage
from syncd.simulator.samples import make_pdf
from tests.simulator.sim_support import FILES, Api, wait_for

if TYPE_CHECKING:
    from pathlib import Path


def test_upload_url_points_to_the_storage_origin_not_the_api(
    api: Api, pdf: bytes
) -> None:
    record = api.create(pdf)

    assert record["uploadUrl"].startswith(api.sim.storage_url)
    assert not record["uploadUrl"].startswith(api.sim.base_url)


def test_upload_moves_the_record_into_validation(start_api, pdf: bytes) -> None:
    api = start_api(validation_seconds=5)
    record = api.create(pdf)

    response = api.upload(record["uploadUrl"], pdf)

    assert response.status_code == 200
    after = api.get(record["id"])
    assert after["state"] == "validation"
    assert "uploadUrl" not in after


def test_chunked_upload_without_content_length_is_411(api: Api, pdf: bytes) -> None:
    record = api.create(pdf)

    def chunks():
        yield pdf[:100]
        yield pdf[100:]

    response = api.storage.put(record["uploadUrl"], content=chunks())

    assert response.status_code == 411
    assert response.json()["error"] == "Length Required"
    assert api.get(record["id"])["state"] == "in_progress"


def test_upload_of_another_size_than_declared_is_400(api: Api, pdf: bytes) -> None:
    record = api.create(pdf)

    response = api.upload(record["uploadUrl"], pdf + b"\n")

    assert response.status_code == 400
    assert "declared" in response.json()["message"]


def test_expired_upload_url_is_403_and_a_read_gives_a_working_one(
    start_api, pdf: bytes
) -> None:
    api = start_api(expire_upload_urls=True)
    record = api.create(pdf)

    refused = api.upload(record["uploadUrl"], pdf)
    fresh = api.get(record["id"])["uploadUrl"]
    accepted = api.upload(fresh, pdf)

    assert refused.status_code == 403
    assert "expired" in refused.json()["message"]
    assert accepted.status_code == 200
    assert api.sim.creates() == 1


def test_upload_url_expires_after_its_ttl(start_api, pdf: bytes) -> None:
    api = start_api(upload_url_ttl_seconds=1)
    record = api.create(pdf)

    # Signed expiries have whole seconds, so the URL dies within two.
    refused = wait_for(
        lambda: (r := api.upload(record["uploadUrl"], pdf)).status_code == 403 and r,
        timeout=4,
        what="the upload URL to expire",
    )

    assert "expired" in refused.json()["message"]


def test_upload_url_with_a_tampered_signature_is_403(api: Api, pdf: bytes) -> None:
    record = api.create(pdf)
    parts = urllib.parse.urlsplit(record["uploadUrl"])
    query = dict(urllib.parse.parse_qsl(parts.query))
    query["expires"] = str(int(query["expires"]) + 3600)
    forged = parts._replace(query=urllib.parse.urlencode(query)).geturl()

    response = api.upload(forged, pdf)

    assert response.status_code == 403
    assert "signature" in response.json()["message"]


def test_same_bytes_again_are_accepted_and_different_bytes_refused(
    api: Api, pdf: bytes
) -> None:
    record = api.create(pdf)
    api.upload(record["uploadUrl"], pdf)
    other = make_pdf(3, marker="other")
    assert len(other) != len(pdf) or other != pdf

    again = api.upload(record["uploadUrl"], pdf)
    different = api.upload(record["uploadUrl"], pdf[:-1] + b"\x00")

    assert again.status_code == 200
    assert different.status_code == 409
    assert different.json()["error"] == "Conflict"


def test_upload_carrying_the_api_key_is_recorded_as_a_leak(
    api: Api, pdf: bytes
) -> None:
    record = api.create(pdf)

    response = api.storage.put(
        record["uploadUrl"], content=pdf, headers={"x-api-key": api.sim.options.api_key}
    )

    assert response.status_code == 200
    assert api.sim.leaks() == 1
    assert [e["leak"] for e in api.sim.requests() if e["origin"] == "storage"] == [True]


@pytest.mark.parametrize("kept_in", ["memory", "files"])
def test_upload_cut_short_does_not_count_as_received(
    start_api, pdf: bytes, tmp_path: Path, kept_in: str
) -> None:
    api = start_api(storage_dir=tmp_path if kept_in == "files" else None)
    record = api.create(pdf)
    parts = urllib.parse.urlsplit(record["uploadUrl"])
    head = (
        f"PUT {parts.path}?{parts.query} HTTP/1.1\r\n"
        f"Host: {parts.netloc}\r\nContent-Length: {len(pdf)}\r\n\r\n"
    ).encode()

    with socket.create_connection((parts.hostname, parts.port)) as raw:
        raw.sendall(head + pdf[: len(pdf) // 2])
    wait_for(
        lambda: any(e["origin"] == "storage" for e in api.sim.requests()),
        what="the cut upload to be logged",
    )

    logged = [e for e in api.sim.requests() if e["origin"] == "storage"]
    assert logged[0]["status"] is None
    after = api.get(record["id"])
    assert after["state"] == "in_progress"
    assert "uploadUrl" in after
    assert list((tmp_path / "incoming").glob("*")) == []
    assert api.upload(after["uploadUrl"], pdf).status_code == 200


def test_uploads_beyond_the_memory_budget_are_served_from_files(
    start_api, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = make_pdf(1, marker="first"), make_pdf(2, marker="second")
    monkeypatch.setattr(storage, "MEMORY_BUDGET_BYTES", len(first))
    api = start_api(processing_seconds=0)

    ids = [api.submit(first), api.submit(second)]

    for file_id, original in zip(ids, (first, second), strict=True):
        api.wait_state(file_id, "completed")
        result = api.http.get(f"{FILES}/{file_id}/download").content
        assert result.startswith(original)
        assert result == api.sim.result_bytes(file_id)
