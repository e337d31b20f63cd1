"""The analysis report: every rule's findings on a profile, with totals, as one JSON document.

``analyze_profile`` is what the server, the pipeline and ``greenflame analyze`` call.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional

from .model import CPU, WALL, Profile
from .rules import AnalysisContext, all_rules, run_rules
from .tree import hotspots

REPORT_VERSION = 1
HOTSPOTS = 10
_LAMBDA_KEYS = ("function_name", "function_arn", "memory_size_mb", "architecture", "region", "runtime", "handler")


def analyze_profile(profile: Profile, **overrides: Any) -> Dict[str, Any]:
    """Run every rule on ``profile``; return the JSON-serialisable report.

    ``overrides`` are the fields of :class:`~greenflame.analyzer.rules.AnalysisContext`
    (``region``, ``invocations_per_month``, ``requests_per_month``, ``platform``,
    ``usd_per_vcpu_hour``); each overrides what the profile says. Raises ValueError for an
    invalid override and ProfileError for an inconsistent profile.
    """
    profile.validate()
    context = AnalysisContext(**overrides)
    findings = [finding.to_dict() for finding in run_rules(profile, context)]
    return {
        "version": REPORT_VERSION,
        "group": profile.group,
        "window": _window(profile),
        "samples": {t.name: profile.total(t.name) for t in profile.sample_types},
        "lambda": _lambda(profile.metadata),
        "invocations": _invocations(profile.metadata),
        "overrides": {key: value for key, value in asdict(context).items() if value is not None},
        "rules": [{"id": rule.id, "title": rule.title} for rule in all_rules()],
        "recommendations": findings,
        "totals": _totals(findings),
        "hotspots": hotspots(profile, CPU if profile.has_type(CPU) else WALL, HOTSPOTS),
    }


def _iso(unix_ns: int) -> str:
    return datetime.fromtimestamp(unix_ns / 1e9, tz=timezone.utc).isoformat(timespec="seconds")


def _window(profile: Profile) -> Dict[str, Any]:
    window: Dict[str, Any] = {
        "start_time_unix_ns": profile.start_time_unix_ns,
        "duration_ns": profile.duration_ns,
        "start": None,
        "end": None,
    }
    if profile.start_time_unix_ns > 0:
        window["start"] = _iso(profile.start_time_unix_ns)
        window["end"] = _iso(profile.start_time_unix_ns + max(profile.duration_ns, 0))
    return window


def _plain(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _lambda(metadata: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    raw = metadata.get("lambda")
    if not isinstance(raw, Mapping):
        return None
    return {key: raw[key] for key in _LAMBDA_KEYS if _plain(raw.get(key))}


def _invocations(metadata: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    raw = metadata.get("invocations")
    if not isinstance(raw, Mapping):
        return None
    out = {key: raw[key] for key in ("count", "cold_starts", "duration_ms_sum") if _plain(raw.get(key))}
    count, total = out.get("count"), out.get("duration_ms_sum")
    if isinstance(count, (int, float)) and count > 0 and isinstance(total, (int, float)):
        out["mean_duration_ms"] = total / count
    return out


def _totals(findings: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Sums over findings that have estimates (each finding's range adds up bound by bound)."""
    costed = [f for f in findings if f["cost_usd_per_month"] is not None]
    carbon = [f["co2e_kg_per_month_range"] for f in findings if f["co2e_kg_per_month_range"] is not None]
    co2_range = {bound: sum(r[bound] for r in carbon) for bound in ("low", "central", "high")} if carbon else None
    return {
        "recommendations": len(findings),
        "cost_usd_per_month": sum(f["cost_usd_per_month"] for f in costed) if costed else None,
        "co2e_kg_per_month": co2_range["central"] if co2_range else None,
        "co2e_kg_per_month_range": co2_range,
    }
