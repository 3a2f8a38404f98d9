"""Error answers in the contract's shape, shared by both origins.

Every error body is ``{"statusCode": N, "message": "...", "error": "..."}``
("Errors and limits" in the contract). The ``error`` words follow the common
NestJS spelling (``Payload Too Large``, ``Unprocessable Entity``) rather than
Python's ``http.HTTPStatus`` phrases, which changed between Python versions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import JSONResponse

if TYPE_CHECKING:
    from collections.abc import Mapping

ERROR_NAMES: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    411: "Length Required",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ApiError(Exception):
    """A refusal that becomes an error answer at the app boundary."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def error_body(status: int, message: str) -> dict[str, object]:
    return {
        "statusCode": status,
        "message": message,
        "error": ERROR_NAMES.get(status, "Error"),
    }


def error_response(
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """Return the contract's JSON error answer for ``status``."""
    return JSONResponse(error_body(status, message), status, headers=headers)
