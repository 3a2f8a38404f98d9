"""Checking that a webhook delivery was signed with the webhook secret.

Two schemes are understood, chosen by ``webhook.signature``:

- ``hmac-sha256``: ``X-Signature: sha256=<hex>``, the HMAC-SHA256 of the raw
  body keyed with the secret (the API contract's guess, and GitHub's format).
- ``standard-webhooks``: the Standard Webhooks specification
  (standardwebhooks.com): ``webhook-id``, ``webhook-timestamp`` and
  ``webhook-signature``, a space-separated list of ``v1,<base64>`` entries so
  that a sender can sign with an old and a new secret while rotating them.
  The signed content is ``{id}.{timestamp}.{body}``; the key is the base64
  text after ``whsec_`` when the secret has that prefix, else the secret's
  UTF-8 bytes.

Everything here is pure: no I/O, no clock of its own (``now`` is passed in).
Signatures are always computed over the raw bytes received, never over
re-serialised JSON, and compared with ``hmac.compare_digest``.

A ``Verdict`` names why a delivery failed so that the log can say it, but it
never carries the secret or the signature values: a log line must not help
anyone forge the next request.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import hashlib
import hmac
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping

Scheme = Literal["hmac-sha256", "standard-webhooks"]

# The Standard Webhooks specification recommends five minutes, both ways:
# older deliveries may be replays, newer ones come from a skewed clock.
TOLERANCE_SECONDS = 300

HMAC_HEADER = "x-signature"
HMAC_PREFIX = "sha256="
STANDARD_ID = "webhook-id"
STANDARD_TIMESTAMP = "webhook-timestamp"
STANDARD_SIGNATURE = "webhook-signature"
STANDARD_SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
# The API contract's scheme repeats the delivery id in this header.
DELIVERY_ID_HEADER = "x-webhook-id"

_SHA256_HEX_LENGTH = 64
_SHA256_BYTES = 32


class Failure(enum.StrEnum):
    """Why a delivery's signature was not accepted (a stable log field)."""

    MISSING_HEADER = "missing_header"
    MALFORMED_HEADER = "malformed_header"
    MALFORMED_TIMESTAMP = "malformed_timestamp"
    STALE_TIMESTAMP = "stale_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    BAD_SIGNATURE = "bad_signature"
    UNUSABLE_SECRET = "unusable_secret"  # noqa: S105 - a reason code


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The outcome of checking one delivery.

    ``failure`` is None when the signature is valid. ``header`` names the
    header at fault, ``detail`` says more in words; neither ever holds a
    secret or a signature. ``delivery_id`` is the sender's id for the
    delivery when its headers carry one, valid or not.
    """

    failure: Failure | None
    header: str | None = None
    detail: str | None = None
    delivery_id: str | None = None

    @property
    def valid(self) -> bool:
        return self.failure is None

    def __bool__(self) -> bool:
        return self.valid


def verify(
    scheme: Scheme,
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    now: float,
) -> Verdict:
    """Check a delivery's signature with the scheme the configuration names.

    Args:
        scheme: ``hmac-sha256`` or ``standard-webhooks``.
        secret: The webhook secret from the dashboard.
        body: The request body exactly as received.
        headers: The request headers; names are matched case-insensitively.
        now: The current Unix time, for the timestamp tolerance.

    Returns:
        A verdict that is truthy when the delivery is authentic.
    """
    if scheme == "standard-webhooks":
        return verify_standard_webhooks(secret, body, headers, now)

    return verify_hmac_sha256(secret, body, headers)


def sign_hmac_sha256(secret: str, body: bytes) -> str:
    """The ``X-Signature`` value a sender puts on ``body``: ``sha256=<hex>``."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()

    return HMAC_PREFIX + digest


def verify_hmac_sha256(secret: str, body: bytes, headers: Mapping[str, str]) -> Verdict:
    """Check ``X-Signature: sha256=<hex>`` against the HMAC-SHA256 of ``body``.

    The scheme carries no timestamp, so a replayed delivery verifies again;
    that is harmless because a delivery only makes a document due for a poll.
    """
    lowered = _lower(headers)
    delivery_id = lowered.get(DELIVERY_ID_HEADER) or None
    value = lowered.get(HMAC_HEADER)
    if value is None:
        return Verdict(Failure.MISSING_HEADER, HMAC_HEADER, delivery_id=delivery_id)

    value = value.strip()
    if not value.lower().startswith(HMAC_PREFIX):
        return Verdict(
            Failure.MALFORMED_HEADER,
            HMAC_HEADER,
            "expected sha256=<hex>",
            delivery_id,
        )
    given = value[len(HMAC_PREFIX) :].lower()
    if len(given) != _SHA256_HEX_LENGTH or not _is_hex(given):
        return Verdict(
            Failure.MALFORMED_HEADER,
            HMAC_HEADER,
            f"expected {_SHA256_HEX_LENGTH} hex digits, got {len(given)} characters",
            delivery_id,
        )

    expected = sign_hmac_sha256(secret, body)[len(HMAC_PREFIX) :]
    if not hmac.compare_digest(given.encode("ascii"), expected.encode("ascii")):
        return Verdict(Failure.BAD_SIGNATURE, HMAC_HEADER, delivery_id=delivery_id)

    return Verdict(None, delivery_id=delivery_id)


def standard_webhooks_key(secret: str) -> bytes:
    """The HMAC key for a Standard Webhooks secret.

    Raises:
        ValueError: the secret has the ``whsec_`` prefix but no valid base64
            after it.
    """
    if not secret.startswith(STANDARD_SECRET_PREFIX):
        return secret.encode("utf-8")

    encoded = secret[len(STANDARD_SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the text after whsec_ is not valid base64") from exc
    if not key:
        raise ValueError("the text after whsec_ is empty")

    return key


def sign_standard_webhooks(
    secret: str, delivery_id: str, timestamp: int, body: bytes
) -> str:
    """One ``webhook-signature`` entry for a delivery: ``v1,<base64>``."""
    digest = _standard_digest(
        standard_webhooks_key(secret), delivery_id, timestamp, body
    )

    return "v1," + base64.b64encode(digest).decode("ascii")


def verify_standard_webhooks(
    secret: str, body: bytes, headers: Mapping[str, str], now: float
) -> Verdict:
    """Check the Standard Webhooks headers of a delivery.

    Any one valid ``v1`` entry is enough; entries of other versions are
    skipped, as the specification asks. The signature is checked before the
    timestamp, so a stale or future verdict means an authentic delivery
    that came late or from a clock that is off, which the operator can act
    on, rather than noise from anyone who can reach the port.
    """
    lowered = _lower(headers)
    for name in (STANDARD_ID, STANDARD_TIMESTAMP, STANDARD_SIGNATURE):
        if not lowered.get(name, "").strip():
            return Verdict(
                Failure.MISSING_HEADER,
                name,
                delivery_id=lowered.get(STANDARD_ID) or None,
            )
    delivery_id = lowered[STANDARD_ID].strip()
    timestamp_text = lowered[STANDARD_TIMESTAMP].strip()

    if not (timestamp_text.isascii() and timestamp_text.isdigit()):
        return Verdict(
            Failure.MALFORMED_TIMESTAMP,
            STANDARD_TIMESTAMP,
            "expected whole seconds since the epoch",
            delivery_id,
        )
    # Digits only; a length cap keeps int() cheap on a hostile header.
    if len(timestamp_text) > 12:
        return Verdict(
            Failure.MALFORMED_TIMESTAMP,
            STANDARD_TIMESTAMP,
            "too many digits",
            delivery_id,
        )
    timestamp = int(timestamp_text)

    try:
        key = standard_webhooks_key(secret)
    except ValueError as exc:
        return Verdict(Failure.UNUSABLE_SECRET, None, str(exc), delivery_id)

    candidates = _v1_signatures(lowered[STANDARD_SIGNATURE])
    if not candidates:
        return Verdict(
            Failure.MALFORMED_HEADER,
            STANDARD_SIGNATURE,
            "no v1,<base64> entry with a 32-byte signature",
            delivery_id,
        )
    expected = _standard_digest(key, delivery_id, timestamp, body)
    # Compare with every candidate, not only until the first match, so the
    # time taken does not tell which entry matched.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(candidate, expected)
    if not matched:
        return Verdict(Failure.BAD_SIGNATURE, STANDARD_SIGNATURE, None, delivery_id)

    if timestamp < now - TOLERANCE_SECONDS:
        return Verdict(
            Failure.STALE_TIMESTAMP,
            STANDARD_TIMESTAMP,
            f"{round(now - timestamp)} s old, more than {TOLERANCE_SECONDS} s",
            delivery_id,
        )
    if timestamp > now + TOLERANCE_SECONDS:
        return Verdict(
            Failure.FUTURE_TIMESTAMP,
            STANDARD_TIMESTAMP,
            f"{round(timestamp - now)} s ahead, more than {TOLERANCE_SECONDS} s",
            delivery_id,
        )

    return Verdict(None, delivery_id=delivery_id)


def _standard_digest(
    key: bytes, delivery_id: str, timestamp: int, body: bytes
) -> bytes:
    signed = f"{delivery_id}.{timestamp}.".encode() + body

    return hmac.new(key, signed, hashlib.sha256).digest()


def _v1_signatures(header: str) -> list[bytes]:
    """The decoded ``v1`` signatures of a ``webhook-signature`` header.

    Entries that are empty, of another version, not base64 or not 32 bytes
    long are left out: they cannot match, and one bad entry must not hide a
    good one beside it.
    """
    found: list[bytes] = []
    for entry in header.split():
        version, comma, encoded = entry.partition(",")
        if version != "v1" or not comma or not encoded:
            continue
        try:
            decoded = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(decoded) == _SHA256_BYTES:
            found.append(decoded)

    return found


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _is_hex(text: str) -> bool:
    return all(char in "0123456789abcdef" for char in text)
