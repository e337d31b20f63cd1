"""Finding states across analysis runs: new, ongoing, resolved, reopened.

The transitions (one run's findings against the stored states):

- a fingerprint seen for the first time is ``new``;
- one seen again while new, ongoing or reopened is ``ongoing``;
- one seen again after it was resolved is ``reopened``;
- one no longer reported is ``resolved`` (it stays resolved, with its last numbers, until it returns).

``first_seen`` is the first run that reported it, ``last_seen`` the latest; ``resolved`` the run
that stopped reporting it. All times are the run's time in Unix nanoseconds.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Dict, List, Mapping, Optional, Sequence

from .pipeline_store import FindingState
from .tickets.models import fingerprint_key

NEW, ONGOING, RESOLVED, REOPENED = "new", "ongoing", "resolved", "reopened"
STATES = (NEW, ONGOING, RESOLVED, REOPENED)


def next_states(
    group: str, previous: Sequence[FindingState], findings: Sequence[Mapping[str, Any]], now_ns: int
) -> List[FindingState]:
    """The states after a run that reported ``findings``; only rows that changed or are current."""
    before: Dict[str, FindingState] = {state.key: state for state in previous}
    current = _current(group, findings)
    out: List[FindingState] = []
    for key, finding in current.items():
        out.append(_seen(group, key, finding, before.get(key), now_ns))
    for key, state in before.items():
        if key not in current and state.state != RESOLVED:
            out.append(replace(state, state=RESOLVED, resolved_unix_ns=now_ns))
    return out


def _current(group: str, findings: Sequence[Mapping[str, Any]]) -> Dict[str, Mapping[str, Any]]:
    """Findings by fingerprint key; a rule reporting one fingerprint twice counts once (the first)."""
    out: Dict[str, Mapping[str, Any]] = {}
    for finding in findings:
        fingerprint = finding.get("fingerprint")
        if isinstance(fingerprint, str) and fingerprint:
            out.setdefault(fingerprint_key(group, fingerprint), finding)
    return out


def _seen(group: str, key: str, finding: Mapping[str, Any], old: Optional[FindingState], now_ns: int) -> FindingState:
    if old is None:
        state, first_seen = NEW, now_ns
    else:
        state = REOPENED if old.state == RESOLVED else ONGOING
        first_seen = old.first_seen_unix_ns
    return FindingState(
        group=group,
        key=key,
        fingerprint=str(finding["fingerprint"]),
        rule=str(finding.get("rule") or "finding"),
        title=str(finding.get("title") or finding.get("rule") or "finding"),
        state=state,
        first_seen_unix_ns=first_seen,
        last_seen_unix_ns=now_ns,
        resolved_unix_ns=None,
        finding=dict(finding),
    )
