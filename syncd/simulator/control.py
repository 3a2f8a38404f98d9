"""The ``/_sim`` control surface, for tests and benchmarks in another process.

It is a test-only back door, not part of the AccessibleDocs contract: it
needs no API key, it is exempt from faults, and its requests are not logged.
Never expose a simulator beyond the machine that runs it.

- ``GET /_sim/requests?since=N``: the request log from position N on.
- ``GET /_sim/stats``: creates, leaks, request counts by route and status,
  records by state, purchase orders.
- ``GET /_sim/faults`` / ``POST /_sim/faults``: read or change the fault
  settings (a JSON object of the fields to change; 400 names every bad one).
- ``GET /_sim/files``: every file object.
- ``GET /_sim/files/{id}/result``: the processed PDF, byte for byte what the
  download gives.
- ``POST /_sim/files/{id}/complete`` and ``POST /_sim/files/{id}/fail``
  (optional ``{"message"}``): finish a record at once.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.simulator.replies import ApiError
from syncd.simulator.storage import pdf_response

if TYPE_CHECKING:
    from starlette.requests import Request

    from syncd.simulator.faults import FaultController
    from syncd.simulator.requestlog import RequestLog
    from syncd.simulator.state import FileView, Store


class ControlRoutes:
    """The ``/_sim`` routes of one simulator."""

    def __init__(self, store: Store, log: RequestLog, faults: FaultController) -> None:
        self._store = store
        self._log = log
        self._faults = faults

    def routes(self) -> list[Route]:
        return [
            Route("/_sim/requests", self.requests, methods=["GET"]),
            Route("/_sim/stats", self.stats, methods=["GET"]),
            Route("/_sim/faults", self.get_faults, methods=["GET"]),
            Route("/_sim/faults", self.set_faults, methods=["POST"]),
            Route("/_sim/files", self.files, methods=["GET"]),
            Route("/_sim/files/{file_id}/result", self.result, methods=["GET"]),
            Route("/_sim/files/{file_id}/complete", self.complete, methods=["POST"]),
            Route("/_sim/files/{file_id}/fail", self.fail, methods=["POST"]),
        ]

    def snapshot(self) -> dict[str, Any]:
        """Return the numbers ``GET /_sim/stats`` answers."""
        return {
            "creates": self._store.creates(),
            "leaks": self._log.leaks(),
            "requests": self._log.total(),
            "counts": self._log.counts(),
            "files": self._store.states(time.time()),
            "purchase_orders": self._store.purchase_orders(),
        }

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.snapshot())

    async def requests(self, request: Request) -> Response:
        since = request.query_params.get("since", "0")
        if not since.isdigit():
            raise ApiError(400, f"since must be a non-negative integer, got {since!r}")

        return JSONResponse(self._log.entries(int(since)))

    async def get_faults(self, request: Request) -> Response:
        return JSONResponse(self._faults.settings.as_dict())

    async def set_faults(self, request: Request) -> Response:
        try:
            changes = json.loads(await request.body())
        except ValueError as exc:
            raise ApiError(400, f"the body is not valid JSON: {exc}") from exc
        if not isinstance(changes, dict):
            raise ApiError(400, "the body must be a JSON object of fault settings")
        try:
            updated = self._faults.update(**changes)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from exc

        return JSONResponse(updated.as_dict())

    async def files(self, request: Request) -> Response:
        views = self._store.all_files(time.time())
        return JSONResponse([view.object for view in views])

    async def result(self, request: Request) -> Response:
        view = self._view(request.path_params["file_id"])
        if view.update is None:
            message = f"file {view.id} has no processed result ({view.state})"
            raise ApiError(409, message)

        return pdf_response(view)

    async def complete(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        self._view(file_id)
        try:
            view = self._store.complete_now(file_id, time.time())
        except ValueError as exc:
            raise ApiError(409, str(exc)) from exc

        return JSONResponse(view.object)

    async def fail(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        self._view(file_id)
        body = await request.body()
        message = "failed by the simulator's control surface"
        try:
            data = json.loads(body) if body else {}
        except ValueError as exc:
            raise ApiError(400, f"the body is not valid JSON: {exc}") from exc
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            message = data["message"]

        return JSONResponse(self._store.fail_now(file_id, message, time.time()).object)

    def _view(self, file_id: str) -> FileView:
        view = self._store.get(file_id, time.time())
        if view is None:
            raise ApiError(404, f"file {file_id} was not found")

        return view
