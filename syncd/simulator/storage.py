"""The storage origin: pre-signed upload URLs and signed download URLs.

It stands for the object store behind ``https://upload.accessibledocs.ai/``
and implements the contract's "Send the bytes" section:

- ``PUT /upload/{id}?expires=..&sig=..`` takes the raw PDF. The URL is the
  credential (HMAC-SHA256 over method, path and expiry with a key only the
  simulator knows): a bad signature or an expired URL is 403. A body without
  ``Content-Length`` (chunked) is 411, a length other than the declared size
  400. A record that already has bytes answers 200 to the same bytes and 409
  to different ones.
- ``GET /download/{id}?expires=..&sig=..`` serves the processed PDF to
  clients that follow the API's ``url`` or ``redirect`` download answers.

Neither route wants ``x-api-key``; a request that carries it is answered
normally and counted as a leak by the request log.

A body larger than ``INLINE_BYTES`` is streamed to a temporary file and
hashed on the way, so a 1 GiB upload never sits in memory; it is checked in
a worker thread and streamed back in chunks, so it never blocks the loop.
A body cut short (the client went away) is deleted and does not count as
received.

Smaller bodies are received, checked and served on the event loop: for a
small file, handing the work to a worker thread costs more than the work.
When the simulator keeps its objects in its own temporary folder, they are
held in memory instead, up to ``MEMORY_BUDGET_BYTES`` in all: nobody looks
in that folder, and creating a file costs more than answering a request. An
explicit ``storage_dir`` gets every object as a file.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import urllib.parse
import uuid
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from syncd.simulator.pdf import UnusablePdf, analyse, analyse_bytes
from syncd.simulator.replies import ApiError, error_response
from syncd.simulator.requestlog import request_info
from syncd.simulator.state import StoredBytes

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

    from syncd.simulator.options import SimulatorOptions
    from syncd.simulator.pdf import Analysis
    from syncd.simulator.state import FileView, Store

INLINE_BYTES = 1024 * 1024
MEMORY_BUDGET_BYTES = 64 * 1024 * 1024
_READ_CHUNK = 1024 * 1024

_P = ParamSpec("_P")
_T = TypeVar("_T")


class UrlSigner:
    """Make and check the signed URLs of the storage origin."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def url(self, base: str, kind: str, file_id: str, expires: float) -> str:
        """Return ``{base}/{kind}/{file_id}`` signed until ``expires``."""
        path = f"/{kind}/{file_id}"
        stamp = int(expires)
        query = urllib.parse.urlencode(
            {"expires": stamp, "sig": self._sign(path, stamp)}
        )

        return f"{base}{path}?{query}"

    def check(self, request: Request, now: float) -> None:
        """Raise ``ApiError`` 403 unless the request's URL is signed and fresh."""
        expires = request.query_params.get("expires", "")
        signature = request.query_params.get("sig", "")
        if not expires.isdigit() or not signature:
            raise ApiError(403, "the URL is not signed; ask the API for a new one")
        # The routed path: cheaper than building request.url, and the same
        # for every path this signer signs.
        expected = self._sign(request.scope["path"], int(expires))
        if not hmac.compare_digest(expected, signature):
            raise ApiError(403, "the URL signature does not match")
        if int(expires) < now:
            message = "the URL has expired; read the file record for a fresh one"
            raise ApiError(403, message)

    def _sign(self, path: str, expires: int) -> str:
        payload = f"{path}\n{expires}".encode()
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()


class StorageApp:
    """The storage origin's routes, bound to one simulator's store."""

    def __init__(
        self,
        options: SimulatorOptions,
        store: Store,
        signer: UrlSigner,
        directory: Path,
    ) -> None:
        self._options = options
        self._store = store
        self._signer = signer
        self._objects = directory / "objects"
        self._incoming = directory / "incoming"
        self._objects.mkdir(parents=True, exist_ok=True)
        self._incoming.mkdir(parents=True, exist_ok=True)
        own_folder = options.storage_dir is None
        self._memory_left = MEMORY_BUDGET_BYTES if own_folder else 0

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/upload/{file_id}", self.upload, methods=["PUT"]),
                Route("/download/{file_id}", self.download, methods=["GET"]),
            ],
            exception_handlers={
                ApiError: _api_error,
                HTTPException: _http_error,
            },
        )

    async def upload(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        request_info(request.scope)["file_id"] = file_id
        now = time.time()
        self._signer.check(request, now)
        target = self._store.upload_target(file_id)
        if target is None:
            raise ApiError(404, f"file {file_id} was not found")

        declared = request.headers.get("content-length")
        if declared is None:
            # Object stores refuse chunked uploads: they must know the size.
            raise ApiError(
                411, "Content-Length is required; chunked uploads are refused"
            )
        if not declared.isdigit():
            raise ApiError(400, f"Content-Length {declared!r} is not a number")
        if int(declared) != target.size:
            message = (
                f"Content-Length {declared} does not match the size {target.size} "
                "declared when the file was created"
            )
            raise ApiError(400, message)
        if not target.accepts_bytes:
            raise ApiError(409, f"file {file_id} no longer accepts bytes")

        try:
            digest, received = await self._receive(request, file_id, target.size)
        except ClientDisconnect:
            # Nobody is left to answer; the partial bytes never count.
            request_info(request.scope)["client_gone"] = True
            return Response(status_code=400)
        try:
            return await self._attach(file_id, digest, received)
        finally:
            if received.path is not None:
                received.path.unlink(missing_ok=True)

    async def _receive(
        self, request: Request, file_id: str, size: int
    ) -> tuple[str, StoredBytes]:
        """Receive the body in memory if it fits, else in a part file.

        Return its SHA-256 and where it is. Raise ``ClientDisconnect`` if the
        client went away before the end.
        """
        if size <= min(INLINE_BYTES, self._memory_left):
            data = await request.body()
            if len(data) != size:
                raise ClientDisconnect
            return hashlib.sha256(data).hexdigest(), StoredBytes(data=data)

        part = self._incoming / f"{file_id}.{uuid.uuid4().hex}.part"
        try:
            digest = await _receive_to(request, part, size)
        except ClientDisconnect:
            part.unlink(missing_ok=True)
            raise
        return digest, StoredBytes(path=part)

    async def _attach(
        self, file_id: str, digest: str, received: StoredBytes
    ) -> Response:
        target = self._store.upload_target(file_id)
        if target is not None and target.has_bytes:
            if target.sha256 == digest:
                return Response(status_code=200)
            raise ApiError(409, f"file {file_id} already has different bytes")

        view = self._store.get(file_id, time.time())
        assert view is not None
        title = view.object["name"].removesuffix(".pdf").removesuffix(".PDF")
        try:
            analysis = await self._analyse(received, view.size, title)
            failure = None
        except UnusablePdf as exc:
            analysis, failure = None, str(exc)

        kept = self._kept(file_id, received)
        outcome = self._store.attach_bytes(
            file_id, kept, digest, analysis, failure, time.time()
        )
        if outcome == "taken":
            self._take(received, kept)
            return Response(status_code=200)
        if outcome == "same":
            return Response(status_code=200)
        if outcome == "different":
            raise ApiError(409, f"file {file_id} already has different bytes")
        raise ApiError(409, f"file {file_id} no longer accepts bytes")

    def _kept(self, file_id: str, received: StoredBytes) -> StoredBytes:
        """Return where the record will keep the bytes: a part file moves."""
        if received.path is None:
            return received

        return StoredBytes(path=self._objects / f"{file_id}.pdf")

    def _take(self, received: StoredBytes, kept: StoredBytes) -> None:
        """Put bytes the record accepted where ``_kept`` said they would be."""
        if received.path is not None and kept.path is not None:
            received.path.replace(kept.path)
        elif received.data is not None:
            self._memory_left -= len(received.data)

    async def _analyse(self, received: StoredBytes, size: int, title: str) -> Analysis:
        lang = self._options.result_lang
        if received.data is not None:
            return analyse_bytes(received.data, title, lang)
        assert received.path is not None

        return await _for_size(size, analyse, received.path, title, lang)

    async def download(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        request_info(request.scope)["file_id"] = file_id
        now = time.time()
        self._signer.check(request, now)
        view = self._store.get(file_id, now)
        if view is None:
            raise ApiError(404, f"file {file_id} was not found")
        if view.state != "completed":
            raise ApiError(409, f"file {file_id} is {view.state}, not completed")

        return pdf_response(view)


def pdf_response(view: FileView) -> Response:
    """Answer with a record's processed PDF and its Content-Length.

    A small result is read at once; a large one is streamed from disk.
    """
    assert view.source is not None
    assert view.update is not None
    assert view.result_size is not None
    name = urllib.parse.quote(view.object["name"])
    headers = {
        "Content-Length": str(view.result_size),
        "Content-Disposition": f"attachment; filename*=UTF-8''{name}",
    }
    if view.size <= INLINE_BYTES:
        body = view.source.read_bytes() + view.update
        return Response(body, media_type="application/pdf", headers=headers)
    # Only small uploads are ever held in memory.
    assert view.source.path is not None

    return StreamingResponse(
        _result_chunks(view.source.path, view.update),
        media_type="application/pdf",
        headers=headers,
    )


async def _for_size(
    size: int, function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs
) -> _T:
    """Call ``function`` here for a small file, in a worker thread for a large one."""
    if size <= INLINE_BYTES:
        return function(*args, **kwargs)

    return await asyncio.to_thread(function, *args, **kwargs)


async def _result_chunks(source: Path, update: bytes) -> AsyncIterator[bytes]:
    with source.open("rb") as stream:
        while chunk := await asyncio.to_thread(stream.read, _READ_CHUNK):
            yield chunk
    yield update


async def _receive_to(request: Request, part: Path, expected: int) -> str:
    """Stream the body into ``part`` and return its SHA-256.

    Raise ``ClientDisconnect`` if the client went away before the end.
    """
    digest = hashlib.sha256()
    received = 0
    with part.open("wb") as out:
        async for chunk in request.stream():
            digest.update(chunk)
            out.write(chunk)
            received += len(chunk)
    if received != expected:
        # h11 enforces Content-Length, so this means the stream was cut.
        raise ClientDisconnect

    return digest.hexdigest()


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail), exc.headers)
