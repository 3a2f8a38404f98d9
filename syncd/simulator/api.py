"""The API origin: files, purchase orders and webhooks behind ``x-api-key``.

Implements these sections of the contract:

- "Hosts and authentication": every ``/v1`` path needs ``x-api-key``
  (401 without the right one); admin paths (``/v1/admin/...``,
  ``/v1/external/admin/...``) answer 403 to a non-admin key.
- "Create a file record": validation in the order 400 (malformed field),
  415 (not a PDF by mime or name), 413 (over ``max_upload_bytes``), 422
  (purchase order unusable, named by id or number). ``Idempotency-Key`` returns
  the first record again and a key reused with another body is 422, as
  draft-ietf-httpapi-idempotency-key-header advises.
- "Read one file" and "List files": records waiting for bytes carry a fresh
  ``uploadUrl``. ``limit`` above 100 is lowered to 100 (the answer says which
  limit applied); an unknown ``state`` filter is 400.
- "Download the processed file": 409 before ``completed``; then the PDF, a
  JSON ``{"url"}`` or a 307 redirect, as ``download_mode`` says.
- "Purchase orders": the contract does not say whether the list is wrapped;
  the simulator answers a bare JSON array.
- "Webhooks": create answers 201 with the array of all the company's
  webhooks (the new one last); delete answers 200 with the remaining ones.
  Deviation: besides ``https://`` URLs, ``http://`` URLs on ``127.0.0.1``,
  ``localhost`` or ``[::1]`` are accepted, so tests can receive deliveries
  without TLS.
- ``GET /v1/external/admin/company/files`` takes ``search``, ``tags`` and
  ``users`` (comma-separated) plus the list parameters above.
"""

from __future__ import annotations

import hmac
import json
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from syncd.simulator.replies import ApiError, error_response
from syncd.simulator.requestlog import header, request_info
from syncd.simulator.state import OWNER, STATES, CreateRequest, FileView
from syncd.simulator.storage import pdf_response

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.types import ASGIApp, Receive, Scope, Send

    from syncd.simulator.faults import FaultController
    from syncd.simulator.options import SimulatorOptions
    from syncd.simulator.state import Store
    from syncd.simulator.storage import UrlSigner

_MAX_JSON_BYTES = 1024 * 1024
_MAX_LIMIT = 100
_DEFAULT_LIMIT = 20
_ADMIN_PREFIXES = ("/v1/admin/", "/v1/external/admin/")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class AuthMiddleware:
    """Check ``x-api-key`` on ``/v1`` paths and refuse admin paths to non-admins."""

    def __init__(self, app: ASGIApp, options: SimulatorOptions) -> None:
        self._app = app
        self._key = options.api_key.encode()
        self._admin = options.admin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/v1/"):
            await self._app(scope, receive, send)
            return

        key = header(scope, b"x-api-key")
        refusal = None
        if key is None:
            refusal = error_response(401, "the x-api-key header is missing")
        elif not hmac.compare_digest(key, self._key):
            refusal = error_response(401, "the API key is not valid")
        elif not self._admin and path.startswith(_ADMIN_PREFIXES):
            refusal = error_response(403, "this API key is not a company admin's")
        if refusal is not None:
            await refusal(scope, receive, send)
            return

        await self._app(scope, receive, send)


class ApiRoutes:
    """The ``/v1`` routes, bound to one simulator's store and storage origin."""

    def __init__(
        self,
        options: SimulatorOptions,
        store: Store,
        signer: UrlSigner,
        faults: FaultController,
        storage_url: str,
    ) -> None:
        self._options = options
        self._store = store
        self._signer = signer
        self._faults = faults
        self._storage_url = storage_url

    def routes(self) -> list[Route]:
        files = "/v1/external/user/files"
        hooks = "/v1/admin/company/webhooks"
        return [
            Route(files, self.create_file, methods=["POST"]),
            Route(files, self.list_files, methods=["GET"]),
            Route(files + "/{file_id}", self.get_file, methods=["GET"]),
            Route(files + "/{file_id}/download", self.download, methods=["GET"]),
            Route(
                "/v1/external/admin/company/files",
                self.list_company_files,
                methods=["GET"],
            ),
            Route("/v1/user/purchase-orders", self.purchase_orders, methods=["GET"]),
            Route(hooks, self.create_webhook, methods=["POST"]),
            Route(hooks, self.list_webhooks, methods=["GET"]),
            Route(hooks + "/{hook_id}", self.delete_webhook, methods=["DELETE"]),
        ]

    async def create_file(self, request: Request) -> Response:
        data = await _json_object(request)
        create = _parse_create(data, self._options.max_upload_bytes)
        key = request.headers.get("idempotency-key")
        now = time.time()
        view, replay = self._store.create(create, key, now)

        info = request_info(request.scope)
        info["file_id"] = view.id
        info["replay"] = replay
        expired = self._faults.settings.expire_upload_urls
        body = dict(view.object)
        body["uploadUrl"] = self._upload_url(view.id, now, expired=expired)

        return JSONResponse(body, status_code=201)

    async def get_file(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        request_info(request.scope)["file_id"] = file_id
        now = time.time()
        view = self._store.get(file_id, now)
        if view is None:
            raise ApiError(404, f"file {file_id} was not found")

        return JSONResponse(self._rendered(view, now))

    async def list_files(self, request: Request) -> Response:
        return self._listing(request, tags=frozenset(), users=None)

    async def list_company_files(self, request: Request) -> Response:
        params = request.query_params
        tags = frozenset(_csv(params.get("tags")))
        users = _csv(params.get("users")) or None

        return self._listing(request, tags=tags, users=users)

    async def download(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        request_info(request.scope)["file_id"] = file_id
        now = time.time()
        view = self._store.get(file_id, now)
        if view is None:
            raise ApiError(404, f"file {file_id} was not found")
        if view.state != "completed":
            message = (
                f"file {file_id} is {view.state}; it can be downloaded once "
                "it is completed"
            )
            raise ApiError(409, message)

        mode = self._options.download_mode
        if mode == "bytes":
            return pdf_response(view)
        url = self._signer.url(
            self._storage_url,
            "download",
            file_id,
            now + self._options.download_url_ttl_seconds,
        )
        if mode == "url":
            return JSONResponse({"url": url})

        return RedirectResponse(url, status_code=307)

    async def purchase_orders(self, request: Request) -> Response:
        return JSONResponse(self._store.purchase_orders())

    async def create_webhook(self, request: Request) -> Response:
        data = await _json_object(request)
        event = data.get("event")
        url = data.get("url")
        if event != "file_processed":
            message = f"event must be 'file_processed', got {event!r}"
            raise ApiError(400, message)
        if not isinstance(url, str) or not _webhook_url_ok(url):
            message = f"url must be an https:// URL that accepts POST, got {url!r}"
            raise ApiError(400, message)

        return JSONResponse(self._store.add_webhook(event, url), status_code=201)

    async def list_webhooks(self, request: Request) -> Response:
        return JSONResponse(self._store.webhooks())

    async def delete_webhook(self, request: Request) -> Response:
        hook_id = request.path_params["hook_id"]
        remaining = self._store.delete_webhook(hook_id)
        if remaining is None:
            raise ApiError(404, f"webhook {hook_id} was not found")

        return JSONResponse(remaining)

    def _listing(
        self, request: Request, *, tags: frozenset[str], users: list[str] | None
    ) -> Response:
        params = request.query_params
        page = _positive_int(params.get("page"), "page", 1)
        limit = min(
            _positive_int(params.get("limit"), "limit", _DEFAULT_LIMIT), _MAX_LIMIT
        )
        state = params.get("state") or None
        if state is not None and not self._options.list_by_state:
            raise ApiError(400, "unknown query parameter 'state'")
        if state is not None and state not in STATES:
            message = f"state must be one of {', '.join(STATES)}, got {state!r}"
            raise ApiError(400, message)

        now = time.time()
        if users is not None and OWNER["userid"] not in users:
            views: list[FileView] = []
            total = 0
        else:
            views, total = self._store.list_files(
                now,
                search=params.get("search") or None,
                state=state,
                tags=tags,
                page=page,
                limit=limit,
            )
        items = [self._rendered(view, now) for view in views]

        return JSONResponse(
            {"items": items, "total": total, "page": page, "limit": limit}
        )

    def _rendered(self, view: FileView, now: float) -> dict[str, Any]:
        body = dict(view.object)
        if view.waiting_for_bytes:
            body["uploadUrl"] = self._upload_url(view.id, now, expired=False)

        return body

    def _upload_url(self, file_id: str, now: float, *, expired: bool) -> str:
        # An already expired URL (a fault) sends the client to read the
        # record for a fresh one, as the contract tells it to.
        expires = now - 1 if expired else now + self._options.upload_url_ttl_seconds

        return self._signer.url(self._storage_url, "upload", file_id, expires)


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail), exc.headers)


async def _json_object(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > _MAX_JSON_BYTES:
        raise ApiError(400, "the request body is larger than 1 MiB")
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")

    return data


def _parse_create(data: dict[str, Any], max_bytes: int) -> CreateRequest:
    """Validate a create body in the order 400, 415, 413; return the request."""
    name = data.get("name")
    size = data.get("size")
    mime = data.get("mime")
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "name must be a non-empty string")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise ApiError(400, f"size must be a positive integer, got {size!r}")
    if not isinstance(mime, str) or not mime:
        raise ApiError(400, "mime must be a non-empty string")
    comment = _optional(data, "comment", str)
    tags = _optional(data, "tags", list) or []
    if not all(isinstance(tag, str) for tag in tags):
        raise ApiError(400, "tags must be an array of tag ids (strings)")
    purchase_order = _optional(data, "purchaseOrderId", str)
    exclude_watermark = _optional(data, "excludeWatermark", bool) or False
    notification = _optional(data, "additionalNotification", dict)
    email = None
    if notification is not None:
        email = notification.get("email")
        if not isinstance(email, str) or "@" not in email:
            message = "additionalNotification.email must be an e-mail address"
            raise ApiError(400, message)

    if mime != "application/pdf" or not name.lower().endswith(".pdf"):
        message = f"only PDF files are accepted (mime {mime!r}, name {name!r})"
        raise ApiError(415, message)
    if size > max_bytes:
        message = f"size {size} exceeds the maximum of {max_bytes} bytes"
        raise ApiError(413, message)

    return CreateRequest(
        name=name,
        size=size,
        mime=mime,
        comment=comment,
        tags=tuple(tags),
        purchase_order=purchase_order,
        exclude_watermark=exclude_watermark,
        notification_email=email,
    )


def _optional(data: dict[str, Any], field: str, kind: type) -> Any:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ApiError(400, f"{field} has the wrong type: {value!r}")

    return value


def _positive_int(raw: str | None, name: str, default: int) -> int:
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ApiError(400, f"{name} must be a positive integer, got {raw!r}")

    return int(raw)


def _csv(raw: str | None) -> list[str]:
    return [part for part in (raw or "").split(",") if part]


def _webhook_url_ok(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
        return False
    if parts.scheme == "https":
        return True

    return parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS
