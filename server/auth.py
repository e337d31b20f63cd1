"""Bearer-token checks for the admin and ingest endpoints."""

from __future__ import annotations

import hmac
from typing import Optional

from flask import request

from .context import get_settings
from .errors import ApiError

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="greenflame"'}


def bearer_token() -> Optional[str]:
    """The token of an ``Authorization: Bearer`` header, or None."""
    auth = request.authorization
    if auth is None or auth.type != "bearer" or not auth.token:
        return None
    return auth.token


def require_bearer_token() -> str:
    """The request's bearer token; a 401 ApiError without one."""
    token = bearer_token()
    if token is None:
        raise ApiError(401, "unauthorized", "send the key as 'Authorization: Bearer <key>'", _CHALLENGE)
    return token


def require_admin() -> None:
    """Pass if the request carries the admin token; 401 without a token, 403 with a wrong one."""
    token = require_bearer_token()
    expected = get_settings().admin_token
    if not expected or not hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8")):
        raise ApiError(403, "forbidden", "the admin token is not valid")
