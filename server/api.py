"""The read and admin API under /api/v1 (ingest lives in :mod:`.ingest`).

Who may call what is :data:`.access.RULES` (checked before any view runs): reads need read
scope on the group, creating groups needs admin scope.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Hashable, Optional, Tuple

import msgspec
from flask import Blueprint, Response, current_app, jsonify, request, url_for
from sqlalchemy import text

from greenflame.analyzer.model import Profile, ProfileError
from greenflame.analyzer.report import analyze_profile
from greenflame.analyzer.rules import get_rule
from greenflame.analyzer.tree import SampleFilter, frame_match

from . import views
from .access import visible
from .context import get_settings
from .deploys import group_deploys
from .errors import ApiError
from .overview import group_overview
from .queries import (
    RangeProfile,
    focus_args,
    label_args,
    merged_range,
    range_question,
    require_group,
    sample_filter,
    sample_type_arg,
)
from .rollups import get_rollups, series_step_ns, timeseries
from .storage import GroupExistsError, GroupSummary, get_storage
from .timely import age_header, get_timely_reads, in_app_context
from .timerange import parse_range
from .views import BOTTOM_UP, TOP_DOWN

bp = Blueprint("api", __name__, url_prefix="/api/v1")

GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
GROUP_NAME_RULE = "1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit"
MAX_NODES_LIMIT = 100_000
MAX_FUNCTIONS_LIMIT = 20_000
MAX_SERIES_BUCKETS = 5000


@bp.get("/health")
def health() -> Any:
    """200 when the database answers."""
    with get_storage().engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return jsonify({"status": "ok"})


@bp.post("/groups")
def create_group() -> Any:
    """Create a profiling group and return its ingest key (shown only here)."""
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
    """Every group with its profile count and the time span of its profiles.

    ``overview=1`` adds each group's activity, open findings with their cost, and anomalies
    (the groups list's one request).
    """
    with_overview = request.args.get("overview", "").lower() in ("1", "true", "yes")
    groups = []
    for group in visible(get_storage().list_groups()):
        item = group_json(group)
        if with_overview:
            item["overview"] = group_overview(group)
        groups.append(item)
    return jsonify({"groups": groups})


@bp.get("/groups/<name>")
def get_group(name: str) -> Any:
    """One group's summary."""
    return jsonify(group_json(require_group(name)))


@bp.get("/groups/<name>/flamegraph")
def group_flamegraph(name: str) -> Any:
    """The flame graph of the group's profiles in ``from``..``to`` for ``type`` cpu or wall.

    ``view`` is ``top-down`` (default) or ``bottom-up`` (hotspots); ``focus`` keeps only
    stacks through that function; each ``label=key=value`` keeps only samples with it.
    """
    sample_type = sample_type_arg()
    max_nodes = _int_arg("max_nodes", 5000, 2, MAX_NODES_LIMIT)
    view = request.args.get("view") or TOP_DOWN
    if view not in (TOP_DOWN, BOTTOM_UP):
        raise ApiError(400, "invalid_parameter", "view must be top-down or bottom-up")
    labels, focus = label_args(), focus_args()
    question = range_question(name, full=bool(labels))
    label_key = tuple(sorted(labels.items()))

    def answer() -> bytes:
        selected = question.merged()
        keep = sample_filter(labels, focus)

        def build() -> bytes:
            try:
                return _dumps(views.flamegraph_view(selected.profile, sample_type, max_nodes, view, keep))
            except ProfileError as error:
                raise ApiError(400, "invalid_parameter", str(error)) from None

        tree = _cached(("flamegraph", selected.key, sample_type, max_nodes, view, focus, label_key), build)
        envelope = {**_range_json(selected), "type": sample_type, "view": view}
        return _json_body(envelope, {"flamegraph": tree})

    return _timely(("flamegraph", question, sample_type, max_nodes, view, focus, label_key), answer)


@bp.get("/groups/<name>/sandwich")
def group_sandwich(name: str) -> Any:
    """Callers and callees of one function (``function``, optional ``file`` and ``line``)."""
    function = request.args.get("function")
    if not function:
        raise ApiError(400, "invalid_parameter", "function is required")
    file = request.args.get("file")
    line = _int_arg("line", -1, -1, 2**31) if request.args.get("line") else None
    sample_type = sample_type_arg()
    max_nodes = _int_arg("max_nodes", 2000, 2, MAX_NODES_LIMIT)
    labels = label_args()
    question = range_question(name, full=bool(labels))
    label_key = tuple(sorted(labels.items()))

    def answer() -> bytes:
        selected = question.merged()

        def build() -> bytes:
            keep = sample_filter(labels, None)
            match = frame_match(function, file, line)
            return _dumps(views.sandwich_view(selected.profile, sample_type, match, max_nodes, keep))

        body = _cached(("sandwich", selected.key, sample_type, max_nodes, function, file, line, label_key), build)
        envelope = {**_range_json(selected), "type": sample_type, "function": function}
        return _json_body(envelope, {"sandwich": body})

    return _timely(("sandwich", question, sample_type, max_nodes, function, file, line, label_key), answer)


@bp.get("/groups/<name>/functions")
def group_functions(name: str) -> Any:
    """Every function's self and total value in the range (the table beside the flame graph)."""
    sample_type = sample_type_arg()
    limit = _int_arg("limit", 1000, 1, MAX_FUNCTIONS_LIMIT)
    labels, focus = label_args(), focus_args()
    question = range_question(name, full=bool(labels))
    label_key = tuple(sorted(labels.items()))

    def answer() -> bytes:
        selected = question.merged()
        keep = sample_filter(labels, focus)
        body = _cached(
            ("functions", selected.key, sample_type, limit, focus, label_key),
            lambda: _dumps(views.functions_view(selected.profile, sample_type, limit, keep)),
        )
        return _json_body({**_range_json(selected), "type": sample_type}, {"functions": body})

    return _timely(("functions", question, sample_type, limit, focus, label_key), answer)


@bp.get("/groups/<name>/diff")
def group_diff(name: str) -> Any:
    """The diff flame graph of ``base_from``..``base_to`` (of ``base_group``) against ``from``..``to``."""
    max_nodes = _int_arg("max_nodes", 5000, 2, MAX_NODES_LIMIT)
    return _diff_answer(name, "flamegraph", views.diff_view, max_nodes)


@bp.get("/groups/<name>/diff/functions")
def group_diff_functions(name: str) -> Any:
    """The diff as a table: each function's share in both ranges, by the largest change first."""
    limit = _int_arg("limit", 200, 1, MAX_FUNCTIONS_LIMIT)
    return _diff_answer(name, "diff", views.functions_diff_view, limit)


@dataclass
class _DiffSides:
    """A comparison's two merged ranges, sample type and label filter, as the request names them."""

    base: RangeProfile
    target: RangeProfile
    sample_type: str
    labels: Dict[str, str]
    keep: Optional[SampleFilter]

    @property
    def key(self) -> Tuple[Hashable, ...]:
        return (self.base.key, self.target.key, self.sample_type, tuple(sorted(self.labels.items())))

    def envelope(self) -> Dict[str, Any]:
        return {"type": self.sample_type, "base": _range_json(self.base), "target": _range_json(self.target)}


DiffView = Callable[[Profile, Profile, str, int, Optional[SampleFilter]], Any]


def _diff_answer(name: str, part: str, view: DiffView, size: int) -> Response:
    """The comparison's range facts with ``view(base, target, type, size, keep)`` as ``part``, cached."""
    sides = _diff_sides(name)
    base, target = sides.base.profile, sides.target.profile
    key = (f"diff-{part}", *sides.key, size)
    body = _cached(key, lambda: _dumps(view(base, target, sides.sample_type, size, sides.keep)))
    return _json_with(sides.envelope(), {part: body})


def _diff_sides(name: str) -> _DiffSides:
    """The compared side is ``name`` over ``from``..``to``; the base ``base_group`` (default ``name``)."""
    sample_type = sample_type_arg()
    labels = label_args()
    target = merged_range(name, full=bool(labels))
    base = merged_range(request.args.get("base_group") or name, "base_from", "base_to", full=bool(labels))
    return _DiffSides(base, target, sample_type, labels, sample_filter(labels, None))


@bp.get("/rules/<rule_id>")
def get_rule_entry(rule_id: str) -> Any:
    """One rule's catalogue entry: what it looks for, the fix, and a before/after code example."""
    try:
        rule = get_rule(rule_id)
    except KeyError:
        raise ApiError(404, "not_found", f"there is no rule {rule_id!r}") from None
    return jsonify(
        {
            "id": rule.id,
            "title": rule.title,
            "description": rule.description,
            "target_frames": list(rule.target_frames),
            "context": rule.context,
            "threshold_share": rule.threshold_share,
            "expected_share": rule.expected_share,
            "fix": rule.fix,
            "bad_example": rule.bad_example,
            "good_example": rule.good_example,
        }
    )


@bp.get("/groups/<name>/timeseries")
def group_timeseries(name: str) -> Any:
    """CPU and wall samples per time bucket, for the range chart (``step`` seconds, else chosen)."""
    group = require_group(name)
    start_ns, end_ns = parse_range(request.args.get("from"), request.args.get("to"))
    last = group.last_seen_unix_ns or time.time_ns()
    end_ns = end_ns if end_ns is not None else last + 1
    start_ns = start_ns if start_ns is not None else min(group.first_seen_unix_ns or end_ns - 3600 * 10**9, end_ns - 1)
    step_s = _int_arg("step", 0, 0, 366 * 86400)
    step_ns = step_s * 10**9 if step_s else series_step_ns(start_ns, end_ns)
    if (end_ns - start_ns) // step_ns > MAX_SERIES_BUCKETS:
        raise ApiError(
            400, "invalid_parameter", f"step gives more than {MAX_SERIES_BUCKETS} points; choose a longer step"
        )
    points = timeseries(get_storage(), name, start_ns, end_ns, step_ns)
    return jsonify(
        {"group": name, "from_unix_ns": start_ns, "to_unix_ns": end_ns, "step_ns": step_ns, "points": points}
    )


@bp.get("/groups/<name>/labels")
def group_labels(name: str) -> Any:
    """The label keys of the range's samples and their most common values."""
    question = range_question(name)

    def answer() -> bytes:
        selected = question.merged()
        body = _cached(("labels", selected.key), lambda: _dumps(views.labels_view(selected.profile)))
        return _json_body(_range_json(selected), {"labels": body})

    return _timely(("labels", question), answer)


@bp.get("/groups/<name>/deploys")
def group_deploy_list(name: str) -> Any:
    """The deploy versions seen in the group's newest profiles, with first and last seen, newest first."""
    require_group(name)
    found = group_deploys(get_storage(), name, get_settings().max_query_profiles)
    return jsonify(
        {
            "group": name,
            "deploys": [deploy.to_dict() for deploy in found.deploys],
            "profiles_scanned": found.scanned,
            "complete": found.complete,
        }
    )


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
    return jsonify({**report.to_dict(), **_range_json(selected)})


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
        "sample_period_ns": selected.profile.sample_period_ns,
    }


#: JSON as compact as ``json.dumps(separators=(",", ":"), ensure_ascii=False)`` writes it, several
#: times faster on a flame graph; a non-finite float is written null, not NaN (which is not JSON).
_ENCODER = msgspec.json.Encoder()


def _dumps(value: Any) -> bytes:
    return _ENCODER.encode(value)


def _cached(key: Hashable, build: Callable[[], bytes]) -> bytes:
    return get_rollups(get_storage()).response(key, build)


def _json_with(envelope: Dict[str, Any], parts: Dict[str, bytes]) -> Response:
    """``envelope`` as JSON with already-encoded JSON ``parts`` added as keys (no re-encoding)."""
    return current_app.response_class(_json_body(envelope, parts), mimetype="application/json")


def _json_body(envelope: Dict[str, Any], parts: Dict[str, bytes]) -> bytes:
    body = _dumps(envelope)[:-1]
    for key, encoded in parts.items():
        body += b"," + _dumps(key) + b":" + encoded
    return body + b"}"


def _timely(key: Hashable, answer: Callable[[], bytes]) -> Response:
    """The JSON body ``answer()`` makes, or the last one for ``key`` when a fresh one is late
    (:mod:`.timely`; ``Cache-Control: no-cache`` waits for a fresh one)."""
    fresh = "no-cache" in request.headers.get("Cache-Control", "").lower()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    made, age_s = get_timely_reads().answer(key, in_app_context(app, answer), fresh)
    gzipped = made.gzipped is not None and request.accept_encodings["gzip"] > 0
    response = current_app.response_class(made.gzipped if gzipped else made.body, mimetype="application/json")
    if gzipped:  # compressed once per answer, on the helper thread (Flask-Compress leaves it)
        response.headers["Content-Encoding"] = "gzip"
    age = age_header(age_s)
    if age is not None:
        response.headers["Age"] = age
    return response


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
