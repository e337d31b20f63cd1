"""The web UI: the groups list and one group's flame graph and recommendations.

Pages are rendered by Jinja with autoescaping; the flame graph and recommendations are
fetched from the API by the page's scripts, which only ever insert text (never HTML).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from flask import Blueprint, abort, render_template

from .storage import get_storage

bp = Blueprint("web", __name__)


@bp.get("/")
def index() -> str:
    """The list of groups."""
    return render_template("index.html", groups=get_storage().list_groups())


@bp.get("/groups/<name>")
def group_page(name: str) -> str:
    """One group's flame graph and recommendations."""
    group = get_storage().get_group(name)
    if group is None:
        abort(404, f"There is no group called {name!r}.")
    return render_template("group.html", group=group)


@bp.app_template_filter("utc")
def format_utc(unix_ns: Optional[int]) -> str:
    """Unix nanoseconds as ``YYYY-MM-DD HH:MM:SS UTC``; an em dash when unknown."""
    if not unix_ns:
        return "\u2014"
    moment = datetime.fromtimestamp(unix_ns / 1e9, tz=timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
