"""The daemon's HTTP side: the webhook receiver, ``/healthz`` and ``/metrics``.

One Starlette app, served by uvicorn inside the daemon's own event loop when
``http.listen`` is set. The daemon binds the socket itself before serving, so
a port in use is a clear configuration error (exit 78) instead of uvicorn's
``sys.exit``, and port 0 can be used (``HttpServer.port`` tells which one was
picked). uvicorn's signal handlers are left out: the daemon owns SIGTERM.

Routes:

- ``POST {webhook.path}`` (only when ``webhook.enabled``): a signed
  ``file_processed`` notification. Its body is limited to
  ``http.max_body_bytes`` before anything is hashed (413), its signature is
  checked over the raw body (401 when it fails, and nothing else happens),
  then its ``data.id`` makes the matching processing documents due for a
  poll (202). A notification is only a hint: the poller reads the record and
  marks it downloadable, the downloader fetches it. So a webhook racing the
  poller still downloads the file once, and a replayed delivery does no
  harm. Ids syncd does not know belong to other users of the company-wide
  webhook; they are acknowledged and ignored.
- ``GET /healthz``: JSON about the journal, the watcher, the API and the
  workers; 503 when a worker has not beaten for ``STUCK_WORKER_SECONDS`` or
  the journal cannot be written.
- ``GET /metrics``: the Prometheus text exposition format, version 0.0.4.

Any other method on these paths answers 405, any other path 404.

Accepted risk: the counters of uploads, downloads and failures are derived
from the journal rather than counted in memory, so they survive restarts and
the workers need no metrics code; they only fall if documents are removed
from the journal, which syncd does only for files that vanished before
being uploaded. The stage-duration histograms cover the newest
``DURATION_WINDOW`` delivered documents, which keeps a scrape cheap; past
that many, old documents leave the window and the buckets can shrink.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import json
import math
import socket
import sqlite3
import ssl
import time
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.errors import AuthError, ConfigError, PermanentError, TransientError
from syncd.logs import get_logger
from syncd.signatures import verify

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from syncd.api import ApiClient, Webhook
    from syncd.config import Settings
    from syncd.daemon import Daemon

log = get_logger(__name__)

# A runner beats at least once a second (``workers.IDLE_WAKE_SECONDS``); one
# that has been silent this long is stuck, not idle.
STUCK_WORKER_SECONDS = 30.0
# Enough to recognise a retried delivery: the service retries for a day, but
# a duplicate is only worth a DEBUG line, so a miss costs nothing.
SEEN_DELIVERIES = 1024
DURATION_WINDOW = 100_000
WEBHOOK_EVENT = "file_processed"
# From a second to a week: settling takes seconds, human fixers take days.
DURATION_BUCKETS = (
    1.0,
    5.0,
    15.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    4 * 3600.0,
    12 * 3600.0,
    86_400.0,
    3 * 86_400.0,
    7 * 86_400.0,
)
DURATION_PHASES = ("settle", "upload", "processing", "delivery")
WEBHOOK_RESULTS = ("accepted", "rejected", "ignored")
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# uvicorn waits this long for requests in flight when the daemon stops.
SHUTDOWN_GRACE_SECONDS = 5


class Listener:
    """The Starlette app and the state behind it, for one running daemon.

    Build it once the daemon has its context (``Daemon.run`` does this in
    ``_start_tasks``); every request reads the daemon's current settings, so
    a reloaded secret applies at once.
    """

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon
        self.webhooks: collections.Counter[str] = collections.Counter()
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        routes = [
            Route(HEALTH_PATH, self._health, methods=["GET"]),
            Route(METRICS_PATH, self._metrics, methods=["GET"]),
        ]
        webhook = daemon.settings.webhook
        if webhook.enabled:
            routes.append(Route(webhook.path, self._webhook, methods=["POST"]))
        self.app = Starlette(routes=routes)

    @property
    def _settings(self) -> Settings:
        context = self._daemon.context
        return context.settings if context is not None else self._daemon.settings

    # -- the webhook ------------------------------------------------------

    async def _webhook(self, request: Request) -> Response:
        settings = self._settings
        limit = settings.http.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return self._reject(request, 413, "too_large", declared_bytes=declared)

        try:
            body = await _read_limited(request, limit)
        except ClientDisconnect:
            return self._reject(request, 400, "client_disconnected")
        if body is None:
            return self._reject(request, 413, "too_large", limit=limit)

        secret = settings.webhook.secret
        if not secret:
            # The loader requires a secret with webhook.enabled; without one an
            # empty HMAC key would let anybody sign.
            return self._reject(request, 401, "no_secret_configured")
        now = self._daemon.clock()
        verdict = verify(settings.webhook.signature, secret, body, request.headers, now)
        if not verdict:
            assert verdict.failure is not None
            return self._reject(
                request,
                401,
                verdict.failure.value,
                header=verdict.header,
                detail=verdict.detail,
                delivery=verdict.delivery_id,
            )

        file_id, event, delivery_id = _parse_payload(body)
        delivery_id = verdict.delivery_id or delivery_id
        if file_id is None:
            # Signed, so the sender is genuine but the payload is not what
            # the contract assumes: worth a warning, since no hint can work.
            return self._reject(
                request, 400, "unreadable_payload", delivery=delivery_id, event=event
            )

        return await self._hint(file_id, event, delivery_id, now)

    async def _hint(
        self, file_id: str, event: str | None, delivery_id: str | None, now: float
    ) -> Response:
        context = self._daemon.context
        journal = self._daemon.journal
        assert context is not None and journal is not None
        # Only a usable notification counts as "webhooks arrive", which slows
        # the poller down to its safety-net interval.
        context.webhook_seen_at = now
        if delivery_id is not None and self._remember(delivery_id):
            log.debug("webhook.duplicate", delivery=delivery_id, remote_id=file_id)

        matched = await asyncio.to_thread(journal.hint_remote, file_id)
        if matched:
            self.webhooks["accepted"] += 1
            log.info(
                "webhook.hint",
                remote_id=file_id,
                documents=matched,
                delivery=delivery_id,
                webhook_event=event,
            )
        else:
            self.webhooks["ignored"] += 1
            log.debug("webhook.ignored", remote_id=file_id, delivery=delivery_id)

        return JSONResponse(
            {"status": "accepted", "documents": matched}, status_code=202
        )

    def _remember(self, delivery_id: str) -> bool:
        """Note a delivery id; tell whether it was seen before."""
        seen = delivery_id in self._seen
        self._seen[delivery_id] = None
        self._seen.move_to_end(delivery_id)
        while len(self._seen) > SEEN_DELIVERIES:
            self._seen.popitem(last=False)

        return seen

    def _reject(
        self, request: Request, status: int, reason: str, **fields: object
    ) -> Response:
        self.webhooks["rejected"] += 1
        client = request.client.host if request.client else None
        details = {key: value for key, value in fields.items() if value is not None}
        log.warning(
            "webhook.rejected", status=status, reason=reason, client=client, **details
        )

        return JSONResponse({"error": reason}, status_code=status)

    # -- health -----------------------------------------------------------

    async def _health(self, request: Request) -> Response:
        report = self.health()
        status = 200 if report["status"] == "ok" else 503

        return JSONResponse(report, status_code=status)

    def health(self) -> dict[str, Any]:
        """What ``/healthz`` answers, as plain data; ``status`` is ok or failing."""
        daemon = self._daemon
        problems: list[str] = []
        journal_open, writable = False, False
        stages: dict[str, int] = {}
        if daemon.journal is not None:
            try:
                stages = {s.value: n for s, n in daemon.journal.counts().items()}
                journal_open = True
                daemon.journal.put_meta("health", daemon.clock())
                writable = True
            except sqlite3.Error as exc:
                log.error("health.journal_failed", error=str(exc))
        if not writable:
            problems.append("journal not writable")

        now = time.monotonic()
        workers: dict[str, float] = {}
        for runner in daemon.runners:
            age = round(now - runner.last_beat, 1)
            workers[runner.worker.name] = max(age, workers.get(runner.worker.name, 0))
        stuck = sorted(n for n, age in workers.items() if age > STUCK_WORKER_SECONDS)
        problems.extend(f"worker {name} stuck" for name in stuck)

        watcher = daemon.watcher

        return {
            "status": "failing" if problems else "ok",
            "problems": problems,
            "journal": {"open": journal_open, "writable": writable},
            "watcher": {
                "alive": watcher is not None and watcher.alive,
                "mode": watcher.mode if watcher is not None else "none",
            },
            "api_reachable": daemon.api_reachable,
            "stages": stages,
            "workers": workers,
            "webhook_seen_at": (
                daemon.context.webhook_seen_at if daemon.context is not None else None
            ),
        }

    # -- metrics ----------------------------------------------------------

    async def _metrics(self, request: Request) -> Response:
        # The journal queries may read many rows; keep them off the loop. The
        # in-memory counters are read here, on the loop that changes them.
        journal_text = await asyncio.to_thread(self._journal_metrics)
        text = journal_text + self._memory_metrics()

        return Response(text, media_type=METRICS_CONTENT_TYPE)

    def _journal_metrics(self) -> str:
        journal = self._daemon.journal
        assert journal is not None
        out = Exposition()

        out.family("syncd_documents", "gauge", "Documents in the journal by stage.")
        for stage, count in journal.counts().items():
            out.sample("syncd_documents", count, stage=stage.value)

        totals = journal.totals()
        out.family("syncd_uploads_total", "counter", "Documents uploaded (not reused).")
        out.sample("syncd_uploads_total", totals["uploads"])
        out.family(
            "syncd_downloads_total", "counter", "Results downloaded to the outbox."
        )
        out.sample("syncd_downloads_total", totals["downloads"])

        out.family("syncd_failures_total", "counter", "Documents failed by reason.")
        for reason, count in sorted(journal.failure_reasons().items()):
            out.sample("syncd_failures_total", count, reason=reason)

        name = "syncd_stage_duration_seconds"
        out.family(
            name, "histogram", "Seconds delivered documents spent in each phase."
        )
        durations = journal.durations(DURATION_WINDOW)
        for phase in DURATION_PHASES:
            values = [item[phase] for item in durations if phase in item]
            out.histogram(name, values, DURATION_BUCKETS, stage=phase)

        return out.text()

    def _memory_metrics(self) -> str:
        context = self._daemon.context
        assert context is not None
        api: ApiClient = context.api
        out = Exposition()

        out.family("syncd_api_requests_total", "counter", "API requests by status.")
        for status, count in sorted(api.requests_by_status.items()):
            out.sample("syncd_api_requests_total", count, status=status)
        out.family("syncd_api_retries_total", "counter", "API calls retried.")
        out.sample("syncd_api_retries_total", api.retries)

        book = context.purchase_orders
        out.family(
            "syncd_purchase_order_pages_left",
            "gauge",
            "Pages left on each purchase order, as syncd counts them.",
        )
        for order in book.orders:
            out.sample(
                "syncd_purchase_order_pages_left",
                book.available(order.id),
                purchase_order=order.number or order.id,
            )

        out.family(
            "syncd_webhooks_received_total",
            "counter",
            "Webhook deliveries by result.",
        )
        for result in WEBHOOK_RESULTS:
            out.sample(
                "syncd_webhooks_received_total", self.webhooks[result], result=result
            )

        return out.text()


def _parse_payload(body: bytes) -> tuple[str | None, str | None, str | None]:
    """``(data.id, event, id)`` of a notification; None for what is missing."""
    try:
        payload = json.loads(body)
    except ValueError:  # also UnicodeDecodeError, a ValueError
        return None, None, None
    if not isinstance(payload, dict):
        return None, None, None

    event = payload.get("event")
    delivery = payload.get("id")
    data = payload.get("data")
    file_id = data.get("id") if isinstance(data, dict) else None
    # bool is an int; an id of true is no id.
    if isinstance(file_id, bool) or not isinstance(file_id, str | int):
        file_id = None

    return (
        str(file_id) if file_id not in (None, "") else None,
        event if isinstance(event, str) else None,
        delivery if isinstance(delivery, str) and delivery else None,
    )


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it grows past ``limit`` bytes.

    Counting while reading catches bodies without a Content-Length (chunked)
    and bodies longer than they declared.
    """
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)

    return b"".join(chunks)


class Exposition:
    """Prometheus text exposition format (version 0.0.4), written by hand.

    Families are declared with ``family`` and then get their samples; label
    values and help texts are escaped as the format asks
    (prometheus.io/docs/instrumenting/exposition_formats).
    """

    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        help_text = help_text.replace("\\", "\\\\").replace("\n", "\\n")
        self._lines.append(f"# HELP {name} {help_text}")
        self._lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, /, **labels: str) -> None:
        self._lines.append(f"{name}{_labels(labels)} {_number(value)}")

    def histogram(
        self,
        name: str,
        values: Iterable[float],
        buckets: Iterable[float],
        /,
        **labels: str,
    ) -> None:
        observed = sorted(values)
        for bound in (*buckets, math.inf):
            count = sum(1 for value in observed if value <= bound)
            self.sample(f"{name}_bucket", count, **labels, le=_number(bound))
        self.sample(f"{name}_sum", sum(observed), **labels)
        self.sample(f"{name}_count", len(observed), **labels)

    def text(self) -> str:
        return "".join(line + "\n" for line in self._lines)


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    pairs = ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items())

    return "{" + pairs + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))

    return repr(float(value))


# -- serving --------------------------------------------------------------


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handlers: the daemon owns SIGTERM.

    uvicorn replaces SIGINT and SIGTERM with its own handlers while it
    serves, and raises the signal again when it ends; inside the daemon that
    would bypass the daemon's graceful stop.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    """The listening socket and the uvicorn server that serves ``Listener``.

    ``open_server`` makes one; ``serve`` runs until the daemon stops.
    """

    def __init__(self, listener: Listener, sock: socket.socket, server: _Server):
        self.listener = listener
        self._socket = sock
        self._server = server

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    @property
    def scheme(self) -> str:
        return "https" if self._server.config.is_ssl else "http"

    async def serve(self, stopping: asyncio.Event) -> None:
        """Serve requests until ``stopping`` is set, then close the socket."""
        serving = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        stopper = asyncio.create_task(stopping.wait())
        await asyncio.wait({serving, stopper}, return_when=asyncio.FIRST_COMPLETED)
        self._server.should_exit = True
        stopper.cancel()
        try:
            await serving
        finally:
            self._socket.close()
        log.info("http.stopped")

    def close(self) -> None:
        """Close the socket of a server that never served."""
        self._socket.close()


def open_server(daemon: Daemon) -> HttpServer:
    """Bind ``http.listen`` and prepare the app for ``daemon``.

    Raises:
        ConfigError: the address cannot be bound (in use, not on this
            machine, a privileged port), the TLS files cannot be loaded, or
            the webhook path collides with a built-in route.
    """
    settings = daemon.settings
    listen = settings.http.listen
    assert listen is not None
    if settings.webhook.enabled and settings.webhook.path in (
        HEALTH_PATH,
        METRICS_PATH,
    ):
        raise ConfigError(
            [f"webhook.path: {settings.webhook.path} is taken by syncd itself"]
        )

    listener = Listener(daemon)
    http = settings.http
    config = uvicorn.Config(
        listener.app,
        lifespan="off",
        access_log=False,
        # uvicorn's default would reconfigure the logging module.
        log_config=None,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        ssl_certfile=str(http.tls_cert_file) if http.tls_cert_file else None,
        ssl_keyfile=str(http.tls_key_file) if http.tls_key_file else None,
    )
    try:
        config.load()
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        message = f"http.tls_cert_file: cannot load the certificate and key: {reason}"
        log.error("http.tls_failed", error=reason)
        raise ConfigError([message]) from exc

    sock = _bind(listen)
    server = HttpServer(listener, sock, _Server(config))
    log.info(
        "http.listening",
        listen=listen,
        port=server.port,
        scheme=server.scheme,
        webhook=settings.webhook.path if settings.webhook.enabled else None,
    )

    return server


def _bind(listen: str) -> socket.socket:
    host, _, port_text = listen.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    try:
        # The first address only: "localhost" may resolve to both families,
        # and a listener on one of them is what the setting means.
        family, _, _, _, address = socket.getaddrinfo(
            host, int(port_text), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.create_server(address, family=family)
    except OSError as exc:
        reason = _bind_reason(exc)
        log.error("http.bind_failed", listen=listen, reason=reason)
        raise ConfigError(
            [f"http.listen: cannot listen on {listen}: {reason}"]
        ) from exc
    sock.setblocking(False)

    return sock


def _bind_reason(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return "cannot resolve the host name"

    return {
        errno.EADDRINUSE: "address in use",
        errno.EADDRNOTAVAIL: "address not available on this machine",
        errno.EACCES: "permission denied (ports below 1024 need privileges)",
    }.get(exc.errno or 0, exc.strerror or type(exc).__name__)


# -- registration ---------------------------------------------------------


async def register_webhook(api: ApiClient, url: str) -> tuple[Webhook, bool]:
    """Make sure a ``file_processed`` webhook for ``url`` exists.

    Returns:
        The webhook and whether it was created now (False: it existed).
    """
    for hook in await api.webhooks():
        if hook.url == url and hook.event == WEBHOOK_EVENT:
            return hook, False

    hooks = await api.create_webhook(url)
    for hook in hooks:
        if hook.url == url and hook.event == WEBHOOK_EVENT:
            return hook, True
    raise TransientError(f"the service did not list the new webhook for {url}")


async def register_at_start(api: ApiClient, url: str) -> None:
    """Register ``url`` for the daemon; a failure is logged, never fatal.

    Polling still finds every completed document, only later, so a service
    that refuses or cannot be reached costs latency, not documents.
    """
    try:
        hook, created = await register_webhook(api, url)
    except AuthError as exc:
        log.error(
            "webhook.register_failed",
            url=url,
            error=str(exc),
            hint="managing webhooks needs a company admin's key",
        )
        return
    except (TransientError, PermanentError) as exc:
        log.error("webhook.register_failed", url=url, error=str(exc))
        return

    log.info(
        "webhook.registered" if created else "webhook.already_registered",
        url=url,
        webhook_id=hook.id,
    )
