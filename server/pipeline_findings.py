"""Finding states across analysis runs, stored per group: the server side of
:mod:`greenflame.analyzer.finding_state`.

The analyzer decides the transitions (new, ongoing, resolved after several quiet analyses,
reopened); this module maps its records to and from the stored :class:`FindingState` rows,
keyed by the same fingerprint key the tickets use. The analysis time is the data's time (the
end of the group's latest profile), so late or replayed profiles change nothing and a
backfill resolves findings the way live traffic would.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Sequence

from greenflame.analyzer.finding_state import NEW, ONGOING, REOPENED, RESOLVED, ResolvePolicy, update_states
from greenflame.analyzer.rules.finding import Finding

from .pipeline_store import FindingState
from .tickets.models import fingerprint_key

log = logging.getLogger(__name__)

STATES = (NEW, ONGOING, RESOLVED, REOPENED)
__all__ = ["NEW", "ONGOING", "REOPENED", "RESOLVED", "STATES", "changed_to", "next_states"]


def next_states(
    group: str,
    previous: Sequence[FindingState],
    findings: Sequence[Finding],
    now_s: float,
    *,
    policy: ResolvePolicy = ResolvePolicy(),
    rules_evaluated: Optional[Sequence[str]] = None,
) -> List[FindingState]:
    """Every finding's state after an analysis at ``now_s`` (Unix seconds) that reported ``findings``."""
    usable = [f for f in findings if f.fingerprint]
    if len(usable) != len(findings):
        log.warning("group %r: %d finding(s) without a fingerprint ignored", group, len(findings) - len(usable))
    before = {state.fingerprint: state for state in previous}
    records = update_states(
        {fp: state.record for fp, state in before.items()},
        usable,
        now_s,
        policy=policy,
        rules_evaluated=rules_evaluated,
    )
    current = {f.fingerprint: f for f in usable}
    out = []
    for fingerprint, record in records.items():
        finding = current[fingerprint] if fingerprint in current else before[fingerprint].finding
        out.append(_state(group, fingerprint, record, finding))
    return out


def changed_to(previous: Sequence[FindingState], states: Sequence[FindingState], wanted: Sequence[str]) -> int:
    """How many findings moved into one of the ``wanted`` states in this analysis."""
    before = {state.key: state.state for state in previous}
    return sum(1 for s in states if s.state in wanted and before.get(s.key) != s.state)


def _ns(seconds: Any) -> Optional[int]:
    return None if seconds is None else round(float(seconds) * 1e9)


def _state(group: str, fingerprint: str, record: Dict[str, Any], finding: Finding) -> FindingState:
    return FindingState(
        group=group,
        key=fingerprint_key(group, fingerprint),
        fingerprint=fingerprint,
        rule=str(record.get("rule") or finding.rule or "finding"),
        title=str(record.get("title") or finding.title or record.get("rule") or "finding"),
        state=str(record["state"]),
        first_seen_unix_ns=_ns(record["first_seen"]) or 0,
        last_seen_unix_ns=_ns(record["last_seen"]) or 0,
        resolved_unix_ns=_ns(record.get("resolved_at")) if record["state"] == RESOLVED else None,
        finding=finding,
        record=record,
    )
