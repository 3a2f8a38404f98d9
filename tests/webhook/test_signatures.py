"""Signature checks of both schemes, against published vectors and tampering."""

from __future__ import annotations

import base64

import pytest

from syncd.signatures import (
    TOLERANCE_SECONDS,
    Failure,
    verify,
    verify_hmac_sha256,
    verify_standard_webhooks,
)
from syncd.simulator.webhooks import signature_headers

# GitHub's documented example ("Validating webhook deliveries").
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = (
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
)

# The example the Standard Webhooks reference libraries test against.
STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
STANDARD_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
STANDARD_TIMESTAMP = 1614265330
STANDARD_BODY = b'{"test": 2432232314}'
STANDARD_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

NOW = 1_800_000_000
SECRET = "s3cret-for-tests"
BODY = b'{"id":"msg_1","event":"file_processed","data":{"id":"f1"}}'


def standard_headers(
    signature: str = STANDARD_SIGNATURE,
    timestamp: int = STANDARD_TIMESTAMP,
    delivery_id: str = STANDARD_ID,
) -> dict[str, str]:
    return {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def simulated(
    secret: str = SECRET, body: bytes = BODY, timestamp: int = NOW
) -> dict[str, str]:
    headers = signature_headers(secret, "msg_1", timestamp, body)
    return {
        **headers,
        "webhook-id": "msg_1",
        "webhook-timestamp": str(timestamp),
        "X-Webhook-Id": "msg_1",
    }


# -- hmac-sha256 ------------------------------------------------------------


def test_hmac_accepts_githubs_published_example() -> None:
    verdict = verify_hmac_sha256(
        GITHUB_SECRET, GITHUB_BODY, {"X-Signature": GITHUB_SIGNATURE}
    )

    assert verdict.valid
    assert verdict.failure is None


def test_hmac_accepts_what_the_simulator_signs() -> None:
    assert verify("hmac-sha256", SECRET, BODY, simulated(), NOW)


def test_hmac_header_names_are_case_insensitive() -> None:
    assert verify_hmac_sha256(
        GITHUB_SECRET, GITHUB_BODY, {"x-signature": GITHUB_SIGNATURE.upper()}
    )


def test_hmac_refuses_a_wrong_secret() -> None:
    verdict = verify_hmac_sha256(
        "not the secret", GITHUB_BODY, {"X-Signature": GITHUB_SIGNATURE}
    )

    assert not verdict
    assert verdict.failure is Failure.BAD_SIGNATURE
    assert verdict.header == "x-signature"


def test_hmac_refuses_a_tampered_body() -> None:
    verdict = verify_hmac_sha256(
        GITHUB_SECRET, b"Hello, World?", {"X-Signature": GITHUB_SIGNATURE}
    )

    assert verdict.failure is Failure.BAD_SIGNATURE


def test_hmac_refuses_a_missing_header() -> None:
    verdict = verify_hmac_sha256(GITHUB_SECRET, GITHUB_BODY, {})

    assert verdict.failure is Failure.MISSING_HEADER
    assert verdict.header == "x-signature"


@pytest.mark.parametrize(
    "value",
    [
        "sha256=",
        GITHUB_SIGNATURE[:-1],
        GITHUB_SIGNATURE[:20],
        GITHUB_SIGNATURE + "0",
        GITHUB_SIGNATURE.removeprefix("sha256="),
        "sha1=" + GITHUB_SIGNATURE.removeprefix("sha256="),
        "sha256=" + "z" * 64,
        "",
    ],
    ids=[
        "bare-prefix",
        "one-digit-short",
        "truncated",
        "one-digit-long",
        "no-prefix",
        "other-algorithm",
        "not-hex",
        "empty",
    ],
)
def test_hmac_refuses_malformed_signatures_as_malformed(value: str) -> None:
    verdict = verify_hmac_sha256(GITHUB_SECRET, GITHUB_BODY, {"X-Signature": value})

    assert verdict.failure is Failure.MALFORMED_HEADER


def test_a_verdict_never_repeats_the_secret_or_the_signature() -> None:
    verdicts = [
        verify_hmac_sha256(GITHUB_SECRET, b"x", {"X-Signature": GITHUB_SIGNATURE}),
        verify_hmac_sha256(GITHUB_SECRET, b"x", {"X-Signature": "sha256=abc"}),
        verify_standard_webhooks(STANDARD_SECRET, b"x", standard_headers(), NOW),
        verify_standard_webhooks(
            STANDARD_SECRET, STANDARD_BODY, standard_headers(), NOW
        ),
    ]

    for verdict in verdicts:
        text = repr(verdict)
        assert GITHUB_SECRET not in text
        assert GITHUB_SIGNATURE.removeprefix("sha256=") not in text
        assert STANDARD_SECRET not in text
        assert STANDARD_SIGNATURE.removeprefix("v1,") not in text


# -- standard-webhooks ------------------------------------------------------


def test_standard_accepts_the_reference_libraries_example() -> None:
    verdict = verify_standard_webhooks(
        STANDARD_SECRET, STANDARD_BODY, standard_headers(), STANDARD_TIMESTAMP
    )

    assert verdict.valid
    assert verdict.delivery_id == STANDARD_ID


@pytest.mark.parametrize(
    "secret", [SECRET, "whsec_" + base64.b64encode(b"k" * 24).decode()]
)
def test_standard_accepts_what_the_simulator_signs(secret: str) -> None:
    assert verify("standard-webhooks", secret, BODY, simulated(secret), NOW)


def test_standard_refuses_a_wrong_secret() -> None:
    verdict = verify_standard_webhooks(
        "whsec_" + base64.b64encode(b"another key").decode(),
        STANDARD_BODY,
        standard_headers(),
        STANDARD_TIMESTAMP,
    )

    assert verdict.failure is Failure.BAD_SIGNATURE


def test_standard_refuses_a_tampered_body() -> None:
    verdict = verify_standard_webhooks(
        STANDARD_SECRET,
        STANDARD_BODY.replace(b"2", b"3"),
        standard_headers(),
        STANDARD_TIMESTAMP,
    )

    assert verdict.failure is Failure.BAD_SIGNATURE


def test_standard_refuses_a_changed_delivery_id_or_timestamp() -> None:
    other_id = standard_headers(delivery_id="msg_other")
    other_time = standard_headers(timestamp=STANDARD_TIMESTAMP + 1)

    for headers in (other_id, other_time):
        verdict = verify_standard_webhooks(
            STANDARD_SECRET, STANDARD_BODY, headers, STANDARD_TIMESTAMP
        )
        assert verdict.failure is Failure.BAD_SIGNATURE


@pytest.mark.parametrize(
    "signature",
    ["v1,", "v1", "v1,not base64!", "v1,AAAA", "v2," + STANDARD_SIGNATURE[3:], ","],
    ids=[
        "empty-value",
        "no-comma",
        "not-base64",
        "too-short",
        "other-version",
        "comma",
    ],
)
def test_standard_refuses_unusable_signature_entries_as_malformed(
    signature: str,
) -> None:
    verdict = verify_standard_webhooks(
        STANDARD_SECRET,
        STANDARD_BODY,
        standard_headers(signature=signature),
        STANDARD_TIMESTAMP,
    )

    assert verdict.failure is Failure.MALFORMED_HEADER
    assert verdict.header == "webhook-signature"


def test_standard_accepts_one_valid_signature_among_several() -> None:
    wrong = "v1," + base64.b64encode(b"\0" * 32).decode()
    listed = f"v1, {wrong} v1a,whatever {STANDARD_SIGNATURE} v1,%%%"

    verdict = verify_standard_webhooks(
        STANDARD_SECRET,
        STANDARD_BODY,
        standard_headers(signature=listed),
        STANDARD_TIMESTAMP,
    )

    assert verdict.valid


def test_standard_refuses_several_signatures_when_none_is_valid() -> None:
    wrong = ["v1," + base64.b64encode(bytes([n]) * 32).decode() for n in range(3)]

    verdict = verify_standard_webhooks(
        STANDARD_SECRET,
        STANDARD_BODY,
        standard_headers(signature=" ".join(wrong)),
        STANDARD_TIMESTAMP,
    )

    assert verdict.failure is Failure.BAD_SIGNATURE


@pytest.mark.parametrize(
    ("skew", "failure"),
    [
        (-TOLERANCE_SECONDS - 1, Failure.STALE_TIMESTAMP),
        (-86_400, Failure.STALE_TIMESTAMP),
        (TOLERANCE_SECONDS + 1, Failure.FUTURE_TIMESTAMP),
        (86_400, Failure.FUTURE_TIMESTAMP),
    ],
    ids=["just-stale", "a-day-old", "just-future", "a-day-ahead"],
)
def test_standard_refuses_timestamps_outside_five_minutes(
    skew: int, failure: Failure
) -> None:
    sent_at = NOW + skew

    verdict = verify(
        "standard-webhooks", SECRET, BODY, simulated(timestamp=sent_at), NOW
    )

    assert verdict.failure is failure
    assert verdict.header == "webhook-timestamp"


@pytest.mark.parametrize("skew", [-TOLERANCE_SECONDS, 0, TOLERANCE_SECONDS])
def test_standard_accepts_timestamps_within_five_minutes(skew: int) -> None:
    sent_at = NOW + skew

    assert verify("standard-webhooks", SECRET, BODY, simulated(timestamp=sent_at), NOW)


@pytest.mark.parametrize(
    "missing", ["webhook-id", "webhook-timestamp", "webhook-signature"]
)
def test_standard_refuses_a_missing_header(missing: str) -> None:
    headers = standard_headers()
    del headers[missing]

    verdict = verify_standard_webhooks(
        STANDARD_SECRET, STANDARD_BODY, headers, STANDARD_TIMESTAMP
    )

    assert verdict.failure is Failure.MISSING_HEADER
    assert verdict.header == missing


@pytest.mark.parametrize("timestamp", ["-5", "1614265330.5", "soon", "9" * 40])
def test_standard_refuses_a_malformed_timestamp(timestamp: str) -> None:
    headers = standard_headers()
    headers["webhook-timestamp"] = timestamp

    verdict = verify_standard_webhooks(
        STANDARD_SECRET, STANDARD_BODY, headers, STANDARD_TIMESTAMP
    )

    assert verdict.failure is Failure.MALFORMED_TIMESTAMP


def test_standard_reports_a_whsec_secret_that_is_not_base64() -> None:
    verdict = verify_standard_webhooks(
        "whsec_not*base64", STANDARD_BODY, standard_headers(), STANDARD_TIMESTAMP
    )

    assert verdict.failure is Failure.UNUSABLE_SECRET
    assert "not*base64" not in repr(verdict)


def test_the_schemes_do_not_accept_each_others_headers() -> None:
    headers = simulated()
    hmac_only = {"X-Signature": headers["X-Signature"]}
    standard_only = {k: v for k, v in headers.items() if k.startswith("webhook-")}

    assert not verify("standard-webhooks", SECRET, BODY, hmac_only, NOW)
    assert not verify("hmac-sha256", SECRET, BODY, standard_only, NOW)
