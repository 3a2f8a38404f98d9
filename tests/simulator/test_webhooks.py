"""Webhook registration and signed, retried file_processed deliveries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from syncd.simulator.samples import broken_pdf, make_pdf
from tests.simulator.sim_support import Api, wait_for

HOOKS = "/v1/admin/company/webhooks"


def _register(api: Api, url: str) -> list[dict]:
    response = api.http.post(HOOKS, json={"event": "file_processed", "url": url})
    assert response.status_code == 201, response.text
    return response.json()


def test_webhooks_are_created_listed_and_deleted(api: Api) -> None:
    created = _register(api, "https://hooks.example.com/ad")
    again = _register(api, "http://127.0.0.1:9/hook")

    listed = api.http.get(HOOKS).json()
    removed = api.http.delete(f"{HOOKS}/{created[0]['id']}")
    missing = api.http.delete(f"{HOOKS}/{created[0]['id']}")

    assert created == [
        {
            "id": created[0]["id"],
            "event": "file_processed",
            "url": "https://hooks.example.com/ad",
        }
    ]
    assert listed == again
    assert removed.status_code == 200
    assert removed.json() == again[1:]
    assert missing.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"event": "file_processed", "url": "http://hooks.example.com/ad"},
        {"event": "file_processed", "url": "not a url"},
        {"event": "file_uploaded", "url": "https://hooks.example.com/ad"},
        {"event": "file_processed"},
    ],
)
def test_webhook_needs_the_known_event_and_an_https_url(api: Api, body: dict) -> None:
    response = api.http.post(HOOKS, json=body)

    assert response.status_code == 400


def test_completion_is_delivered_signed_in_both_schemes(
    start_api, start_receiver
) -> None:
    secret = "plain-secret"
    api = start_api(webhook_secret=secret)
    receiver = start_receiver()
    _register(api, receiver.url)

    file_id = api.submit(make_pdf(2))
    headers, body = wait_for(receiver.received, what="a delivery")[0]
    payload = json.loads(body)

    assert payload["event"] == "file_processed"
    assert payload["data"]["id"] == file_id
    assert payload["data"]["state"] == "completed"
    assert payload["data"]["pageCount"] == 2
    assert payload["id"] == headers["X-Webhook-Id"] == headers["webhook-id"]
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Signature"] == f"sha256={expected}"
    signed = f"{payload['id']}.{headers['webhook-timestamp']}.".encode() + body
    standard = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(standard).decode()


def test_whsec_secret_keys_standard_webhooks_by_its_decoded_bytes(
    start_api, start_receiver
) -> None:
    key = b"0123456789abcdef0123456789abcdef"
    secret = "whsec_" + base64.b64encode(key).decode()
    api = start_api(webhook_secret=secret)
    receiver = start_receiver()
    _register(api, receiver.url)

    api.submit(make_pdf(1))
    headers, body = wait_for(receiver.received, what="a delivery")[0]

    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    standard = hmac.new(key, signed, hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(standard).decode()
    plain = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Signature"] == f"sha256={plain}"


def test_delivery_is_retried_after_a_non_2xx_with_the_same_id(
    start_api, start_receiver
) -> None:
    api = start_api(webhook_secret="s", webhook_retry_seconds=(0.05, 0.05))
    receiver = start_receiver(statuses=[500, 503])
    _register(api, receiver.url)

    api.submit(make_pdf(1))
    deliveries = wait_for(
        lambda: len(receiver.received()) >= 3 and receiver.received(),
        what="three attempts",
    )

    ids = {headers["X-Webhook-Id"] for headers, _ in deliveries}
    bodies = {body for _, body in deliveries}
    assert len(ids) == 1
    assert len(bodies) == 1
    # The simulator logs an attempt once it has the answer, a moment after
    # the receiver has recorded it.
    outgoing = wait_for(
        lambda: (
            len(
                logged := [
                    e for e in api.sim.requests() if e["origin"] == "webhook-out"
                ]
            )
            >= 3
            and logged
        ),
        what="three logged attempts",
    )
    assert [(e["attempt"], e["status"]) for e in outgoing] == [
        (1, 500),
        (2, 503),
        (3, 200),
    ]
    assert outgoing[0]["path"] == receiver.url


def test_deliveries_stop_after_the_last_retry(start_api, start_receiver) -> None:
    api = start_api(webhook_retry_seconds=(0.02,))
    receiver = start_receiver(statuses=[500, 500, 500])
    _register(api, receiver.url)

    api.submit(make_pdf(1))
    wait_for(lambda: len(receiver.received()) >= 2, what="two attempts")

    outgoing = wait_for(
        lambda: [e for e in api.sim.requests() if e["origin"] == "webhook-out"]
    )
    assert max(e["attempt"] for e in outgoing) <= 2


def test_failed_records_are_announced_too(start_api, start_receiver) -> None:
    api = start_api()
    receiver = start_receiver()
    _register(api, receiver.url)

    file_id = api.submit(broken_pdf(), name="broken.pdf")
    _, body = wait_for(receiver.received, what="a delivery")[0]

    data = json.loads(body)["data"]
    assert data["id"] == file_id
    assert data["state"] == "failed"
    assert data["refunded"] is True
    assert "X-Signature" not in receiver.received()[0][0]


def test_unreachable_receiver_is_logged_without_status(start_api) -> None:
    api = start_api(webhook_retry_seconds=())
    _register(api, "http://127.0.0.1:9/hook")

    api.submit(make_pdf(1))
    outgoing = wait_for(
        lambda: [e for e in api.sim.requests() if e["origin"] == "webhook-out"],
        what="a failed delivery",
    )

    assert outgoing[0]["status"] is None
    assert "error" in outgoing[0]
