"""The state of each finding across analyses: new, ongoing, resolved, reopened.

Pure functions over JSON-serialisable records keyed by fingerprint. The caller (the server's
analysis pipeline) stores the records between analyses and calls :func:`update_states` once
per analysis of a group with that analysis' :class:`~.rules.finding.Finding` objects and its time.

States, after an analysis at time ``now``:

- ``new``: first seen in this analysis;
- ``ongoing``: open and seen before (whether or not it is in this analysis: a finding is not
  resolved by one quiet window);
- ``resolved``: absent from at least ``policy.min_missed`` consecutive analyses *and* not seen
  for at least ``policy.min_quiet_s`` seconds (both: several analyses in quick succession do not
  resolve a pattern, and neither does one long gap between two analyses);
- ``reopened``: seen again after being resolved (``ongoing`` from the next analysis on).

An analysis no later than a record's last update (``updated_at``: a replayed or late profile)
never changes its state or numbers; it only widens ``first_seen``, so applying the same analysis
twice changes nothing. Rules that did not run (``rules_evaluated``)
leave their records untouched: absence is only evidence when the rule looked.

Times are Unix seconds (floats), in the fields ``first_seen``, ``last_seen``, ``resolved_at``,
``reopened_at`` and ``updated_at``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence

from .rules.finding import Finding

NEW = "new"
ONGOING = "ongoing"
RESOLVED = "resolved"
REOPENED = "reopened"
STATES = (NEW, ONGOING, RESOLVED, REOPENED)
OPEN_STATES = (NEW, ONGOING, REOPENED)

#: The figures of the finding kept in ``last`` (those a ticket or a chart shows).
LAST_FIELDS = (
    "share",
    "expected_share",
    "times_expected",
    "samples",
    "scope_samples",
    "sample_type",
    "wasted_ms_per_invocation",
    "cost_usd_per_month",
    "co2e_kg_per_month",
    "co2e_kg_per_month_range",
    "sci_g_per_invocation",
    "sci_g_per_request",
)

StateRecord = Dict[str, Any]


@dataclass(frozen=True)
class ResolvePolicy:
    """When a finding that stopped appearing counts as resolved, and when a record is forgotten.

    Defaults: three consecutive analyses without it and one hour since it was last seen
    (agents report every minute or so, so three analyses is a few minutes of data, and the
    hour covers hourly batch traffic). ``forget_after_s``: resolved records older than this
    are dropped (None keeps them; a forgotten finding that comes back is ``new``).
    """

    min_missed: int = 3
    min_quiet_s: float = 3600.0
    forget_after_s: Optional[float] = None

    def __post_init__(self) -> None:
        if self.min_missed < 1:
            raise ValueError(f"min_missed must be at least 1, got {self.min_missed}")
        if not self.min_quiet_s >= 0:
            raise ValueError(f"min_quiet_s must not be negative, got {self.min_quiet_s}")
        if self.forget_after_s is not None and not self.forget_after_s >= 0:
            raise ValueError(f"forget_after_s must not be negative, got {self.forget_after_s}")


def is_open(record: Mapping[str, Any]) -> bool:
    """Whether the finding is still open (new, ongoing or reopened)."""
    return record.get("state") in OPEN_STATES


def update_states(
    previous: Mapping[str, Mapping[str, Any]],
    findings: Sequence[Finding],
    now: float,
    *,
    policy: ResolvePolicy = ResolvePolicy(),
    rules_evaluated: Optional[Iterable[str]] = None,
) -> Dict[str, StateRecord]:
    """The records after an analysis at ``now`` (Unix seconds) that produced ``findings``.

    ``previous`` is left unchanged. Each finding needs a non-empty ``fingerprint``; when two
    findings share a fingerprint the one with the larger share is kept.
    Raises ValueError for a non-finite or negative time or a finding without a fingerprint.
    """
    if not isinstance(now, (int, float)) or isinstance(now, bool) or not math.isfinite(now) or now < 0:
        raise ValueError(f"analysis time must be finite Unix seconds, got {now!r}")
    evaluated = None if rules_evaluated is None else set(rules_evaluated)
    current = _by_fingerprint(findings)
    states: Dict[str, StateRecord] = {}
    for fingerprint, old in previous.items():
        record = dict(old)
        if fingerprint in current:
            states[fingerprint] = _seen(record, current[fingerprint], now)
        elif evaluated is None or record.get("rule") in evaluated:
            states[fingerprint] = _missed(record, now, policy)
        else:
            states[fingerprint] = record
    for fingerprint, finding in current.items():
        if fingerprint not in states:
            states[fingerprint] = _first(fingerprint, finding, now)
    return _forget(states, now, policy)


def _by_fingerprint(findings: Sequence[Finding]) -> Dict[str, Finding]:
    chosen: Dict[str, Finding] = {}
    for finding in findings:
        if not finding.fingerprint:
            raise ValueError(f"finding of rule {finding.rule!r} has no fingerprint")
        other = chosen.get(finding.fingerprint)
        if other is None or finding.share > other.share:
            chosen[finding.fingerprint] = finding
    return chosen


def _last(finding: Finding) -> Dict[str, Any]:
    """The figures kept in the record, in their JSON form."""
    data = finding.to_dict()
    return {key: data[key] for key in LAST_FIELDS if key in data}


def _first(fingerprint: str, finding: Finding, now: float) -> StateRecord:
    return {
        "fingerprint": fingerprint,
        "rule": finding.rule,
        "title": finding.title,
        "state": NEW,
        "first_seen": now,
        "last_seen": now,
        "resolved_at": None,
        "reopened_at": None,
        "times_reopened": 0,
        "missed_analyses": 0,
        "analyses_seen": 1,
        "updated_at": now,
        "last": _last(finding),
    }


def _late(record: Mapping[str, Any], now: float) -> bool:
    """An analysis no later than the record's last update: a replay or a late profile."""
    return now <= record.get("updated_at", record["last_seen"])


def _seen(record: StateRecord, finding: Finding, now: float) -> StateRecord:
    if _late(record, now):
        record["first_seen"] = min(record["first_seen"], now)
        return record
    if record["state"] == RESOLVED:
        record.update(state=REOPENED, reopened_at=now, times_reopened=record.get("times_reopened", 0) + 1)
    else:
        record["state"] = ONGOING
    record.update(
        title=finding.title,
        last_seen=now,
        missed_analyses=0,
        analyses_seen=record.get("analyses_seen", 0) + 1,
        updated_at=now,
        last=_last(finding),
    )
    return record


def _missed(record: StateRecord, now: float, policy: ResolvePolicy) -> StateRecord:
    if record["state"] == RESOLVED or _late(record, now):
        return record
    record["missed_analyses"] = record.get("missed_analyses", 0) + 1
    record["updated_at"] = now
    quiet = now - record["last_seen"]
    if record["missed_analyses"] >= policy.min_missed and quiet >= policy.min_quiet_s:
        record.update(state=RESOLVED, resolved_at=now)
    else:
        record["state"] = ONGOING
    return record


def _forget(states: Dict[str, StateRecord], now: float, policy: ResolvePolicy) -> Dict[str, StateRecord]:
    limit = policy.forget_after_s
    if limit is None:
        return states
    return {
        key: record
        for key, record in states.items()
        if not (record["state"] == RESOLVED and now - (record.get("resolved_at") or now) > limit)
    }
