"""JSON errors for the API: ``{"error": {"code", "message"}}``, never an HTML page or a traceback.

Pages outside ``/api/`` keep Flask's plain HTML error pages (which show no traceback either).
"""

from __future__ import annotations

import logging
from typing import Mapping, Optional

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import BadRequest, HTTPException, InternalServerError
from werkzeug.wrappers import Response as BaseResponse

from greenflame.analyzer.errors import UserError

log = logging.getLogger(__name__)

API_PREFIX = "/api/"

# Stable codes for the statuses the API uses; others fall back to the status's name.
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    500: "internal_error",
}


class ApiError(Exception):
    """An API failure the client can act on: HTTP status, a stable code and a one-line message."""

    def __init__(self, status: int, code: str, message: str, headers: Optional[Mapping[str, str]] = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_response(status: int, code: str, message: str, headers: Optional[Mapping[str, str]] = None) -> Response:
    """A JSON error response with a one-line message."""
    response = jsonify({"error": {"code": code, "message": " ".join(message.split())}})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def init_app(app: Flask) -> None:
    """Register the error handlers on ``app``."""
    app.register_error_handler(ApiError, _handle_api_error)
    app.register_error_handler(UserError, _handle_user_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(Exception, _handle_unexpected)


def _is_api_request() -> bool:
    return request.path.startswith(API_PREFIX)


def _handle_api_error(error: ApiError) -> Response:
    return error_response(error.status, error.code, error.message, error.headers)


def _handle_user_error(error: UserError) -> BaseResponse:
    """A user mistake that reached the HTTP edge (a bad profile, a bad parameter): 400, one line."""
    if not _is_api_request():
        return BadRequest(str(error)).get_response()
    return error_response(400, _CODES[400], str(error))


def _handle_http_exception(error: HTTPException) -> BaseResponse:
    if not _is_api_request():
        return error.get_response()
    status = error.code or 500
    code = _CODES.get(status) or (error.name or "error").lower().replace(" ", "_").replace("-", "_")
    headers = {name: value for name, value in error.get_headers() if name.lower() == "allow"}
    return error_response(status, code, error.description or error.name or "error", headers)


def _handle_unexpected(error: Exception) -> BaseResponse:
    log.exception("unhandled error on %s %s", request.method, request.path)
    if not _is_api_request():
        return InternalServerError().get_response()
    return error_response(500, "internal_error", "the server failed to handle this request; see its log")
