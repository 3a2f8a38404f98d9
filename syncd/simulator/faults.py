"""Injected faults: the misbehaviour a client must survive.

One ``FaultController`` per simulator decides, request by request, what goes
wrong; a ``FaultMiddleware`` in front of each origin carries it out. Every
fault kind matches a line of the contract's "Errors and limits" section:

- ``500``: a transient server error (or another of ``ERROR_STATUSES``).
- ``429``: too many requests, with ``Retry-After`` in seconds, as an HTTP
  date (RFC 9110, 10.2.3), or alternating between the two.
- ``drop``: the connection is closed before any answer is sent.
- ``lost``: the request is carried out, then the connection is closed
  instead of answering: the client cannot tell whether it took effect.
- ``truncate``: a PDF answer stops half way while ``Content-Length`` promises
  the whole file, then the connection closes.
- latency, with occasional spikes (logged as ``spike``).
- a per-origin rate limit (token bucket) answered with ``429``.

The ``/_sim`` control surface is exempt from every fault.

Closing a connection on purpose needs the socket's transport, which ASGI does
not expose. ``ConnectionAwareH11Protocol`` is uvicorn's h11 protocol with one
addition: it puts each connection's transport in the ASGI scope's ``state``
under ``TRANSPORT_KEY``. Closing the transport (rather than raising from the
app) keeps uvicorn from logging the fault as an application error or turning
it into a 500.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import math
import random
import threading
import time
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from syncd.simulator.replies import error_response
from syncd.simulator.requestlog import (
    CONTROL_PREFIX,
    record_unanswered,
    request_info,
)

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from syncd.simulator.options import FaultSettings

TRANSPORT_KEY = "sim.transport"
_DISCONNECT_WAIT_SECONDS = 5.0


class ConnectionAwareH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, exposing the transport to the app for faults."""

    def connection_made(  # type: ignore[override]
        self, transport: asyncio.Transport
    ) -> None:
        super().connection_made(transport)
        # app_state is shared by all connections of a server; give this
        # connection its own copy before adding its transport.
        self.app_state = {**self.app_state, TRANSPORT_KEY: transport}


@dataclasses.dataclass(frozen=True)
class Decision:
    """What happens to one request."""

    fault: str | None = None
    delay: float = 0.0
    spike: bool = False
    retry_after: str | None = None


@dataclasses.dataclass
class _Bucket:
    tokens: float
    refilled_at: float


class FaultController:
    """Thread-safe holder of the fault settings and of their random draws.

    One uniform draw per request chooses among 500, 429, drop, lost and
    truncate, so with a fixed ``seed`` the sequence of faults is repeatable
    for the same sequence of requests.
    """

    def __init__(self, settings: FaultSettings, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._settings = settings
        self._random = random.Random(seed)  # noqa: S311 - test faults, not crypto
        self._buckets: dict[str, _Bucket] = {}
        self._retry_after_count = 0

    @property
    def settings(self) -> FaultSettings:
        with self._lock:
            return self._settings

    def update(self, **changes: Any) -> FaultSettings:
        """Apply ``changes``; raise ValueError naming every unusable field."""
        with self._lock:
            updated = self._settings.changed(**changes)
            if updated.rate_limit_per_second != self._settings.rate_limit_per_second:
                self._buckets.clear()
            self._settings = updated
            return updated

    def decide(self, origin: str) -> Decision:
        with self._lock:
            settings = self._settings
            delay = settings.latency_seconds
            spike = False
            if settings.latency_spike_rate and (
                self._random.random() < settings.latency_spike_rate
            ):
                delay += settings.latency_spike_seconds
                spike = True

            wait = self._take_token(origin, settings)
            if wait is not None:
                return Decision("429", delay, spike, self._retry_after(wait))

            draw = self._random.random()
            for fault, rate in (
                ("500", settings.error_rate),
                ("429", settings.rate_429),
                ("drop", settings.drop_rate),
                ("lost", settings.lost_answer_rate),
                ("truncate", settings.truncate_rate),
            ):
                if draw < rate:
                    retry_after = None
                    if fault == "429":
                        retry_after = self._retry_after(settings.retry_after_seconds)
                    return Decision(fault, delay, spike, retry_after)
                draw -= rate

            return Decision(None, delay, spike)

    def _take_token(self, origin: str, settings: FaultSettings) -> int | None:
        """Return None if the request may pass, else the seconds to wait."""
        rate = settings.rate_limit_per_second
        if rate is None:
            return None
        now = time.monotonic()
        capacity = max(rate, 1.0)
        bucket = self._buckets.setdefault(origin, _Bucket(capacity, now))
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.refilled_at) * rate)
        bucket.refilled_at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None

        return max(math.ceil((1.0 - bucket.tokens) / rate), 1)

    def _retry_after(self, seconds: int) -> str:
        form = self._settings.retry_after_form
        if form == "mixed":
            self._retry_after_count += 1
            form = "date" if self._retry_after_count % 2 == 0 else "seconds"
        if form == "date":
            # An HTTP date has whole seconds; round up so that a client that
            # honours it never comes back early.
            return email.utils.formatdate(math.ceil(time.time()) + seconds, usegmt=True)

        return str(seconds)


class FaultMiddleware:
    """Apply the controller's decision to each request of one origin."""

    def __init__(self, app: ASGIApp, controller: FaultController, origin: str) -> None:
        self._app = app
        self._controller = controller
        self._origin = origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self._app(scope, receive, send)
            return

        decision = self._controller.decide(self._origin)
        info = request_info(scope)
        if decision.spike:
            info["fault"] = "spike"
        if decision.delay > 0:
            await asyncio.sleep(decision.delay)

        if decision.fault == "500":
            status = self._controller.settings.error_status
            info["fault"] = str(status)
            response = error_response(status, "simulated server error")
            await response(scope, receive, send)
        elif decision.fault == "429":
            info["fault"] = "429"
            headers = {"Retry-After": decision.retry_after or "1"}
            response = error_response(429, "too many requests", headers)
            await response(scope, receive, send)
        elif decision.fault == "drop":
            info["fault"] = "drop"
            await _close_connection(scope, receive)
        elif decision.fault == "lost":
            info["fault"] = "lost"
            status = await _carry_out_unanswered(self._app, scope, receive)
            await _close_connection(scope, receive, status)
        elif decision.fault == "truncate":
            await self._app(scope, receive, _truncating(scope, send))
        else:
            await self._app(scope, receive, send)


def _transport(scope: Scope) -> asyncio.Transport:
    transport = scope.get("state", {}).get(TRANSPORT_KEY)
    if transport is None:
        message = (
            "closing a connection on purpose needs the simulator's uvicorn "
            "protocol (ConnectionAwareH11Protocol)"
        )
        raise RuntimeError(message)

    return transport  # type: ignore[no-any-return]


async def _carry_out_unanswered(app: ASGIApp, scope: Scope, receive: Receive) -> int:
    """Run the request through ``app``, keep its answer; return its status."""
    status = 500

    async def keep(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    await app(scope, receive, keep)

    return status


async def _close_connection(
    scope: Scope, receive: Receive, status: int | None = None
) -> None:
    """Close the connection; ``status`` is what the client was never sent."""
    transport = _transport(scope)
    record_unanswered(scope, status)
    transport.close()
    # Return only once uvicorn has seen the connection go; returning earlier
    # makes it log "returned without starting response" and try a 500.
    try:
        async with asyncio.timeout(_DISCONNECT_WAIT_SECONDS):
            while (await receive())["type"] != "http.disconnect":
                pass
    except TimeoutError:
        return


def _truncating(scope: Scope, send: Send) -> Send:
    """Return a ``send`` that cuts a PDF answer at half its Content-Length."""
    limit: int | None = None
    sent = 0
    cut = False

    async def truncating_send(message: Message) -> None:
        nonlocal limit, sent, cut
        if cut:
            # The connection is closing; the rest of the stream goes nowhere.
            return
        if message["type"] == "http.response.start":
            headers = dict(message.get("headers", []))
            length = headers.get(b"content-length")
            is_pdf = headers.get(b"content-type", b"").startswith(b"application/pdf")
            if message["status"] == 200 and is_pdf and length is not None:
                limit = int(length) // 2
                request_info(scope)["fault"] = "truncate"
            await send(message)
            return
        if limit is None or message["type"] != "http.response.body":
            await send(message)
            return

        body: bytes = message.get("body", b"")
        if sent + len(body) < limit:
            sent += len(body)
            await send(message)
            return
        cut = True
        part = body[: limit - sent]
        await send({"type": "http.response.body", "body": part, "more_body": True})
        # close() (not abort()) sends what is buffered first, so the client
        # gets exactly half the promised bytes, then end of stream.
        _transport(scope).close()

    return truncating_send
