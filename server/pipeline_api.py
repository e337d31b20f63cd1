"""The pipeline's API under /api/v1: findings with state, anomalies and feedback, channels, tickets.

Errors are the API's JSON errors (:mod:`.errors`). Reads need read scope, feedback a signed-in
reader or token of the anomaly's group, channels admin scope (:data:`.access.RULES`); stored
credentials are never sent back.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

from flask import Blueprint, jsonify, request, url_for

from greenflame.analyzer.anomalies import Anomaly

from .access import require_visible, visible
from .auth import FEEDBACK, take
from .errors import ApiError
from .pipeline_channels import public_channels, validate_channels
from .pipeline_findings import STATES
from .pipeline_store import FindingState, StoredAnomaly
from .pipeline_worker import get_pipeline
from .queries import require_group
from .tickets.config import ChannelConfigError
from .tickets.store import TicketLink

bp = Blueprint("pipeline", __name__, url_prefix="/api/v1")

_ANOMALY_ID = re.compile(r"^[0-9a-f]{32}$")
_ACTIVE_FIRST = {"new": 0, "reopened": 0, "ongoing": 1, "resolved": 2}


@bp.get("/groups/<name>/findings")
def group_findings(name: str) -> Any:
    """Every finding of the group with its state across runs and its tickets; ``state`` filters."""
    require_group(name)
    wanted = _states_arg()
    service = get_pipeline()
    links = _links_by_key(service.tickets.links(name))
    states = [s for s in service.store.finding_states(name) if wanted is None or s.state in wanted]
    states.sort(key=lambda s: (_ACTIVE_FIRST.get(s.state, 3), -(s.finding.cost_usd_per_month or 0.0)))
    return jsonify(
        {
            "group": name,
            "analysis": analysis_json(name),
            "findings": [finding_json(s, links.get(s.key, [])) for s in states],
        }
    )


@bp.get("/groups/<name>/anomalies")
def group_anomalies(name: str) -> Any:
    """The anomalies the latest run reported (``all=true``: also earlier ones it no longer reports)."""
    require_group(name)
    everything = request.args.get("all", "").lower() in ("1", "true", "yes")
    store = get_pipeline().store
    votes = store.vote_counts(name)
    found = store.anomalies(name, current_only=not everything)
    return jsonify(
        {"group": name, "analysis": analysis_json(name), "anomalies": [anomaly_json(a, votes) for a in found]}
    )


@bp.post("/anomalies/<anomaly_id>/feedback")
def anomaly_feedback(anomaly_id: str) -> Any:
    """Record ``{"useful": true|false}`` on an anomaly; the group is re-analysed with it."""
    take(FEEDBACK)  # each vote forces a re-analysis: a client may not vote without limit
    service = get_pipeline()
    anomaly = service.store.anomaly(anomaly_id) if _ANOMALY_ID.match(anomaly_id) else None
    missing = f"there is no anomaly {anomaly_id!r}"
    if anomaly is None:
        raise ApiError(404, "not_found", missing)
    require_visible(anomaly.group, missing)  # another group's anomaly looks like no anomaly
    body = request.get_json(silent=True)
    useful = body.get("useful") if isinstance(body, dict) else None
    if not isinstance(useful, bool):
        raise ApiError(400, "bad_request", 'send a JSON object such as {"useful": false}')
    service.store.add_vote(anomaly, useful)
    service.request_run(anomaly.group, force=True)
    votes = service.store.vote_counts(anomaly.group)
    response = jsonify(anomaly_json(anomaly, votes))
    response.status_code = 201
    return response


@bp.get("/groups/<name>/channels")
def get_channels(name: str) -> Any:
    """The group's ticket destinations, without credentials (admin scope)."""
    require_group(name)
    return jsonify({"group": name, "channels": public_channels(get_pipeline().store.channels(name))})


@bp.put("/groups/<name>/channels")
def put_channels(name: str) -> Any:
    """Replace the group's ticket destinations (admin scope); tickets are synced on the next run, at once."""
    require_group(name)
    try:
        channels = validate_channels(request.get_json(silent=True))
    except ChannelConfigError as error:
        raise ApiError(400, "invalid_channels", str(error)) from None
    service = get_pipeline()
    service.store.set_channels(name, channels)
    service.request_run(name, force=True)
    return jsonify({"group": name, "channels": public_channels(channels)})


@bp.get("/tickets")
def tickets() -> Any:
    """Every ticket greenflame keeps (``group`` filters), with its delivery status."""
    group = request.args.get("group") or None
    require_visible(group, f"there is no group {group!r}")
    return jsonify({"tickets": [ticket_json(link) for link in visible(get_pipeline().tickets.links(group))]})


# -- JSON forms -----------------------------------------------------------------


def iso_ns(unix_ns: Optional[int]) -> Optional[str]:
    """``2026-05-09T14:05:00Z`` from Unix nanoseconds (None stays None)."""
    if unix_ns is None:
        return None
    return datetime.fromtimestamp(unix_ns / 1e9, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def analysis_json(group: str) -> Dict[str, Any]:
    """When the group was last analysed, how that went, and whether a run is waiting."""
    state = get_pipeline().store.state(group) or {}
    return {
        "runs": state.get("runs", 0),
        "last_started": iso_ns(state.get("last_started_unix_ns")),
        "last_finished": iso_ns(state.get("last_finished_unix_ns")),
        "last_error": state.get("last_error"),
        "running": state.get("lease_owner") is not None,
        "summary": state.get("summary"),
    }


def finding_json(state: FindingState, links: List[TicketLink]) -> Dict[str, Any]:
    """A finding with its state, times and tickets."""
    return {
        "fingerprint": state.fingerprint,
        "rule": state.rule,
        "title": state.title,
        "state": state.state,
        "first_seen": iso_ns(state.first_seen_unix_ns),
        "last_seen": iso_ns(state.last_seen_unix_ns),
        "resolved": iso_ns(state.resolved_unix_ns),
        "first_seen_unix_ns": state.first_seen_unix_ns,
        "last_seen_unix_ns": state.last_seen_unix_ns,
        "resolved_unix_ns": state.resolved_unix_ns,
        "analyses_seen": state.record.get("analyses_seen"),
        "missed_analyses": state.record.get("missed_analyses"),
        "times_reopened": state.record.get("times_reopened"),
        "finding": state.finding.to_dict(),
        "tickets": [ticket_json(link) for link in links],
    }


def anomaly_json(stored: StoredAnomaly, votes: Dict[str, Dict[str, int]]) -> Dict[str, Any]:
    """The detector's anomaly with its id, whether the latest run reported it, and its feedback."""
    return {
        **stored.anomaly.to_dict(),
        "id": stored.id,
        "current": stored.current,
        "first_reported": iso_ns(stored.first_reported_unix_ns),
        "last_reported": iso_ns(stored.last_reported_unix_ns),
        "feedback": votes.get(stored.id, {"useful": 0, "not_useful": 0}),
        "compare_url": _compare_url(stored.anomaly),
    }


def _compare_url(anomaly: Anomaly) -> Optional[str]:
    """The web UI's diff of the time before the anomaly with its window, for links from tickets."""
    if not anomaly.group:
        return None
    ranges = anomaly.compare()
    before, after = ranges["before"], ranges["after"]
    return url_for(
        "web.compare_page",
        name=anomaly.group,
        base_from=before["start"],
        base_to=before["end"],
        _external=False,
        **{"from": after["start"], "to": after["end"]},
    )


def ticket_json(link: TicketLink) -> Dict[str, Any]:
    """A ticket link's status: where it is, its state, what was last done and the last failure."""
    return {
        "group": link.group,
        "channel": link.channel,
        "fingerprint": link.fingerprint,
        "rule": link.rule,
        "title": link.title,
        "ticket_id": link.ticket_id,
        "url": link.url,
        "state": link.state,
        "last_action": link.last_action,
        "error": link.last_error,
        "failures": link.attempts,
        "next_attempt": iso_ns(link.next_attempt_unix_ns),
        "updated": iso_ns(link.updated_unix_ns),
    }


def _links_by_key(links: List[TicketLink]) -> Dict[str, List[TicketLink]]:
    out: Dict[str, List[TicketLink]] = {}
    for link in links:
        out.setdefault(link.fingerprint_key, []).append(link)
    return out


def _states_arg() -> Optional[set]:
    raw = request.args.get("state")
    if not raw:
        return None
    wanted = {part.strip() for part in raw.split(",") if part.strip()}
    unknown = wanted - set(STATES)
    if unknown:
        raise ApiError(400, "invalid_parameter", f"state must be a comma-separated list of {', '.join(STATES)}")
    return wanted
