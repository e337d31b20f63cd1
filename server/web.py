"""The web UI: groups, a group's flame graph, comparisons, findings and anomalies, and their details.

Pages are rendered by Jinja with autoescaping and carry no data beyond names and URLs;
the page scripts fetch everything else from the API and only ever insert text (never HTML).
An unknown group, finding or anomaly gets a styled 404 page with a way back.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import NoReturn, Optional

from flask import Blueprint, abort, current_app, make_response, render_template, url_for

from .access import visible
from .context import get_settings
from .pipeline_worker import get_pipeline
from .storage import GroupSummary, get_storage

bp = Blueprint("web", __name__)


@bp.get("/")
def index() -> str:
    """The list of groups with their activity, open findings, their cost, and anomalies."""
    return render_template("index.html", groups=visible(get_storage().list_groups()), pipeline=_has_pipeline())


@bp.get("/groups/<name>")
def group_page(name: str) -> str:
    """One group's summary bar, range chart, flame graph, functions table and recommendations."""
    return render_template("group.html", group=_group(name), pipeline=_has_pipeline())


@bp.get("/groups/<name>/compare")
def compare_page(name: str) -> str:
    """A diff flame graph and table of two ranges, or of two groups (the URL holds both)."""
    return render_template("compare.html", group=_group(name))


@bp.get("/groups/<name>/findings")
def findings_page(name: str) -> str:
    """The group's findings with cost, CO2e and evidence."""
    return render_template("findings.html", group=_group(name), pipeline=_has_pipeline(), window_s=_window_s())


@bp.get("/groups/<name>/findings/<fingerprint>")
def finding_page(name: str, fingerprint: str) -> str:
    """One finding: what, where, why it costs (inputs and sources), the fix, history and tickets."""
    group = _group(name)
    known = _has_pipeline() and any(s.fingerprint == fingerprint for s in get_pipeline().store.finding_states(name))
    if not known:
        _not_found(f"There is no finding {fingerprint!r} in {name}.", url_for("web.findings_page", name=name))
    return render_template("finding.html", group=group, fingerprint=fingerprint, window_s=_window_s())


@bp.get("/groups/<name>/anomalies")
def anomalies_page(name: str) -> str:
    """The group's anomalies, each opening its detail and the comparison around it."""
    return render_template("anomalies.html", group=_group(name), pipeline=_has_pipeline())


@bp.get("/groups/<name>/anomalies/<anomaly_id>")
def anomaly_page(name: str, anomaly_id: str) -> str:
    """One anomaly: its window in local time, the score in words, and feedback buttons."""
    group = _group(name)
    anomaly = get_pipeline().store.anomaly(anomaly_id) if _has_pipeline() and _is_anomaly_id(anomaly_id) else None
    if anomaly is None or anomaly.group != name:
        _not_found(f"There is no anomaly {anomaly_id!r} in {name}.", url_for("web.anomalies_page", name=name))
    return render_template("anomaly.html", group=group, anomaly_id=anomaly_id)


def _has_pipeline() -> bool:
    """Whether the analysis pipeline's findings and anomalies endpoints are served here."""
    return "pipeline.group_findings" in current_app.view_functions


def _window_s() -> int:
    """How much of a group's latest data each background analysis covers, in seconds."""
    return int(get_settings().analysis_window_s)


def _is_anomaly_id(text: str) -> bool:
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)


def _group(name: str) -> GroupSummary:
    group = get_storage().get_group(name)
    if group is None:
        _not_found(f"There is no group called {name!r}.", url_for("web.index"))
    return group


def _not_found(message: str, back: str) -> NoReturn:
    """Stop with the styled 404 page: the message and a link back to where to look instead."""
    abort(make_response(render_template("404.html", message=message, back=back), 404))


@bp.app_template_filter("utc")
def format_utc(unix_ns: Optional[int]) -> str:
    """Unix nanoseconds as ``YYYY-MM-DD HH:MM:SS UTC``; an em dash when unknown."""
    if not unix_ns:
        return "\u2014"
    moment = datetime.fromtimestamp(unix_ns / 1e9, tz=timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
