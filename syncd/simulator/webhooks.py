"""Webhook deliveries: signed ``file_processed`` notifications with retries.

Implements the contract's "Webhooks" section. For every webhook registered
when a record reaches ``completed``, the simulator POSTs::

    {"id": "<delivery id>", "event": "file_processed",
     "createdAt": "<when the record finished>", "data": {<file object>}}

signed in both schemes the contract allows, at once, so a receiver can be
tested with either setting:

- ``X-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`` and
  ``X-Webhook-Id: <delivery id>``; the key is the secret's UTF-8 bytes as
  configured, whatever its prefix.
- Standard Webhooks: ``webhook-id``, ``webhook-timestamp`` (epoch seconds of
  this attempt) and ``webhook-signature: v1,<base64 HMAC-SHA256>`` over
  ``{id}.{timestamp}.{body}``. As the Standard Webhooks libraries do, a secret
  starting with ``whsec_`` is keyed by the base64-decoded rest; any other
  secret by its UTF-8 bytes.

Without a webhook secret the notifications go out unsigned (ids only).

Decisions where the contract is silent: records that end ``failed`` are
announced too (``webhook_on_failed``, on by default; ``data.state`` tells
them apart), because the event means "processing is over". A delivery that
gets no 2xx within ``webhook_timeout_seconds`` (10 s) is retried after each
wait of ``webhook_retry_seconds`` with the same delivery id and body; the
real service is said to retry for up to a day, the simulator stops after
the last wait so that runs end.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import time
from typing import TYPE_CHECKING, Any

import httpx

from syncd.simulator.state import iso

if TYPE_CHECKING:
    from syncd.simulator.options import SimulatorOptions
    from syncd.simulator.requestlog import RequestLog
    from syncd.simulator.state import FileEvent, Store

EVENT = "file_processed"


def signature_headers(
    secret: str, delivery_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """Return both signature header sets for one delivery attempt."""
    plain = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    standard = hmac.new(standard_webhooks_key(secret), signed, hashlib.sha256)

    return {
        "X-Signature": f"sha256={plain}",
        "webhook-signature": "v1," + base64.b64encode(standard.digest()).decode(),
    }


def standard_webhooks_key(secret: str) -> bytes:
    """Return the HMAC key the Standard Webhooks scheme derives from ``secret``."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))

    return secret.encode()


class WebhookDispatcher:
    """Announce terminal records to every registered webhook.

    Lives on the servers' event loop: ``announce`` schedules deliveries,
    ``close`` cancels the ones still waiting to retry.
    """

    def __init__(
        self, options: SimulatorOptions, store: Store, log: RequestLog
    ) -> None:
        self._options = options
        self._store = store
        self._log = log
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._client_lock = asyncio.Lock()

    def announce(self, event: FileEvent) -> None:
        if event.state == "failed" and not self._options.webhook_on_failed:
            return
        for hook in self._store.webhooks():
            delivery_id = "msg_" + secrets.token_hex(12)
            payload = {
                "id": delivery_id,
                "event": EVENT,
                "createdAt": iso(event.at),
                "data": event.object,
            }
            body = json.dumps(payload, separators=(",", ":")).encode()
            task = asyncio.create_task(
                self._deliver(hook["url"], delivery_id, event.file_id, body)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _deliver(
        self, url: str, delivery_id: str, file_id: str, body: bytes
    ) -> None:
        waits = self._options.webhook_retry_seconds
        for attempt in range(1, len(waits) + 2):
            status, error = await self._attempt(url, delivery_id, body)
            entry: dict[str, Any] = {
                "t": time.time(),
                "origin": "webhook-out",
                "method": "POST",
                "path": url,
                "status": status,
                "file_id": file_id,
                "idempotency_key": None,
                "replay": False,
                "leak": False,
                "fault": None,
                "delivery_id": delivery_id,
                "attempt": attempt,
            }
            if error is not None:
                entry["error"] = error
            self._log.record(entry)
            if status is not None and 200 <= status < 300:
                return
            if attempt <= len(waits):
                await asyncio.sleep(waits[attempt - 1])

    async def _http(self) -> httpx.AsyncClient:
        async with self._client_lock:
            if self._client is None:
                # Building a client loads the CA bundle, long enough to stall
                # every other request if it ran on the loop.
                self._client = await asyncio.to_thread(
                    httpx.AsyncClient,
                    timeout=self._options.webhook_timeout_seconds,
                    follow_redirects=False,
                )
            return self._client

    async def _attempt(
        self, url: str, delivery_id: str, body: bytes
    ) -> tuple[int | None, str | None]:
        client = await self._http()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "AccessibleDocs-Simulator",
            "X-Webhook-Id": delivery_id,
            "webhook-id": delivery_id,
            "webhook-timestamp": str(timestamp),
        }
        secret = self._options.webhook_secret
        if secret:
            headers.update(signature_headers(secret, delivery_id, timestamp, body))
        try:
            response = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"

        return response.status_code, None
