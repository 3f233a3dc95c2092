"""Every error leaves the service as JSON: {"error": {"code", "message", "field"}}.

One exception for the API's own refusals (`ApiError`), one handler for every HTTP error werkzeug or
an extension raises (404, 405, 413, 415, 429, ...), and one for anything unexpected: a JSON 500 that
carries the request id, logged with its stack but without the exception's message (which may quote
the input).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, g, jsonify, request
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

log = logging.getLogger(__name__)

# Stable, machine-readable codes for the HTTP errors that do not come from our own checks.
HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    411: "length_required",
    413: "body_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    431: "headers_too_large",
    500: "internal_error",
    501: "not_implemented",
    503: "unavailable",
}

# Readable messages for the errors a client most often meets (werkzeug's are written for HTML).
HTTP_MESSAGES: dict[int, str] = {
    404: "No such endpoint. See /openapi.json for the API.",
    405: "This endpoint does not accept that method.",
    413: "The request body is larger than this service accepts.",
    429: "Too many requests; slow down and retry after the time in the Retry-After header.",
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


class ApiError(Exception):
    """A refusal the API explains to its client; raised anywhere inside a request."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}

    def detail(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "field": self.field}


def error_response(
    status: int, code: str, message: str, field: str | None = None, **extra: Any
) -> Response:
    response = jsonify({"error": {"code": code, "message": message, "field": field, **extra}})
    response.status_code = status
    return response


def field_path(loc: tuple[str | int, ...]) -> str | None:
    """pydantic's error location as a JSON path: ("records", 2, "text") -> "records[2].text"."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or None


def validation_details(error: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[dict]:
    """Each problem as {field, message}; the union tag pydantic adds (sms/call) is left out."""
    details = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        if loc and loc[0] in ("sms", "call"):
            loc = loc[1:]
        if item["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc = (*loc, "kind")
        message = item["msg"]
        if item["type"] == "union_tag_invalid":
            message = "kind must be 'sms' or 'call'"
        details.append({"field": field_path(prefix + loc), "message": message})
    return details


def validation_error(error: ValidationError, prefix: tuple[str | int, ...] = ()) -> ApiError:
    """A 422 naming the first problem; the others are listed by the caller if it wants them."""
    first = validation_details(error, prefix)[0]
    return ApiError(422, "validation_error", first["message"], first["field"])


def _handle_api_error(error: ApiError) -> Response:
    response = error_response(error.status, error.code, error.message, error.field)
    response.headers.update(error.headers)
    return response


def _handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    message = HTTP_MESSAGES.get(status) or error.description or error.name
    if status == 429 and error.description:  # flask-limiter names the limit: "2 per 1 minute"
        message = f"{message} Limit: {error.description}."
    response = error_response(status, HTTP_CODES.get(status, "http_error"), message)
    # Keep the headers the exception carries (Allow on a 405, for instance).
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


# How long a client should wait before retrying when the database cannot be reached.
DATABASE_RETRY_AFTER_S = 30


def _handle_database_unavailable(error: OperationalError) -> Response:
    # The database is locked past its busy timeout, gone, or out of space: nothing was
    # committed, so nothing was accepted. A 503 with Retry-After is what a phone (SmsForwarder)
    # and a proxy retry; a 500 would say the request itself was the problem.
    log.error("database unavailable", extra={"exc_type": type(error.orig).__name__})
    response = error_response(
        503,
        "database_unavailable",
        "The service cannot reach its database right now; nothing was saved. Retry shortly.",
        request_id=g.get("request_id"),
    )
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
    return response


def _handle_unexpected(error: Exception) -> Response:
    log.error("unhandled error", exc_info=error)
    return error_response(
        500,
        "internal_error",
        "Something went wrong on our side; quote the request id if you report it.",
        request_id=g.get("request_id"),
    )


def _json_redirect() -> Response | None:
    """Werkzeug's own redirects (a path with doubled slashes, a missing trailing slash) answer
    before any error handler with an HTML body and an absolute Location built from the Host
    header, which the client writes. Answered here instead: JSON, and a Location relative to
    this server (path and query only)."""
    redirect = request.routing_exception
    if not isinstance(redirect, RequestRedirect):
        return None
    target = urlsplit(redirect.new_url)
    location = "/" + target.path.lstrip("/") + (f"?{target.query}" if target.query else "")
    response = jsonify({"location": location})
    response.status_code = redirect.code
    response.headers["Location"] = location
    return response


def init_app(app: Flask) -> None:
    app.before_request(_json_redirect)
    app.register_error_handler(ApiError, _handle_api_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(OperationalError, _handle_database_unavailable)
    app.register_error_handler(Exception, _handle_unexpected)
