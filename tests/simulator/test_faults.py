"""Injected faults, each observable from a client and in the request log."""

from __future__ import annotations

import email.utils
import time
from typing import TYPE_CHECKING

import httpx
import pytest

from syncd.simulator.samples import make_pdf, write_pdf
from syncd.simulator.storage import INLINE_BYTES
from tests.simulator.sim_support import FILES, Api

if TYPE_CHECKING:
    from pathlib import Path


def test_error_rate_answers_500_with_an_error_body(api: Api) -> None:
    api.sim.set_faults(error_rate=1.0)

    response = api.http.get(FILES)

    assert response.status_code == 500
    assert response.json()["statusCode"] == 500
    assert api.sim.requests()[-1]["fault"] == "500"


def test_error_status_chooses_the_answer_of_error_rate(api: Api) -> None:
    api.sim.set_faults(error_rate=1.0, error_status=503)

    response = api.http.get(FILES)

    assert response.status_code == 503
    assert api.sim.requests()[-1]["fault"] == "503"
    with pytest.raises(ValueError, match="error_status"):
        api.sim.set_faults(error_status=404)


def test_429_carries_retry_after_in_seconds(start_api) -> None:
    api = start_api(rate_429=1.0, retry_after_seconds=3)

    response = api.http.get(FILES)

    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert api.sim.requests()[-1]["fault"] == "429"


def test_429_carries_retry_after_as_an_http_date(start_api) -> None:
    api = start_api(rate_429=1.0, retry_after_seconds=3, retry_after_form="date")

    response = api.http.get(FILES)

    when = email.utils.parsedate_to_datetime(response.headers["retry-after"])
    assert 2 <= when.timestamp() - time.time() <= 5


def test_mixed_retry_after_alternates_seconds_and_dates(start_api) -> None:
    api = start_api(rate_429=1.0, retry_after_form="mixed")

    values = [api.http.get(FILES).headers["retry-after"] for _ in range(4)]

    assert [value.isdigit() for value in values] == [True, False, True, False]


def test_drop_closes_the_connection_without_an_answer(api: Api) -> None:
    api.sim.set_faults(drop_rate=1.0)

    with pytest.raises(httpx.RemoteProtocolError):
        api.http.get(FILES)

    entry = api.sim.requests()[-1]
    assert (entry["fault"], entry["status"]) == ("drop", None)


def test_a_lost_answer_is_carried_out_but_never_sent(api: Api) -> None:
    api.sim.set_faults(lost_answer_rate=1.0)
    pdf = make_pdf(1)
    body = {"name": "lost.pdf", "size": len(pdf), "mime": "application/pdf"}

    with pytest.raises(httpx.RemoteProtocolError):
        api.http.post(FILES, json=body)

    entry = api.sim.requests()[-1]
    assert (entry["fault"], entry["status"]) == ("lost", 201)
    api.sim.set_faults(lost_answer_rate=0.0)
    assert [record["name"] for record in api.http.get(FILES).json()["items"]] == [
        "lost.pdf"
    ]


@pytest.mark.parametrize("mode", ["bytes", "url"])
def test_truncate_cuts_a_download_short_of_its_content_length(
    start_api, mode: str
) -> None:
    api = start_api(download_mode=mode, processing_seconds=0)
    file_id = api.submit(make_pdf(3))
    api.wait_state(file_id, "completed")
    api.sim.set_faults(truncate_rate=1.0)

    if mode == "bytes":
        request = api.http.build_request("GET", f"{FILES}/{file_id}/download")
        client = api.http
    else:
        url = api.http.get(f"{FILES}/{file_id}/download").json()["url"]
        request = api.storage.build_request("GET", url)
        client = api.storage
    with pytest.raises(httpx.RemoteProtocolError, match=r"incomplete|complete message"):
        client.send(request)

    assert api.sim.requests()[-1]["fault"] == "truncate"


def test_truncate_cuts_a_streamed_download_at_half_its_length(
    start_api, tmp_path: Path
) -> None:
    api = start_api(processing_seconds=0)
    source = tmp_path / "large.pdf"
    write_pdf(source, 2 * INLINE_BYTES + 12345)
    file_id = api.submit(source.read_bytes(), name="large.pdf")
    api.wait_state(file_id, "completed")
    api.sim.set_faults(truncate_rate=1.0)
    received = bytearray()

    with (
        pytest.raises(httpx.RemoteProtocolError, match=r"incomplete|complete message"),
        api.http.stream("GET", f"{FILES}/{file_id}/download") as response,
    ):
        promised = int(response.headers["content-length"])
        for chunk in response.iter_bytes():
            received += chunk

    assert len(received) == promised // 2
    assert api.sim.requests()[-1]["fault"] == "truncate"


def test_truncate_leaves_json_answers_alone(api: Api) -> None:
    api.sim.set_faults(truncate_rate=1.0)

    assert api.http.get(FILES).status_code == 200


def test_latency_delays_every_request(api: Api) -> None:
    api.sim.set_faults(latency_seconds=0.2)

    started = time.monotonic()
    api.http.get(FILES)

    assert time.monotonic() - started >= 0.2


def test_latency_spikes_are_logged(api: Api) -> None:
    api.sim.set_faults(latency_spike_rate=1.0, latency_spike_seconds=0.1)

    started = time.monotonic()
    api.http.get(FILES)

    assert time.monotonic() - started >= 0.1
    assert api.sim.requests()[-1]["fault"] == "spike"


def test_rate_limit_answers_429_above_the_limit(start_api) -> None:
    api = start_api(rate_limit_per_second=3)

    statuses = [api.http.get(FILES).status_code for _ in range(8)]

    assert statuses[:3] == [200, 200, 200]
    assert 429 in statuses[3:]
    limited = next(e for e in api.sim.requests() if e["status"] == 429)
    assert limited["fault"] == "429"


def test_faults_apply_to_the_storage_origin(api: Api) -> None:
    pdf = make_pdf(1)
    record = api.create(pdf)
    api.sim.set_faults(error_rate=1.0)

    response = api.upload(record["uploadUrl"], pdf)

    assert response.status_code == 500
    api.sim.set_faults(error_rate=0.0)
    assert api.get(record["id"])["state"] == "in_progress"


def test_control_surface_is_exempt_from_faults(api: Api) -> None:
    api.sim.set_faults(error_rate=1.0, latency_seconds=5)

    response = api.storage.get(api.sim.base_url + "/_sim/stats")

    assert response.status_code == 200


def test_set_faults_rejects_unknown_and_unusable_values(api: Api) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        api.sim.set_faults(explode=True)
    with pytest.raises(ValueError, match="error_rate"):
        api.sim.set_faults(error_rate=1.5)
    with pytest.raises(ValueError, match="must not exceed 1"):
        api.sim.set_faults(error_rate=0.6, drop_rate=0.6)


def test_seed_makes_random_faults_repeatable(start_api) -> None:
    def statuses(api: Api) -> list[int]:
        return [api.http.get(FILES).status_code for _ in range(20)]

    first = statuses(start_api(error_rate=0.3, rate_429=0.3, seed=7))
    second = statuses(start_api(error_rate=0.3, rate_429=0.3, seed=7))

    assert first == second
    assert {200, 429, 500} <= set(first)
