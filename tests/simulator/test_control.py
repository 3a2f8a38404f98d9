"""The /_sim control surface and the request log file."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import httpx

from syncd.simulator.samples import make_pdf
from tests.simulator.sim_support import FILES, Api, wait_for

if TYPE_CHECKING:
    from pathlib import Path


def test_control_surface_reports_requests_stats_files_and_results(
    api: Api,
) -> None:
    control = api.sim.base_url + "/_sim"
    file_id = api.submit(make_pdf(2), name="c.pdf")
    api.wait_state(file_id, "completed")

    requests = api.storage.get(f"{control}/requests").json()
    later = api.storage.get(f"{control}/requests", params={"since": 1}).json()
    stats = api.storage.get(f"{control}/stats").json()
    files = api.storage.get(f"{control}/files").json()
    result = api.storage.get(f"{control}/files/{file_id}/result")

    assert requests[0]["path"] == FILES
    assert later == requests[1:]
    assert not any(entry["path"].startswith("/_sim") for entry in requests)
    assert stats["creates"] == 1
    assert stats["leaks"] == 0
    assert stats["files"]["completed"] == 1
    assert stats["counts"]["api POST /v1/external/user/files"] == {"201": 1}
    assert stats["counts"]["storage PUT /upload/{id}"] == {"200": 1}
    assert [record["id"] for record in files] == [file_id]
    assert result.content == api.sim.result_bytes(file_id)


def test_control_surface_changes_faults(api: Api) -> None:
    control = api.sim.base_url + "/_sim/faults"

    changed = api.storage.post(control, json={"error_rate": 1.0})
    refused = api.storage.post(control, json={"error_rate": 2})

    assert changed.json()["error_rate"] == 1.0
    assert api.http.get(FILES).status_code == 500
    assert refused.status_code == 400
    assert "error_rate" in refused.json()["message"]
    assert api.storage.get(control).json()["error_rate"] == 1.0


def test_control_surface_completes_and_fails_records(start_api) -> None:
    api = start_api(processing_seconds=30)
    control = api.sim.base_url + "/_sim/files"
    done = api.submit(make_pdf(1), name="done.pdf")
    gone = api.submit(make_pdf(1), name="gone.pdf")
    waiting = api.create(make_pdf(1))

    completed = api.storage.post(f"{control}/{done}/complete")
    failed = api.storage.post(f"{control}/{gone}/fail", json={"message": "no"})
    premature = api.storage.post(f"{control}/{waiting['id']}/complete")
    unknown = api.storage.post(f"{control}/0123456789abcdef01234567/complete")

    assert completed.json()["state"] == "completed"
    assert failed.json()["state"] == "failed"
    assert failed.json()["comments"][-1]["text"] == "no"
    assert premature.status_code == 409
    assert unknown.status_code == 404


def test_log_path_receives_every_request_as_json_lines(
    start_api, tmp_path: Path
) -> None:
    log = tmp_path / "requests.jsonl"
    api = start_api(log_path=log)

    api.http.get(FILES)
    api.http.get(f"{FILES}/0123456789abcdef01234567")

    lines = wait_for(lambda: log.read_text().splitlines(), what="log lines")
    entries = [json.loads(line) for line in lines]
    assert [entry["status"] for entry in entries] == [200, 404]
    assert entries == api.sim.requests()


def test_simulator_refuses_unusable_options() -> None:
    from syncd.simulator import Simulator, SimulatorOptions

    try:
        options = SimulatorOptions(error_rate=2.0, download_mode="zip")
        Simulator(options).start()
    except ValueError as exc:
        assert "error_rate" in str(exc)
        assert "download_mode" in str(exc)
    else:
        raise AssertionError("unusable options were accepted")


def test_uploads_are_kept_in_the_storage_dir(start_api, tmp_path: Path) -> None:
    api = start_api(storage_dir=tmp_path)
    pdf = make_pdf(1)

    file_id = api.submit(pdf)

    assert (tmp_path / "objects" / f"{file_id}.pdf").read_bytes() == pdf
    assert list((tmp_path / "incoming").iterdir()) == []


def test_stopped_simulator_no_longer_answers(start_sim) -> None:
    sim = start_sim()
    url = sim.base_url

    sim.stop()

    try:
        httpx.get(url + "/_sim/stats", timeout=2)
    except httpx.TransportError:
        pass
    else:
        raise AssertionError("the simulator still answers after stop()")
