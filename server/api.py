"""The read and admin API under /api/v1 (ingest lives in :mod:`.ingest`).

Reads are open in this version (no read access control yet); creating groups needs the
admin token.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Optional

from flask import Blueprint, jsonify, request, url_for
from greenflame.analyzer.model import CPU, WALL, ProfileError
from greenflame.analyzer.report import analyze_profile
from greenflame.analyzer.tree import flamegraph
from sqlalchemy import text

from .auth import require_admin
from .errors import ApiError
from .queries import RangeProfile, merged_range, require_group
from .storage import GroupExistsError, GroupSummary, get_storage

bp = Blueprint("api", __name__, url_prefix="/api/v1")

GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
GROUP_NAME_RULE = "1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit"
MAX_NODES_LIMIT = 100_000


@bp.get("/health")
def health() -> Any:
    """200 when the database answers."""
    with get_storage().engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return jsonify({"status": "ok"})


@bp.post("/groups")
def create_group() -> Any:
    """Create a profiling group and return its ingest key (shown only here)."""
    require_admin()
    body = request.get_json(silent=True)
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str):
        raise ApiError(400, "bad_request", 'send a JSON object such as {"name": "checkout-service"}')
    if not GROUP_NAME.match(name):
        raise ApiError(400, "invalid_group_name", f"a group name is {GROUP_NAME_RULE}")
    try:
        key = get_storage().create_group(name)
    except GroupExistsError:
        raise ApiError(409, "conflict", f"group {name!r} already exists") from None
    response = jsonify({"name": name, "ingest_key": key})
    response.status_code = 201
    response.headers["Location"] = url_for("api.get_group", name=name)
    return response


@bp.get("/groups")
def list_groups() -> Any:
    """Every group with its profile count and the time span of its profiles."""
    return jsonify({"groups": [group_json(group) for group in get_storage().list_groups()]})


@bp.get("/groups/<name>")
def get_group(name: str) -> Any:
    """One group's summary."""
    return jsonify(group_json(require_group(name)))


@bp.get("/groups/<name>/flamegraph")
def group_flamegraph(name: str) -> Any:
    """The flame graph tree of the group's profiles in ``from``..``to`` for ``type`` cpu or wall."""
    sample_type = request.args.get("type", CPU)
    if sample_type not in (CPU, WALL):
        raise ApiError(400, "invalid_parameter", "type must be cpu or wall")
    max_nodes = _int_arg("max_nodes", 5000, 1, MAX_NODES_LIMIT)
    selected = merged_range(name)
    try:
        tree = flamegraph(selected.profile, sample_type=sample_type, max_nodes=max_nodes)
    except ProfileError as error:
        raise ApiError(400, "invalid_parameter", str(error)) from None
    return jsonify({**_range_json(selected), "type": sample_type, "flamegraph": tree})


@bp.get("/groups/<name>/recommendations")
def group_recommendations(name: str) -> Any:
    """Recommendations with cost and CO2e for the group's profiles in ``from``..``to``."""
    region = request.args.get("region") or None
    per_month = _float_arg("invocations_per_month")
    selected = merged_range(name)
    try:
        report = analyze_profile(selected.profile, region=region, invocations_per_month=per_month)
    except ValueError as error:  # an unknown region, or a profile the rules cannot read
        raise ApiError(400, "invalid_parameter", str(error)) from None
    return jsonify({**report, **_range_json(selected)})


def group_json(group: GroupSummary) -> Dict[str, Any]:
    """The API form of a group summary."""
    return {
        "name": group.name,
        "created_unix_ns": group.created_unix_ns,
        "profile_count": group.profile_count,
        "first_seen_unix_ns": group.first_seen_unix_ns,
        "last_seen_unix_ns": group.last_seen_unix_ns,
        "last_received_unix_ns": group.last_received_unix_ns,
    }


def _range_json(selected: RangeProfile) -> Dict[str, Any]:
    return {
        "group": selected.group,
        "from_unix_ns": selected.start_ns,
        "to_unix_ns": selected.end_ns,
        "profile_count": selected.profile_count,
        "start_time_unix_ns": selected.profile.start_time_unix_ns,
        "duration_ns": selected.profile.duration_ns,
    }


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ApiError(400, "invalid_parameter", f"{name} must be a whole number from {low} to {high}")
    return value


def _float_arg(name: str) -> Optional[float]:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise ApiError(400, "invalid_parameter", f"{name} must be a number above zero")
    return value
