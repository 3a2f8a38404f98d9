"""The AccessibleDocs API client: the only module that speaks HTTP to it.

The vendor documents only part of its API. Every point syncd relies on that
is *not* documented is named below as an assumption, in one place, so that an
operator with an account can check them (the README lists the same):

- ``ASSUMED_BASE_URL``: the API host is not public; it is a setting.
- ``ASSUMED_FILE_PATH``: ``GET /v1/external/user/files/{id}`` reads one file,
  and a record still waiting for its bytes carries a fresh ``uploadUrl``.
- ``ASSUMED_LIST``: ``GET /v1/external/user/files`` lists the caller's files
  with ``search``, ``state``, ``page`` and ``limit``, newest ``updatedAt``
  first, answering ``{"items": [...]}``.
- ``ASSUMED_DOWNLOAD_PATH``: ``GET /v1/external/user/files/{id}/download``
  answers with the PDF, with JSON ``{"url": ...}``, or with a redirect; 409
  before the file is completed.
- ``ASSUMED_STATES``: ``validation``, ``in_progress``, ``completed``,
  ``failed``; ``refunded: true`` also means failed; unknown states mean
  "still working".
- ``ASSUMED_UPLOAD``: the upload URL takes one ``PUT`` of the raw bytes with
  an exact ``Content-Length``, no key, and expires (403).
- ``ASSUMED_IDEMPOTENCY``: an ``Idempotency-Key`` header on create *may* be
  honoured; syncd never relies on it alone.
- ``ASSUMED_PURCHASE_ORDER_FIELDS``: each PO has ``id``, ``number``,
  ``status``, ``pages``, ``usedPages``, ``availablePages``; the list may be a
  bare array or wrapped in ``{"items": [...]}``.
- ``ASSUMED_ERRORS``: 429 carries ``Retry-After``; 408, 429 and 5xx are
  transient; error bodies carry a ``message``; a create answered with an
  error made no record (only a lost answer leaves that open).

Documented, and relied on as such: the ``x-api-key`` header, the create body
and the file object's field names, upload URLs on another host (so the key is
never sent anywhere but ``api.base_url``), the purchase-order list path and
the webhook paths.

Errors are mapped at this boundary: httpx errors and unexpected statuses
become ``TransientError``, ``PermanentError`` or ``AuthError``.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import email.utils
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import httpx
import tenacity

from syncd import __version__
from syncd.errors import (
    AuthError,
    ConnectionLost,
    PermanentError,
    RateLimited,
    TransientError,
)
from syncd.logs import get_logger
from syncd.transport import LeanTransport

if TYPE_CHECKING:
    from syncd.config import ApiSettings, UploadSettings

log = get_logger(__name__)

FILES_PATH = "/v1/external/user/files"  # documented (create)
ASSUMED_FILE_PATH = "/v1/external/user/files/{id}"
ASSUMED_LIST = "/v1/external/user/files"
ASSUMED_DOWNLOAD_PATH = "/v1/external/user/files/{id}/download"
PURCHASE_ORDERS_PATH = "/v1/user/purchase-orders"  # documented
WEBHOOKS_PATH = "/v1/admin/company/webhooks"  # documented

ASSUMED_STATES = {
    "completed": "completed",
    "failed": "failed",
    "validation": "working",
    "in_progress": "working",
}
ASSUMED_LIST_PAGE_SIZE = 100  # the assumed maximum ``limit``

# Retry policy for one call: a few quick tries, for a dropped connection or
# a passing 5xx. Longer waits (a Retry-After over a second, an outage) are the
# worker's: it reschedules the document and frees its slot for others, so a
# flaky service costs time per document, not throughput, and a long outage
# costs time, not documents.
RETRY_ATTEMPTS = 4
RETRY_MAX_WAIT_SECONDS = 0.5
_TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_CHUNK = 1024 * 1024
MAX_STORAGE_REDIRECTS = 5

Outcome = Literal["completed", "failed", "working"]
# Takes the body's chunks and the length the server promised; returns the
# number of bytes it kept. It must discard everything when it raises.
Sink = Callable[[AsyncIterator[bytes], int | None], Awaitable[int]]
_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """The parts of the service's file object that syncd uses."""

    id: str
    name: str
    size: int
    state: str
    refunded: bool
    page_count: int
    upload_url: str | None
    created_at: str
    updated_at: str
    comments: str

    @property
    def outcome(self) -> Outcome:
        if self.refunded:
            return "failed"
        return ASSUMED_STATES.get(self.state, "working")  # type: ignore[return-value]

    @property
    def known_state(self) -> bool:
        return self.state in ASSUMED_STATES

    @classmethod
    def parse(cls, data: Any) -> RemoteFile:
        if not isinstance(data, dict) or not data.get("id"):
            raise TransientError(f"the service answered an unreadable file: {data!r}")
        comments = data.get("comments") or ""
        if isinstance(comments, list):
            comments = "; ".join(str(item) for item in comments)
        return cls(
            id=str(data["id"]),
            name=str(data.get("name", "")),
            size=int(data.get("size") or 0),
            state=str(data.get("state", "")),
            refunded=bool(data.get("refunded", False)),
            page_count=int(data.get("pageCount") or 0),
            upload_url=data.get("uploadUrl") or None,
            created_at=str(data.get("createdAt", "")),
            updated_at=str(data.get("updatedAt", "")),
            comments=str(comments),
        )


@dataclasses.dataclass(frozen=True)
class PurchaseOrder:
    id: str
    number: str
    status: str
    pages: int
    used_pages: int
    available_pages: int

    @property
    def usable(self) -> bool:
        return self.status == "approved" and self.available_pages > 0

    def matches(self, reference: str) -> bool:
        return reference in (self.id, self.number)

    @classmethod
    def parse(cls, data: Any) -> PurchaseOrder:
        pages = int(data.get("pages") or 0)
        used = int(data.get("usedPages") or 0)
        available = data.get("availablePages")
        return cls(
            id=str(data["id"]),
            number=str(data.get("number", "")),
            status=str(data.get("status", "")),
            pages=pages,
            used_pages=used,
            available_pages=int(available if available is not None else pages - used),
        )


@dataclasses.dataclass(frozen=True)
class Webhook:
    id: str
    event: str
    url: str


class RateLimiter:
    """At most ``rate`` requests in any one second, shared by every API request.

    Use it to stay under the service's limits on purpose instead of learning
    them from 429s; ``rate`` of None or 0 turns it off. It is a sliding
    window, not an even spacing: a batch of polls that fits within the rate
    leaves at once, in one wakeup, and the next waits only when the last
    ``rate`` requests all left within the past second. A fractional rate
    rounds down (2.5 allows two a second); a rate below one a second allows
    one request per ``1 / rate`` seconds.

    Routine polls are background requests: they queue among themselves and
    only one of them at a time waits beside the others, so that when the
    limit is reached thousands of documents being polled do not starve the
    uploads and downloads of new ones.
    """

    def __init__(
        self,
        rate: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._burst = max(1, int(rate)) if rate else 0
        self._window = max(1.0, 1.0 / rate) if rate else 0.0
        self._clock = clock
        self._sleep = sleep
        # When each of the last ``burst`` requests left.
        self._sent: collections.deque[float] = collections.deque(maxlen=self._burst)
        self._lock = asyncio.Lock()
        self._background = asyncio.Lock()

    async def acquire(self, background: bool = False) -> None:
        if not self._burst:
            return
        if background:
            async with self._background:
                await self._take_turn()
        else:
            await self._take_turn()

    async def _take_turn(self) -> None:
        # Waiting under the lock keeps the order of arrival.
        async with self._lock:
            if len(self._sent) == self._burst:
                wait = self._sent[0] + self._window - self._clock()
                if wait > 0:
                    await self._sleep(wait)
            self._sent.append(self._clock())


class UploadConflict(PermanentError):
    """The record already holds different bytes (409 on the upload URL)."""


class UploadUrlExpired(TransientError):
    """The pre-signed URL expired (403 from storage): read the record again."""


class ApiClient:
    """Async client for the AccessibleDocs API and its storage host.

    The key goes only where it belongs: ``_api_request`` is the one place
    that adds ``x-api-key``, and it builds URLs under ``api.base_url`` only.
    Upload and download URLs live on other hosts; ``_storage_request``
    builds those, without the key. Redirects are followed for storage URLs
    only, and never with the key.
    """

    def __init__(
        self,
        settings: ApiSettings,
        *,
        retry_attempts: int = RETRY_ATTEMPTS,
        max_wait: float = RETRY_MAX_WAIT_SECONDS,
    ) -> None:
        user_agent = f"syncd/{__version__}"
        self._base_url = settings.base_url.rstrip("/")
        self._api_headers = {"x-api-key": settings.key, "user-agent": user_agent}
        self._storage_headers = {"user-agent": user_agent}
        self._timeout = httpx.Timeout(settings.timeout_seconds).as_dict()
        self._wire = _Wire()
        self._limiter = RateLimiter(settings.max_requests_per_second)
        self._attempts = retry_attempts
        self._max_wait = max_wait
        self.requests_by_status: collections.Counter[str] = collections.Counter()
        self.retries = 0

    async def aclose(self) -> None:
        await self._wire.aclose()

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- files ------------------------------------------------------------

    async def create_file(
        self,
        *,
        name: str,
        size: int,
        upload: UploadSettings,
        purchase_order_id: str | None,
        idempotency_key: str,
    ) -> RemoteFile:
        """Create a file record; its ``upload_url`` takes the bytes.

        An error answer (429, 5xx) is retried here with the same key: the
        service answered, so it made nothing. A lost answer is not: a replay
        might create a second record on a server that ignores
        ``Idempotency-Key``, so ``ConnectionLost`` goes to the caller, who
        looks for the record first (``find_files``) and then asks again with
        the same key.
        """
        body: dict[str, Any] = {
            "name": name,
            "size": size,
            "mime": "application/pdf",
            "excludeWatermark": upload.exclude_watermark,
        }
        if upload.comment:
            body["comment"] = upload.comment
        if upload.tags:
            body["tags"] = list(upload.tags)
        if purchase_order_id:
            body["purchaseOrderId"] = purchase_order_id
        if upload.notify_email:
            body["additionalNotification"] = {"email": upload.notify_email}
        headers = {"Idempotency-Key": idempotency_key}
        response = await self._call(
            "POST", FILES_PATH, json=body, headers=headers, replay_lost=False
        )

        return RemoteFile.parse(response.json())

    async def get_file(
        self, file_id: str, background: bool = False
    ) -> RemoteFile | None:
        """The file record, or None when the service does not know the id.

        ``background`` for a routine poll: it yields to other requests when
        the rate limit is reached (see :class:`RateLimiter`).
        """
        path = ASSUMED_FILE_PATH.format(id=file_id)
        response = await self._call("GET", path, allow={404}, background=background)
        if response.status_code == 404:
            return None

        return RemoteFile.parse(response.json())

    async def find_files(self, name: str, max_pages: int = 5) -> list[RemoteFile]:
        """Recent records whose name contains ``name``, newest first."""
        found: list[RemoteFile] = []
        for page in range(1, max_pages + 1):
            params = {"search": name, "page": page, "limit": ASSUMED_LIST_PAGE_SIZE}
            response = await self._call("GET", ASSUMED_LIST, params=params)
            data = response.json()
            items = data.get("items", []) if isinstance(data, dict) else data
            found.extend(RemoteFile.parse(item) for item in items)
            if len(items) < ASSUMED_LIST_PAGE_SIZE:
                break

        return found

    async def changed_since(
        self, state: str, since: float | None, max_pages: int
    ) -> list[RemoteFile]:
        """Records in ``state`` updated after ``since`` (seconds), newest first.

        Reads pages until one reaches back to ``since``, or ``max_pages``.
        Records in other states are dropped here, in case the service
        ignores the filter.
        """
        found: list[RemoteFile] = []
        for page in range(1, max_pages + 1):
            params = {"state": state, "page": page, "limit": ASSUMED_LIST_PAGE_SIZE}
            response = await self._call("GET", ASSUMED_LIST, params=params)
            data = response.json()
            items = data.get("items", []) if isinstance(data, dict) else data
            records = [RemoteFile.parse(item) for item in items]
            found.extend(record for record in records if record.state == state)
            if len(items) < ASSUMED_LIST_PAGE_SIZE:
                break
            if since is not None and epoch(records[-1].updated_at) <= since:
                break

        return found

    async def upload(
        self, url: str, size: int, chunks: Callable[[], AsyncIterator[bytes]]
    ) -> None:
        """PUT the bytes to a pre-signed URL, streamed, with an exact length.

        ``chunks`` makes a fresh stream for each attempt. Storage refusing a
        chunked body without a length (411) is why the length is explicit.

        Raises:
            UploadUrlExpired: the URL is no longer valid; fetch a fresh one.
            UploadConflict: the record already has different bytes.
        """
        headers = {"Content-Type": "application/pdf", "Content-Length": str(size)}

        async def attempt() -> None:
            request = self._storage_request(
                "PUT", url, content=chunks(), headers=headers
            )
            response = await self._send(request, stream=False)
            if response.status_code == 403:
                raise UploadUrlExpired("the upload URL expired or was refused (403)")
            if response.status_code == 409:
                raise UploadConflict("upload_conflict", _message(response))
            _raise_for_status(response)

        await self._retrying(attempt)

    async def download(
        self,
        file_id: str,
        sink: Sink,
    ) -> int:
        """Stream the processed PDF into ``sink``; return the bytes written.

        Accepts the three answers the contract allows: the PDF itself, JSON
        with a signed ``url``, or a redirect to one. Signed URLs are fetched
        without the key. A body shorter than its ``Content-Length`` is a
        transient error: ``sink`` gets the promised length to check.
        """
        path = ASSUMED_DOWNLOAD_PATH.format(id=file_id)

        async def attempt() -> int:
            await self._limiter.acquire()
            request = self._api_request("GET", path)
            response = await self._send(request)
            if response.is_redirect:
                await response.aclose()
                location = response.headers.get("location", "")
                return await self._fetch_signed(str(request.url.join(location)), sink)
            try:
                if response.status_code >= 400:
                    await response.aread()
                _raise_for_status(response, not_ready_is_transient=True)
                content_type = response.headers.get("content-type", "")
                if content_type.startswith("application/json"):
                    await response.aread()
                    url = response.json().get("url")
                    if not url:
                        raise TransientError("download answer names no url")
                    return await self._fetch_signed(url, sink)
                return await _drain(response, sink)
            finally:
                await response.aclose()

        return await self._retrying(attempt)

    async def _fetch_signed(self, url: str, sink: Sink) -> int:
        request = self._storage_request("GET", url)
        for _ in range(MAX_STORAGE_REDIRECTS):
            response = await self._send(request)
            if not response.is_redirect:
                break
            await response.aclose()
            location = request.url.join(response.headers["location"])
            request = self._storage_request("GET", str(location))
        else:
            raise TransientError(
                f"storage redirected more than {MAX_STORAGE_REDIRECTS} times"
            )
        try:
            if response.status_code >= 400:
                await response.aread()
            _raise_for_status(response)
            return await _drain(response, sink)
        finally:
            await response.aclose()

    # -- purchase orders and webhooks -------------------------------------

    async def purchase_orders(self) -> list[PurchaseOrder]:
        response = await self._call("GET", PURCHASE_ORDERS_PATH)
        data = response.json()
        items = data.get("items", []) if isinstance(data, dict) else data
        return [PurchaseOrder.parse(item) for item in items]

    async def webhooks(self) -> list[Webhook]:
        response = await self._call("GET", WEBHOOKS_PATH)
        return _webhooks(response.json())

    async def create_webhook(self, url: str) -> list[Webhook]:
        body = {"event": "file_processed", "url": url}
        response = await self._call("POST", WEBHOOKS_PATH, json=body, replay_lost=False)
        return _webhooks(response.json())

    async def delete_webhook(self, webhook_id: str) -> None:
        await self._call("DELETE", f"{WEBHOOKS_PATH}/{webhook_id}")

    # -- plumbing ---------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        replay_lost: bool = True,
        allow: frozenset[int] | set[int] = frozenset(),
        background: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """One API request, retried; ``replay_lost`` False for one that creates."""

        async def attempt() -> httpx.Response:
            await self._limiter.acquire(background)
            request = self._api_request(method, path, **kwargs)
            response = await self._send(request, stream=False)
            if response.status_code not in allow:
                _raise_for_status(response)
            return response

        return await self._retrying(attempt, replay_lost=replay_lost)

    def _api_request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Request:
        """A request to the API: the only kind that carries the key."""
        return httpx.Request(
            method,
            self._base_url + path,
            params=params,
            json=json,
            headers={**self._api_headers, **headers} if headers else self._api_headers,
            extensions={"timeout": self._timeout},
        )

    def _storage_request(
        self,
        method: str,
        url: str,
        *,
        content: AsyncIterator[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Request:
        """A request to a pre-signed storage URL, which never carries the key."""
        return httpx.Request(
            method,
            url,
            content=content,
            headers={**self._storage_headers, **(headers or {})},
            extensions={"timeout": self._timeout},
        )

    async def _send(
        self, request: httpx.Request, stream: bool = True
    ) -> httpx.Response:
        try:
            response = await self._wire.send(request)
            if not stream:
                try:
                    await response.aread()
                finally:
                    await response.aclose()
        except httpx.TimeoutException as exc:
            raise ConnectionLost(
                f"{request.method} {request.url.path}: timed out"
            ) from exc
        except httpx.TransportError as exc:
            raise ConnectionLost(
                f"{request.method} {request.url.path}: connection failed ({exc!r})"
            ) from exc
        self.requests_by_status[str(response.status_code)] += 1

        return response

    async def _retrying(
        self, attempt: Callable[[], Awaitable[_T]], replay_lost: bool = True
    ) -> _T:
        def retry_here(error: BaseException) -> bool:
            if isinstance(error, ConnectionLost) and not replay_lost:
                return False
            return self._retry_here(error)

        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(self._attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception(retry_here),
            before_sleep=self._log_retry,
            reraise=True,
        )
        return await retrying(attempt)

    def _retry_here(self, error: BaseException) -> bool:
        """Whether ``error`` is worth another try within this call."""
        if not isinstance(error, TransientError):
            return False
        # An expired upload URL stays expired: asking it again only waits;
        # the caller reads the record for a fresh one instead.
        if isinstance(error, UploadUrlExpired):
            return False
        # A server that asks for a longer pause gets it from the worker,
        # which does not hold a slot meanwhile.
        return error.retry_after is None or error.retry_after <= self._max_wait

    def _wait(self, state: tenacity.RetryCallState) -> float:
        jittered = tenacity.wait_random_exponential(
            multiplier=self._max_wait / 4, max=self._max_wait
        )
        wait = jittered(state)
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TransientError) and error.retry_after is not None:
            wait = max(wait, error.retry_after)

        return wait

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        self.retries += 1
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "api.retry",
            attempt=state.attempt_number,
            wait=round(wait, 2),
            error=str(error),
        )


def epoch(timestamp: str) -> float:
    """Seconds since the epoch of a time the service wrote; 0.0 if unreadable."""
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


class _Wire:
    """Sends a built request; answers with the response, its body not yet read.

    syncd's own transport carries the requests, except where the environment
    configures a proxy: then an httpx client does, since it is what reads
    those settings. Neither follows redirects.
    """

    def __init__(self) -> None:
        self._transport: LeanTransport | None = None
        self._client: httpx.AsyncClient | None = None
        if urllib.request.getproxies():
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
            self._client = httpx.AsyncClient(limits=limits, follow_redirects=False)
        else:
            self._transport = LeanTransport()

    async def send(self, request: httpx.Request) -> httpx.Response:
        if self._client is not None:
            return await self._client.send(request, stream=True)
        assert self._transport is not None
        response = await self._transport.handle_async_request(request)
        response.request = request
        return response

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        if self._transport is not None:
            await self._transport.aclose()


async def _drain(response: httpx.Response, sink: Sink) -> int:
    expected = response.headers.get("content-length")

    async def chunks() -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_bytes(_CHUNK):
                yield chunk
        except httpx.TransportError as exc:
            raise TransientError(f"download interrupted: {exc!r}") from exc

    return await sink(chunks(), int(expected) if expected is not None else None)


def _webhooks(data: Any) -> list[Webhook]:
    items = data if isinstance(data, list) else data.get("items", [data])
    return [
        Webhook(id=str(item["id"]), event=str(item["event"]), url=str(item["url"]))
        for item in items
    ]


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])

    return response.reason_phrase


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from ``Retry-After`` (RFC 9110, 10.2.3): seconds or a date."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None

    return max(0.0, when.timestamp() - time.time())


def _raise_for_status(
    response: httpx.Response, *, not_ready_is_transient: bool = False
) -> None:
    status = response.status_code
    if status < 400:
        return
    where = f"{response.request.method} {response.request.url.path}"
    if status == 429:
        raise RateLimited(f"{where}: rate limited (429)", _retry_after(response))
    if status in _TRANSIENT_STATUSES:
        raise TransientError(f"{where}: {status}", _retry_after(response))
    if status == 409 and not_ready_is_transient:
        raise TransientError(f"{where}: not ready yet (409)")
    _raise_permanent(status, where, _message(response))


def _raise_permanent(status: int, where: str, message: str) -> None:
    if status == 401:
        raise AuthError(f"the API refused the key (401): {message}")
    if status == 403:
        raise AuthError(f"{where}: this key may not do that (403): {message}")
    raise PermanentError(_reason(status), f"{message} ({status} on {where})")


def _reason(status: int) -> str:
    return {
        400: "rejected",
        404: "not_found",
        409: "conflict",
        413: "too_large",
        415: "not_pdf",
        422: "purchase_order_refused",
    }.get(status, "rejected")
