"""Downloading the processed PDF in each of the three answer shapes."""

from __future__ import annotations

import io
import urllib.parse
from typing import TYPE_CHECKING

import pytest
from pypdf import PdfReader

from syncd.simulator.samples import make_pdf, write_pdf
from syncd.simulator.storage import INLINE_BYTES
from tests.simulator.sim_support import FILES, Api

if TYPE_CHECKING:
    from pathlib import Path


def test_download_before_completed_is_409(start_api, pdf: bytes) -> None:
    api = start_api(processing_seconds=30)
    waiting = api.create(pdf)
    processing = api.submit(pdf)

    for file_id in (waiting["id"], processing):
        response = api.http.get(f"{FILES}/{file_id}/download")
        assert response.status_code == 409
        assert response.json()["error"] == "Conflict"


def test_download_as_bytes_streams_the_result_with_its_length(
    api: Api, pdf: bytes
) -> None:
    file_id = api.submit(pdf)
    api.wait_state(file_id, "completed")

    response = api.http.get(f"{FILES}/{file_id}/download")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.content == api.sim.result_bytes(file_id)


def test_download_as_url_gives_a_signed_storage_url_without_key(
    start_api, pdf: bytes
) -> None:
    api = start_api(download_mode="url")
    file_id = api.submit(pdf)
    api.wait_state(file_id, "completed")

    answer = api.http.get(f"{FILES}/{file_id}/download")
    url = answer.json()["url"]
    fetched = api.storage.get(url)

    assert answer.headers["content-type"] == "application/json"
    assert url.startswith(api.sim.storage_url + "/download/")
    assert fetched.status_code == 200
    assert fetched.content == api.sim.result_bytes(file_id)
    assert api.sim.leaks() == 0


def test_download_as_redirect_points_to_a_signed_storage_url(
    start_api, pdf: bytes
) -> None:
    api = start_api(download_mode="redirect")
    file_id = api.submit(pdf)
    api.wait_state(file_id, "completed")

    answer = api.http.get(f"{FILES}/{file_id}/download")
    fetched = api.storage.get(answer.headers["location"])

    assert answer.status_code == 307
    assert answer.headers["location"].startswith(api.sim.storage_url)
    assert fetched.content == api.sim.result_bytes(file_id)


def test_following_the_redirect_with_the_key_is_recorded_as_a_leak(
    start_api, pdf: bytes
) -> None:
    api = start_api(download_mode="redirect")
    file_id = api.submit(pdf)
    api.wait_state(file_id, "completed")

    response = api.http.get(f"{FILES}/{file_id}/download", follow_redirects=True)

    assert response.status_code == 200
    assert api.sim.leaks() == 1


def test_signed_download_url_refuses_a_changed_path(start_api, pdf: bytes) -> None:
    api = start_api(download_mode="url")
    first = api.submit(pdf, name="first.pdf")
    second = api.submit(pdf, name="second.pdf")
    api.wait_state(second, "completed")
    url = api.http.get(f"{FILES}/{first}/download").json()["url"]

    forged = url.replace(first, second)

    assert api.storage.get(forged).status_code == 403
    assert api.storage.get(url.split("?")[0]).status_code == 403


def test_result_is_a_valid_different_pdf_with_title_lang_and_markinfo(
    api: Api,
) -> None:
    original = make_pdf(2)
    file_id = api.submit(original, name="Annual report.pdf")
    api.wait_state(file_id, "completed")

    result = api.http.get(f"{FILES}/{file_id}/download").content
    reader = PdfReader(io.BytesIO(result))
    catalog = reader.trailer["/Root"]

    assert result != original
    assert result.startswith(original)
    assert len(reader.pages) == 2
    assert reader.metadata is not None
    assert reader.metadata.title == "Annual report"
    assert catalog["/Lang"] == "en-US"
    # pypdf answers BooleanObject, which equals True but is not True.
    assert catalog["/MarkInfo"]["/Marked"] == True  # noqa: E712
    assert catalog["/ViewerPreferences"]["/DisplayDocTitle"] == True  # noqa: E712


def test_a_large_upload_is_checked_and_streamed_back_whole(
    start_api, tmp_path: Path
) -> None:
    # Above INLINE_BYTES the check runs in a worker thread and the answer is
    # streamed in chunks; the result must be the same as for a small file.
    api = start_api(processing_seconds=0)
    source = tmp_path / "large.pdf"
    write_pdf(source, 2 * INLINE_BYTES + 12345, pages=2)
    original = source.read_bytes()
    file_id = api.submit(original, name="large.pdf")
    api.wait_state(file_id, "completed")

    response = api.http.get(f"{FILES}/{file_id}/download")

    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.content == api.sim.result_bytes(file_id)
    assert response.content.startswith(original)
    assert api.get(file_id)["pageCount"] == 2


def test_result_is_deterministic(start_api) -> None:
    api = start_api(processing_seconds=0)
    original = make_pdf(1)

    first = api.submit(original, name="same.pdf")
    second = api.submit(original, name="same.pdf")

    assert api.sim.result_bytes(first) == api.sim.result_bytes(second)


@pytest.mark.parametrize("mode", ["bytes", "url"])
def test_download_of_a_failed_record_is_409(start_api, mode: str) -> None:
    api = start_api(download_mode=mode)
    file_id = api.submit(make_pdf(1))
    api.sim.fail_now(file_id)

    response = api.http.get(f"{FILES}/{file_id}/download")

    assert response.status_code == 409
    assert urllib.parse.quote("failed") in response.json()["message"]
