"""The web UI: groups, a group's flame graph, comparisons, findings and anomalies.

Pages are rendered by Jinja with autoescaping and carry no data beyond names and URLs;
the page scripts fetch everything else from the API and only ever insert text (never HTML).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from flask import Blueprint, abort, current_app, render_template

from .storage import GroupSummary, get_storage

bp = Blueprint("web", __name__)


@bp.get("/")
def index() -> str:
    """The list of groups with their activity, open findings and anomalies."""
    return render_template("index.html", groups=get_storage().list_groups(), pipeline=_has_pipeline())


@bp.get("/groups/<name>")
def group_page(name: str) -> str:
    """One group's range chart, flame graph, functions table and recommendations."""
    return render_template("group.html", group=_group(name))


@bp.get("/groups/<name>/compare")
def compare_page(name: str) -> str:
    """A diff flame graph of two ranges, or of two groups (the URL holds both)."""
    return render_template("compare.html", group=_group(name))


@bp.get("/groups/<name>/findings")
def findings_page(name: str) -> str:
    """The group's findings with cost, CO2e and evidence."""
    return render_template("findings.html", group=_group(name), pipeline=_has_pipeline())


@bp.get("/groups/<name>/anomalies")
def anomalies_page(name: str) -> str:
    """The group's anomalies, each opening the comparison around it."""
    return render_template("anomalies.html", group=_group(name), pipeline=_has_pipeline())


def _has_pipeline() -> bool:
    """Whether the analysis pipeline's findings and anomalies endpoints are served here."""
    return "pipeline.group_findings" in current_app.view_functions


def _group(name: str) -> GroupSummary:
    group = get_storage().get_group(name)
    if group is None:
        abort(404, f"There is no group called {name!r}.")
    return group


@bp.app_template_filter("utc")
def format_utc(unix_ns: Optional[int]) -> str:
    """Unix nanoseconds as ``YYYY-MM-DD HH:MM:SS UTC``; an em dash when unknown."""
    if not unix_ns:
        return "\u2014"
    moment = datetime.fromtimestamp(unix_ns / 1e9, tz=timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
