"""A readable terminal report: what was profiled, each recommendation, its evidence and cost."""

from __future__ import annotations

from typing import Any, Dict, List

from . import _format as f

INDENT = "    "


def render(report: Dict[str, Any]) -> str:
    """The report as plain text for a terminal, ending with a newline."""
    lines = _header(report)
    findings = report.get("recommendations") or []
    if not findings:
        rules = len(report.get("rules") or [])
        lines += ["", f"No recommendations: none of the {rules} rule(s) found a problem in this profile."]
    else:
        lines += ["", _totals_line(report)]
        for number, finding in enumerate(findings, 1):
            lines += ["", *_finding(number, finding)]
    lines += _hotspots(report)
    return "\n".join(lines) + "\n"


def _header(report: Dict[str, Any]) -> List[str]:
    window = report.get("window") or {}
    title = f"greenflame analysis: {f.clean(report.get('group') or '(no group)')}"
    if window.get("start"):
        title += f"  {window['start']} to {window['end']}"
    samples = ", ".join(f"{name} {count:,}" for name, count in (report.get("samples") or {}).items())
    lines = [title, f"Samples: {samples or 'none'}"]
    lam = report.get("lambda")
    if lam:
        parts = [lam.get("function_name"), lam.get("handler"), _mb(lam.get("memory_size_mb"))]
        parts += [lam.get("architecture"), lam.get("region")]
        lines.append("Lambda: " + ", ".join(f.clean(p) for p in parts if p))
    invocations = report.get("invocations")
    if invocations and invocations.get("count"):
        line = f"Invocations: {invocations['count']:,}"
        if invocations.get("mean_duration_ms") is not None:
            line += f", mean {invocations['mean_duration_ms']:.1f} ms"
        lines.append(line)
    return lines


def _mb(value: Any) -> str:
    return f"{value} MB" if value else ""


def _totals_line(report: Dict[str, Any]) -> str:
    totals = report.get("totals") or {}
    count = totals.get("recommendations", 0)
    noun = "recommendation" if count == 1 else "recommendations"
    return f"{count} {noun}: {f.usd(totals.get('cost_usd_per_month'))}/month, " + f.co2_range(
        totals.get("co2e_kg_per_month_range")
    )


def _finding(number: int, finding: Dict[str, Any]) -> List[str]:
    times = finding.get("times_expected")
    lines = [
        f"[{number}] {f.clean(finding['title'])}  ({finding['rule']})",
        f"{INDENT}Share:  {f.percent(finding['share'])} of invoke-phase {finding['sample_type']} samples"
        + (f", {times:.1f}x the expected {f.percent(finding['expected_share'])}" if times else ""),
    ]
    inputs = finding.get("inputs") or {}
    if finding.get("wasted_ms_per_invocation") is not None:
        rate = f.setting(inputs.get("invocations_per_month"))
        lines.append(f"{INDENT}Waste:  {finding['wasted_ms_per_invocation']:.1f} ms per invocation; {rate} per month")
    lines.append(f"{INDENT}Cost:   {f.usd(finding.get('cost_usd_per_month'))}/month{f.cost_basis(inputs)}")
    lines.append(f"{INDENT}CO2e:   {f.co2_range(finding.get('co2e_kg_per_month_range'))}")
    lines.append(f"{INDENT}SCI:    {f.finding_sci(finding)}")
    lines += _evidence(finding)
    lines.append(f"{INDENT}Fix:    {f.clean(finding['fix'], 400)}")
    lines.append(f"{INDENT}Inputs: " + _inputs(inputs))
    lines += [f"{INDENT}Note:   {f.clean(note, 400)}" for note in inputs.get("notes") or []]
    return lines


def _evidence(finding: Dict[str, Any]) -> List[str]:
    lines = []
    for item in (finding.get("frames") or [])[:5]:
        lines.append(f"{INDENT}Where:  {f.frame(item)}: {item['samples']:,} samples ({f.percent(item['share'])})")
        for stack in (item.get("stacks") or [])[:3]:
            parent = f.caller(stack)
            if parent:
                lines.append(f"{INDENT}          called from {f.frame(parent)} ({stack['samples']:,} samples)")
    return lines


def _inputs(inputs: Dict[str, Any]) -> str:
    parts = [
        f.setting(inputs.get("memory_mb"), " MB"),
        f.setting(inputs.get("architecture")),
        f.setting(inputs.get("region")),
    ]
    if inputs.get("mean_duration_ms"):
        parts.append("mean " + f.setting(inputs["mean_duration_ms"], " ms"))
    if inputs.get("grid_g_co2e_per_kwh") is not None:
        parts.append(f"grid {inputs['grid_g_co2e_per_kwh']} g/kWh")
    return ", ".join(parts)


def _hotspots(report: Dict[str, Any]) -> List[str]:
    spots = report.get("hotspots") or []
    if not spots:
        return []
    lines = ["", f"Hotspots ({spots[0]['sample_type']} samples, by self):"]
    for spot in spots[:10]:
        lines.append(f"{INDENT}{spot['self']:>8,} self {spot['total']:>8,} total  {f.frame(spot)}")
    return lines
