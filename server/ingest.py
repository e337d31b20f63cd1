"""POST /api/v1/ingest: the agent's reports (gzipped wire-format JSON) into storage."""

from __future__ import annotations

import gzip
import json
import re
import time
import zlib
from dataclasses import replace
from typing import Optional, Tuple, Union

from flask import Blueprint, Response, jsonify, request

from greenflame.analyzer.formats import wire_summary
from greenflame.analyzer.formats.wire_summary import DocumentSummary
from greenflame.analyzer.model import Frame, Profile

from . import metrics
from .access import current_principal, group_exists
from .bodies import BadEncoding, BodyTooLarge, gunzip_members, read_limited
from .context import get_settings
from .errors import ApiError
from .rollups import get_rollups
from .settings import Settings
from .storage import get_storage

bp = Blueprint("ingest", __name__, url_prefix="/api/v1")

_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")
_ENCODINGS = ("", "identity", "gzip", "x-gzip")
#: The last frame of a stack cut short: the agent's own marker (agent/stacks.py ``TRUNCATED``).
TRUNCATED_FRAME = Frame("[truncated]", "", 0)
_NS = 10**9
#: How long a report waits for the rollup worker to catch up before 503.
ROOM_WAIT_S = 5.0
RETRY_AFTER_S = 10


@bp.post("/ingest")
def ingest() -> tuple:
    """Store one report; 202 when new, 200 with ``duplicate: true`` for a retried one."""
    try:
        return _ingest()
    except ApiError as error:
        metrics.REJECTED.labels(reason=error.code).inc()
        raise


def _ingest() -> tuple:
    key_group = _authenticated_group()
    encoding = _check_content_headers()
    idempotency_key = _idempotency_key()
    raw, body, members = _bodies(encoding)
    parsed = _parse(body)
    check_bounds(parsed, get_settings(), time.time_ns())
    profile = truncate_stacks(parsed, get_settings().max_stack_depth)
    allowed = profile.group == key_group if key_group is not None else group_exists(profile.group)
    if not allowed:
        raise ApiError(403, "forbidden", f"the ingest key is not valid for group {profile.group!r}")
    received = stored_body(encoding, raw, body, members) if profile is parsed else None  # else written anew
    _wait_for_rollup_room(get_settings().rollup_queue_limit)
    profile_id, duplicate = get_storage().add_profile(profile.group, profile, idempotency_key, received)
    if not duplicate:
        metrics.INGESTED.inc()
        metrics.INGESTED_BYTES.inc(len(raw))
    response: Response = jsonify({"id": profile_id, "duplicate": duplicate})
    return response, 200 if duplicate else 202


def _wait_for_rollup_room(limit: int) -> None:
    """Hold the report while the rollup worker is ``limit`` reports behind; ApiError 503 (nothing
    stored, the agent retries after Retry-After) if it is still that far behind after
    :data:`ROOM_WAIT_S`. Backlog stays bounded: a server pushes back rather than fall ever further behind."""
    if limit and not get_rollups(get_storage()).worker.wait_for_room(limit, ROOM_WAIT_S):
        raise ApiError(
            503,
            "behind",
            f"the server is {limit} reports behind on its rollups; retry later",
            {"Retry-After": str(RETRY_AFTER_S)},
        )


def _authenticated_group() -> Optional[str]:
    """The one group the credential may report for (None: any existing group).

    :func:`.access.check_access` has let the request in with ingest (or admin) scope.
    """
    principal = current_principal()
    if principal is None:  # not reached: the route is not public
        raise ApiError(401, "unauthorized", "send the key as 'Authorization: Bearer <key>'")
    return principal.group


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


def _bodies(encoding: str) -> Tuple[bytes, bytes, int]:
    """The body as received and decoded, and how many gzip members it held (0: not gzipped)."""
    settings = get_settings()
    try:
        raw = read_limited(request.stream, request.content_length, settings.max_upload_bytes)
        if encoding in ("gzip", "x-gzip"):
            return (raw, *gunzip_members(raw, settings.max_decompressed_bytes))
        if len(raw) > settings.max_decompressed_bytes:
            raise BodyTooLarge(f"the body is over the limit of {settings.max_decompressed_bytes} bytes")
        return raw, raw, 0
    except BodyTooLarge as error:
        raise ApiError(413, "payload_too_large", str(error)) from None
    except BadEncoding as error:
        raise ApiError(400, "malformed_body", str(error)) from None


def stored_body(encoding: str, raw: bytes, body: bytes, members: Optional[int] = None) -> bytes:
    """The gzipped body to store: the one received when it reads back as ``body``, else ``body`` compressed.

    Storing what the agent sent spares the request re-writing and re-compressing the profile
    (most of its time after parsing); the stored document is the one that was validated.
    ``members``: how many gzip members the request's own decompression of ``raw`` into ``body``
    found (1: ``raw`` is known to be exactly ``body``'s one member, not decompressed again to check).
    """
    if encoding in ("gzip", "x-gzip") and (members == 1 or (members is None and _is_one_gzip_member_of(raw, body))):
        return raw
    return gzip.compress(body, compresslevel=1, mtime=0)


def _is_one_gzip_member_of(raw: bytes, body: bytes) -> bool:
    """Whether ``raw`` is exactly one gzip member holding ``body`` (read no further than its length)."""
    reader = zlib.decompressobj(wbits=31)
    try:
        out = reader.decompress(raw, len(body) + 1)
    except zlib.error:
        return False
    return out == body and reader.eof and not reader.unused_data and not reader.unconsumed_tail


def _parse(body: bytes) -> DocumentSummary:
    """The checked document, summarised (no object per sample: see wire_summary)."""
    try:
        profile = wire_summary.summarize(body)
    except ValueError as error:  # ProfileError, and JSON or UTF-8 errors if they slip through
        raise ApiError(400, "malformed_profile", f"the body is not a valid greenflame profile: {error}") from None
    if not profile.group:
        raise ApiError(400, "malformed_profile", "the profile names no group")
    return profile


def check_bounds(profile: Union[Profile, DocumentSummary], settings: Settings, now_ns: int) -> None:
    """ApiError 400 for a profile outside the plausible time window or with oversized metadata."""
    oldest = now_ns - settings.ingest_max_age_s * _NS
    latest = now_ns + settings.ingest_max_ahead_s * _NS
    if profile.start_time_unix_ns < oldest:
        raise _out_of_bounds(f"start_time_unix_ns is more than {settings.ingest_max_age_s} s before the server's clock")
    if profile.start_time_unix_ns + profile.duration_ns > latest:
        raise _out_of_bounds(
            f"start_time_unix_ns + duration_ns is more than {settings.ingest_max_ahead_s} s after the server's clock"
        )
    size = len(json.dumps(profile.metadata, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size > settings.max_metadata_bytes:
        raise _out_of_bounds(f"metadata is {size} bytes as JSON; the limit is {settings.max_metadata_bytes}")


def _out_of_bounds(message: str) -> ApiError:
    return ApiError(400, "malformed_profile", f"the body is not a valid greenflame profile: {message}")


def truncate_stacks(profile: Union[Profile, DocumentSummary], max_depth: int) -> Union[Profile, DocumentSummary]:
    """``profile`` with every stack longer than ``max_depth`` cut to its root-side frames plus the marker.

    Stacks that become equal are merged, as the agent merges them, and frames no stack uses
    any more are dropped. ``profile`` itself is returned when no stack is too deep.
    """
    if isinstance(profile, DocumentSummary):
        if profile.max_depth <= max_depth:
            return profile
        profile = profile.profile()
    if all(len(sample.stack) <= max_depth for sample in profile.samples):
        return profile
    cut = replace(profile, frames=[], samples=[])  # the same header; indices rebuilt empty
    frames = profile.frames
    for sample in profile.samples:
        stack = [frames[i] for i in sample.stack[:max_depth]]
        if len(sample.stack) > max_depth:
            stack[-1] = TRUNCATED_FRAME
        cut.add(stack, sample.values, sample.labels)
    return cut
