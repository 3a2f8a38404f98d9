"""The record of every request the simulator served or sent.

Each entry is a dict::

    {"t": epoch seconds at arrival, "origin": "api" | "storage" | "webhook-out",
     "method", "path", "status" (None when the connection was dropped or a
     delivery got no answer; for a lost answer, the one the client was not
     sent), "file_id", "idempotency_key", "replay", "leak",
     "fault": None | "500" (or another ``error_status``) | "429" | "drop" |
     "lost" | "truncate" | "spike"}

Webhook deliveries add ``delivery_id`` and ``attempt``. A request to the
storage origin that carries ``x-api-key`` is a leak: the contract forbids
sending the key anywhere but the API host. It is still answered normally, so
only the log tells.

Requests to the ``/_sim`` control surface are not recorded: a benchmark that
polls them would otherwise drown the traffic it measures.

The log keeps the newest ``max_entries`` in memory; ``path`` adds every entry
to a JSON-lines file as well.
"""

from __future__ import annotations

import collections
import json
import re
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTROL_PREFIX = "/_sim"
INFO_KEY = "sim.log"
_RECORD_NOW = "record_now"

# Record ids are 24 hex digits; the signed storage paths end in one.
_ID_SEGMENT = re.compile(r"/[0-9a-f]{24}(?=/|$)")


def route_of(path: str) -> str:
    """Return ``path`` with record ids replaced by ``{id}``, for counting."""
    return _ID_SEGMENT.sub("/{id}", path)


class RequestLog:
    """Thread-safe, bounded, in-order log of requests."""

    def __init__(self, max_entries: int, path: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._entries: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=max_entries
        )
        self._total = 0
        self._leaks = 0
        self._counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._file = path.open("a", encoding="utf-8") if path else None

    def record(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, separators=(",", ":")) if self._file else None
        with self._lock:
            self._entries.append(entry)
            self._total += 1
            if entry.get("leak"):
                self._leaks += 1
            origin = entry["origin"]
            route = "{url}" if origin == "webhook-out" else route_of(entry["path"])
            key = f"{origin} {entry['method']} {route}"
            self._counts[(key, str(entry["status"]))] += 1
            if self._file is not None:
                self._file.write(f"{line}\n")
                self._file.flush()

    def entries(self, since: int = 0) -> list[dict[str, Any]]:
        """Return copies of the entries whose position in the log is >= since."""
        with self._lock:
            first = self._total - len(self._entries)
            skip = max(since - first, 0)
            chosen = list(self._entries)[skip:]
            return [dict(entry) for entry in chosen]

    def total(self) -> int:
        with self._lock:
            return self._total

    def leaks(self) -> int:
        with self._lock:
            return self._leaks

    def counts(self) -> dict[str, dict[str, int]]:
        """Return counts keyed by ``"origin METHOD route"``, then by status."""
        result: dict[str, dict[str, int]] = {}
        with self._lock:
            for (key, status), count in self._counts.items():
                result.setdefault(key, {})[status] = count
        return result

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def record_unanswered(scope: Scope, status: int | None = None) -> None:
    """Log the current request now as unanswered, before its connection goes.

    A client that sees its connection dropped must already find the request
    in the log. ``status`` is the answer it was not sent, if the request was
    carried out; None if it was not.
    """
    record = request_info(scope).get(_RECORD_NOW)
    if record is not None:
        record(status)


def header(scope: Scope, name: bytes) -> bytes | None:
    """Return the request header ``name`` (lower case), the last if repeated.

    Looking through the few headers of a request is cheaper than building a
    dict of them for every request.
    """
    found = None
    for key, value in scope["headers"]:
        if key == name:
            found = value

    return found


def request_info(scope: Scope) -> dict[str, Any]:
    """Return the log fields a handler may fill in for the current request."""
    info = scope.get(INFO_KEY)
    if info is None:
        info = {}
        scope[INFO_KEY] = info

    return info


class LogMiddleware:
    """Record each request of one origin once its answer is sent (or not)."""

    def __init__(self, app: ASGIApp, log: RequestLog, origin: str) -> None:
        self._app = app
        self._log = log
        self._origin = origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self._app(scope, receive, send)
            return

        info = request_info(scope)
        info.update(file_id=None, replay=False, fault=None)
        started = time.time()
        recorded = False

        def record(status: int | None) -> None:
            nonlocal recorded
            if recorded:
                return
            recorded = True
            if info.get("fault") == "drop" or info.get("client_gone"):
                status = None
            key = header(scope, b"idempotency-key")
            self._log.record(
                {
                    "t": started,
                    "origin": self._origin,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "file_id": info.get("file_id"),
                    "idempotency_key": key.decode("latin-1") if key else None,
                    "replay": bool(info.get("replay")),
                    "leak": self._origin == "storage"
                    and header(scope, b"x-api-key") is not None,
                    "fault": info.get("fault"),
                }
            )

        info[_RECORD_NOW] = record

        async def send_and_record(message: Message) -> None:
            # Record before the client can see the answer, so that a test
            # that has its response in hand also finds it in the log.
            if message["type"] == "http.response.start" and not recorded:
                record(int(message["status"]))
            await send(message)

        try:
            await self._app(scope, receive, send_and_record)
        finally:
            if not recorded:
                # Dropped on purpose, or the app raised before answering
                # (uvicorn then answers 500).
                record(None if info.get("fault") == "drop" else 500)
