"""Authentication: x-api-key on API paths, admin paths, the open control surface."""

from __future__ import annotations

import pytest

from tests.simulator.sim_support import FILES, Api


def test_request_without_key_is_401_with_contract_error_body(api: Api) -> None:
    response = api.storage.get(api.sim.base_url + FILES)

    assert response.status_code == 401
    body = response.json()
    assert body["statusCode"] == 401
    assert body["error"] == "Unauthorized"
    assert "x-api-key" in body["message"]


def test_request_with_wrong_key_is_401(api: Api) -> None:
    response = api.storage.get(api.sim.base_url + FILES, headers={"x-api-key": "nope"})

    assert response.status_code == 401
    assert response.json()["error"] == "Unauthorized"


@pytest.mark.parametrize(
    "path", ["/v1/admin/company/webhooks", "/v1/external/admin/company/files"]
)
def test_admin_paths_are_403_for_a_non_admin_key(start_api, path: str) -> None:
    api = start_api(admin=False)

    response = api.http.get(path)

    assert response.status_code == 403
    assert response.json() == {
        "statusCode": 403,
        "message": response.json()["message"],
        "error": "Forbidden",
    }


def test_admin_paths_answer_an_admin_key(api: Api) -> None:
    assert api.http.get("/v1/admin/company/webhooks").status_code == 200
    assert api.http.get("/v1/external/admin/company/files").status_code == 200


def test_control_surface_needs_no_key(api: Api) -> None:
    response = api.storage.get(api.sim.base_url + "/_sim/stats")

    assert response.status_code == 200
    assert response.json()["creates"] == 0


def test_unknown_route_and_method_answer_contract_error_bodies(api: Api) -> None:
    missing = api.http.get("/v1/nothing-here")
    wrong_method = api.http.delete(FILES)

    assert missing.status_code == 404
    assert missing.json()["error"] == "Not Found"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["statusCode"] == 405
