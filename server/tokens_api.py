"""The admin API for tokens under /api/v1/tokens: make (secret shown once), list, revoke.

Every route here needs admin scope (:data:`.access.RULES`).
"""

from __future__ import annotations

import re
from typing import Any, Dict

from flask import Blueprint, jsonify, request, url_for

from greenflame.analyzer.errors import UserError

from .access import token_store
from .context import get_settings
from .errors import ApiError
from .storage import get_storage
from .tokens import LINK, TOKEN, NewToken

bp = Blueprint("tokens", __name__, url_prefix="/api/v1")

_TOKEN_ID = re.compile(r"^[0-9a-f]{32}$")
_FIELDS = {"name", "scope", "group", "kind", "expires_in_s"}


@bp.post("/tokens")
def create_token() -> Any:
    """Make an API token or a one-time sign-in link; its secret is in this answer only."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or set(body) - _FIELDS:
        raise ApiError(400, "bad_request", 'send a JSON object such as {"name": "ci", "scope": "read", "group": null}')
    group = body.get("group")
    if isinstance(group, str) and get_storage().get_group(group) is None:
        raise ApiError(400, "invalid_group", f"there is no group {group!r}")
    try:
        made = token_store().create(
            str(body.get("scope")),
            group,
            body.get("name", "token"),
            body.get("kind", TOKEN),
            body.get("expires_in_s"),
        )
    except UserError as error:
        raise ApiError(400, "invalid_token_request", str(error)) from None
    response = jsonify(new_token_json(made, sign_in_base()))
    response.status_code = 201
    return response


@bp.get("/tokens")
def list_tokens() -> Any:
    """Every token and sign-in link (never their secrets), newest first."""
    return jsonify({"tokens": [record.to_dict() for record in token_store().list()]})


@bp.delete("/tokens/<token_id>")
def revoke_token(token_id: str) -> Any:
    """Revoke a token or link: it and the sessions it opened stop working at once."""
    record = token_store().revoke(token_id) if _TOKEN_ID.match(token_id) else None
    if record is None:
        raise ApiError(404, "not_found", f"there is no token {token_id!r}")
    return jsonify(record.to_dict())


def sign_in_base() -> str:
    """The server's URL for sign-in links: ``GREENFLAME_PUBLIC_URL``, else the URL this request used."""
    public = get_settings().public_url
    return public.rstrip("/") if public else request.host_url.rstrip("/")


def new_token_json(made: NewToken, base_url: str) -> Dict[str, Any]:
    """A new token's API form: its record, its secret, and for a link the URL that signs in with it."""
    out = {**made.record.to_dict(), "token": made.secret}
    if made.record.kind == LINK:
        out["sign_in_url"] = base_url + url_for("signin.sign_in_link", secret=made.secret)
    return out
