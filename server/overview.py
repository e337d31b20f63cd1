"""What the groups list shows of each group in one request: activity, open findings, cost, anomalies.

The list used to fetch three documents per group; :func:`group_overview` gathers them on the
server so the page makes one call and can rank groups by what their findings cost.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from .pipeline_store import FindingState
from .pipeline_worker import get_pipeline
from .rollups import timeseries
from .storage import GroupSummary, get_storage

OPEN_STATES = ("new", "ongoing", "reopened")
ACTIVITY_SPAN_NS = 86_400 * 10**9
ACTIVITY_STEP_NS = 900 * 10**9


def group_overview(group: GroupSummary) -> Dict[str, Any]:
    """The group's CPU activity over its last day of data and its open findings' totals."""
    store = get_pipeline().store
    open_findings = [s for s in store.finding_states(group.name) if s.state in OPEN_STATES]
    return {
        "open_findings": len(open_findings),
        "cost_usd_per_month": _sum(open_findings, "cost_usd_per_month"),
        "co2e_kg_per_month": _sum(open_findings, "co2e_kg_per_month"),
        "anomalies": len(store.anomalies(group.name)),
        "activity": _activity(group),
    }


def _sum(states: List[FindingState], key: str) -> Optional[float]:
    values = [getattr(s.finding, key) for s in states]
    known = [value for value in values if isinstance(value, (int, float))]
    return float(sum(known)) if known else None


def _activity(group: GroupSummary) -> Dict[str, Any]:
    """CPU samples per 15 minutes over the last day of the group's data (none: no data yet)."""
    if not group.last_seen_unix_ns:
        return {"from_unix_ns": None, "to_unix_ns": None, "points": []}
    end = group.last_seen_unix_ns + 1
    start = end - ACTIVITY_SPAN_NS
    points = timeseries(get_storage(), group.name, start, end, ACTIVITY_STEP_NS)
    cpu = [{"start_unix_ns": point["start_unix_ns"], "cpu": point["cpu"]} for point in points]
    return {"from_unix_ns": start, "to_unix_ns": end, "points": cpu}
