"""The webhook endpoint over real HTTP: what it accepts, refuses and causes."""

from __future__ import annotations

import base64
import json
import time
from typing import TYPE_CHECKING

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from syncd.journal import Stage
from tests.harness import wait_until
from tests.webhook.conftest import (
    MAX_BODY_BYTES,
    SECRET,
    WEBHOOK_PATH,
    only_scheme,
    signed_headers,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.webhook.conftest import Receiver


def assert_not_hinted(receiver: Receiver, before: float) -> None:
    doc = receiver.document()
    assert doc.stage is Stage.PROCESSING
    assert doc.not_before == before
    assert receiver.webhook_seen_at() is None
    assert receiver.downloads() == []


def test_a_valid_delivery_makes_the_document_due_and_it_is_downloaded(
    receiver: Receiver,
) -> None:
    receiver.sim.complete_now(receiver.remote_id)

    response = receiver.deliver()

    assert response.status_code == 202
    assert response.json() == {"status": "accepted", "documents": 1}
    assert receiver.webhook_seen_at() is not None
    wait_until(lambda: receiver.tree.listing(receiver.tree.outbox) == ["a.pdf"])
    assert len(receiver.downloads()) == 1


def test_a_replayed_delivery_is_acknowledged_and_downloads_once(
    receiver: Receiver,
) -> None:
    receiver.sim.complete_now(receiver.remote_id)

    first = receiver.deliver(delivery_id="msg_replayed")
    second = receiver.deliver(delivery_id="msg_replayed")
    wait_until(lambda: receiver.tree.listing(receiver.tree.archive) == ["a.pdf"])
    third = receiver.deliver(delivery_id="msg_replayed")

    assert [first.status_code, second.status_code, third.status_code] == [202] * 3
    assert third.json()["documents"] == 0
    assert receiver.tree.listing(receiver.tree.outbox) == ["a.pdf"]
    assert len(receiver.downloads()) == 1


def test_an_unknown_file_is_acknowledged_and_nothing_changes(
    receiver: Receiver,
) -> None:
    before = receiver.document()

    response = receiver.deliver("someone-elses-file")

    assert response.status_code == 202
    assert response.json()["documents"] == 0
    after = receiver.document()
    assert after.stage is Stage.PROCESSING
    assert after.not_before == before.not_before
    assert receiver.downloads() == []


def test_a_wrong_secret_is_refused_and_nothing_happens(receiver: Receiver) -> None:
    before = receiver.document().not_before
    receiver.sim.complete_now(receiver.remote_id)

    response = receiver.deliver(secret="whsec_" + "QUJD" * 8)

    assert response.status_code == 401
    assert SECRET not in response.text
    assert_not_hinted(receiver, before)


def test_a_tampered_body_is_refused(receiver: Receiver) -> None:
    before = receiver.document().not_before
    body = json.dumps({"id": "msg_t", "data": {"id": receiver.remote_id}}).encode()
    headers = only_scheme(signed_headers(body, "msg_t"), receiver.scheme)

    response = receiver.post(body.replace(b"msg_t", b"msg_u"), headers)

    assert response.status_code == 401
    assert_not_hinted(receiver, before)


def test_an_unsigned_delivery_is_refused(receiver: Receiver) -> None:
    before = receiver.document().not_before
    body = json.dumps({"id": "msg_u", "data": {"id": receiver.remote_id}}).encode()

    response = receiver.post(body, {"Content-Type": "application/json"})

    assert response.status_code == 401
    assert response.json() == {"error": "missing_header"}
    assert_not_hinted(receiver, before)


def test_a_stale_or_future_standard_timestamp_is_refused(receiver: Receiver) -> None:
    if receiver.scheme != "standard-webhooks":
        return
    before = receiver.document().not_before
    now = int(time.time())

    stale = receiver.deliver(timestamp=now - 600)
    future = receiver.deliver(timestamp=now + 600)

    assert stale.status_code == future.status_code == 401
    assert stale.json() == {"error": "stale_timestamp"}
    assert future.json() == {"error": "future_timestamp"}
    assert_not_hinted(receiver, before)


def test_a_body_over_the_limit_is_refused_with_413(receiver: Receiver) -> None:
    before = receiver.document().not_before
    body = b"{" + b" " * MAX_BODY_BYTES + b"}"

    response = receiver.post(body, signed_headers(body))

    assert response.status_code == 413
    assert_not_hinted(receiver, before)


def test_a_chunked_body_over_the_limit_is_cut_off_with_413(receiver: Receiver) -> None:
    before = receiver.document().not_before

    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_BODY_BYTES // 512 + 4):
            yield b" " * 512

    response = receiver.client.post(WEBHOOK_PATH, content=chunks())

    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert_not_hinted(receiver, before)


def test_a_body_at_the_limit_is_read(receiver: Receiver) -> None:
    payload = {"id": "msg_big", "data": {"id": "unknown"}, "pad": ""}
    padding = MAX_BODY_BYTES - len(json.dumps(payload).encode())
    payload["pad"] = " " * padding
    body = json.dumps(payload).encode()
    assert len(body) == MAX_BODY_BYTES

    response = receiver.post(body, only_scheme(signed_headers(body), receiver.scheme))

    assert response.status_code == 202


def test_malformed_json_with_a_good_signature_is_refused_with_400(
    receiver: Receiver,
) -> None:
    before = receiver.document().not_before
    bodies = [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'{"id": "msg_x"}',
        b'{"data": {"id": ""}}',
        b'{"data": {"id": true}}',
        b'{"data": "f1"}',
    ]

    for body in bodies:
        headers = only_scheme(signed_headers(body), receiver.scheme)
        response = receiver.post(body, headers)
        assert response.status_code == 400, body
        assert response.json() == {"error": "unreadable_payload"}
    assert_not_hinted(receiver, before)


def test_other_methods_on_the_webhook_path_answer_405(receiver: Receiver) -> None:
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        response = receiver.client.request(method, WEBHOOK_PATH)
        assert response.status_code == 405, method


def test_other_paths_answer_404(receiver: Receiver) -> None:
    body = b"{}"
    for path in ("/", "/webhooks", WEBHOOK_PATH + "/x", "/healthz/x"):
        response = receiver.client.post(path, content=body)
        assert response.status_code in (404, 405), path
    assert receiver.client.get("/nothing-here").status_code == 404
    assert receiver.client.post("/webhook").status_code == 404


header_names = st.sampled_from(
    [
        "X-Signature",
        "X-Webhook-Id",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "Content-Type",
        "X-Other",
    ]
)
header_values = st.one_of(
    st.text(
        st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=0, max_size=80
    ),
    st.builds(lambda h: "sha256=" + h, st.text("0123456789abcdef", max_size=70)),
    st.builds(lambda b: "v1," + base64.b64encode(b).decode(), st.binary(max_size=40)),
    st.integers(0, 2**40).map(str),
    # HTTP forbids whitespace around a header value; clients refuse to send it.
).map(str.strip)


def bodies(remote_id: str) -> st.SearchStrategy[bytes]:
    payloads = st.fixed_dictionaries(
        {
            "id": st.text(max_size=20),
            "data": st.fixed_dictionaries({"id": st.just(remote_id)}),
        }
    ).map(lambda value: json.dumps(value).encode())
    return st.one_of(st.binary(max_size=2 * MAX_BODY_BYTES), payloads)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_random_requests_never_cause_a_5xx_or_a_hint(
    receiver: Receiver, data: st.DataObject
) -> None:
    before = receiver.document().not_before
    receiver.sim.complete_now(receiver.remote_id)
    headers = data.draw(st.dictionaries(header_names, header_values, max_size=6))
    body = data.draw(bodies(receiver.remote_id))

    response = receiver.post(body, headers)

    assert response.status_code in (401, 413), response.text
    assert_not_hinted(receiver, before)


def test_refusals_are_logged_with_their_reason_and_without_secrets(
    receiver: Receiver,
) -> None:
    body = json.dumps({"id": "msg_l", "data": {"id": receiver.remote_id}}).encode()
    good = only_scheme(signed_headers(body, "msg_l"), receiver.scheme)
    forged = {
        name: (value[:-6] + "AAAAA=" if "signature" in name.lower() else value)
        for name, value in good.items()
    }

    with capture_logs() as logs:
        response = receiver.post(body, forged)
        wait_until(lambda: any(e["event"] == "webhook.rejected" for e in logs))

    assert response.status_code == 401
    (entry,) = [e for e in logs if e["event"] == "webhook.rejected"]
    assert entry["log_level"] == "warning"
    assert entry["reason"] in ("bad_signature", "malformed_header")
    assert entry["status"] == 401
    text = repr(logs)
    assert SECRET not in text
    for name, value in {**good, **forged}.items():
        if "signature" in name.lower():
            assert value.split(",")[-1].removeprefix("sha256=") not in text
