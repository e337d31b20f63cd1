"""POST /api/v1/ingest: the agent's reports (gzipped wire-format JSON) into storage."""

from __future__ import annotations

import re
from typing import Optional

from flask import Blueprint, Response, jsonify, request

from greenflame.analyzer.formats import greenflame_json
from greenflame.analyzer.model import Profile

from .auth import require_bearer_token
from .bodies import BadEncoding, BodyTooLarge, gunzip_limited, read_limited
from .context import get_settings
from .errors import ApiError
from .storage import get_storage

bp = Blueprint("ingest", __name__, url_prefix="/api/v1")

_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")
_ENCODINGS = ("", "identity", "gzip", "x-gzip")


@bp.post("/ingest")
def ingest() -> tuple:
    """Store one report; 202 when new, 200 with ``duplicate: true`` for a retried one."""
    key_group = _authenticated_group()
    encoding = _check_content_headers()
    idempotency_key = _idempotency_key()
    profile = _parse(_decoded_body(encoding))
    if profile.group != key_group:
        raise ApiError(403, "forbidden", f"the ingest key is not valid for group {profile.group!r}")
    profile_id, duplicate = get_storage().add_profile(key_group, profile, idempotency_key)
    response: Response = jsonify({"id": profile_id, "duplicate": duplicate})
    return response, 200 if duplicate else 202


def _authenticated_group() -> str:
    group = get_storage().group_for_key(require_bearer_token())
    if group is None:
        raise ApiError(403, "forbidden", "the ingest key is not valid")
    return group


def _check_content_headers() -> str:
    if request.mimetype != "application/json":
        shown = request.mimetype or "none"
        raise ApiError(415, "unsupported_media_type", f"Content-Type must be application/json, not {shown}")
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in _ENCODINGS:
        raise ApiError(415, "unsupported_media_type", f"Content-Encoding must be gzip or identity, not {encoding}")
    return encoding


def _idempotency_key() -> Optional[str]:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.match(key):
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 128 visible ASCII characters")
    return key


def _decoded_body(encoding: str) -> bytes:
    settings = get_settings()
    try:
        raw = read_limited(request.stream, request.content_length, settings.max_upload_bytes)
        if encoding in ("gzip", "x-gzip"):
            return gunzip_limited(raw, settings.max_decompressed_bytes)
        if len(raw) > settings.max_decompressed_bytes:
            raise BodyTooLarge(f"the body is over the limit of {settings.max_decompressed_bytes} bytes")
        return raw
    except BodyTooLarge as error:
        raise ApiError(413, "payload_too_large", str(error)) from None
    except BadEncoding as error:
        raise ApiError(400, "malformed_body", str(error)) from None


def _parse(body: bytes) -> Profile:
    try:
        profile = greenflame_json.loads(body)
        profile.validate()
    except ValueError as error:  # ProfileError, and JSON or UTF-8 errors if they slip through
        raise ApiError(400, "malformed_profile", f"the body is not a valid greenflame profile: {error}") from None
    if not profile.group:
        raise ApiError(400, "malformed_profile", "the profile names no group")
    return profile
