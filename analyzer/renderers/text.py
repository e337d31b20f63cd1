"""A readable terminal report: what was profiled, each recommendation, its evidence and cost."""

from __future__ import annotations

from typing import Any, List

from ..report import Report
from ..rules.finding import Finding, FrameRef, Inputs
from . import _format as f

INDENT = "    "


def render(report: Report) -> str:
    """The report as plain text for a terminal, ending with a newline."""
    lines = _header(report)
    findings = report.recommendations
    if not findings:
        lines += ["", f"No recommendations: none of the {len(report.rules)} rule(s) found a problem in this profile."]
    else:
        lines += ["", _totals_line(report)]
        for number, finding in enumerate(findings, 1):
            lines += ["", *_finding(number, finding)]
    lines += _hotspots(report)
    return "\n".join(lines) + "\n"


def _header(report: Report) -> List[str]:
    window = report.window
    title = f"greenflame analysis: {f.clean(report.group or '(no group)')}"
    if window.start:
        title += f"  {window.start} to {window.end}"
    samples = ", ".join(f"{name} {count:,}" for name, count in report.samples.items())
    lines = [title, f"Samples: {samples or 'none'}"]
    limited = f.rate_limited(report.sampling)
    if limited:
        lines.append(f"Sampling: {limited}.")
    lam = report.lambda_function
    if lam is not None and lam.to_dict():
        parts = [lam.function_name, lam.handler, _mb(lam.memory_size_mb), lam.architecture, lam.region]
        lines.append("Lambda: " + ", ".join(f.clean(p) for p in parts if p))
    invocations = report.invocations
    if invocations is not None and invocations.count:
        line = f"Invocations: {f.count(invocations.count)}"
        if invocations.mean_duration_ms is not None:
            line += f", mean {invocations.mean_duration_ms:.1f} ms"
        lines.append(line)
    return lines


def _mb(value: Any) -> str:
    return f"{value} MB" if value else ""


def _totals_line(report: Report) -> str:
    totals = report.totals
    noun = "recommendation" if totals.recommendations == 1 else "recommendations"
    return f"{totals.recommendations} {noun}: {f.usd(totals.cost_usd_per_month)}/month, " + f.co2_range(
        totals.co2e_kg_per_month_range
    )


def _finding(number: int, finding: Finding) -> List[str]:
    times = finding.times_expected
    lines = [
        f"[{number}] {f.clean(finding.title)}  ({finding.rule})",
        f"{INDENT}Share:  {f.percent(finding.share)} of invoke-phase {finding.sample_type} samples"
        + (f", {times:.1f}x the expected {f.percent(finding.expected_share)}" if times else ""),
    ]
    inputs = finding.inputs
    if finding.wasted_ms_per_invocation is not None:
        rate = f.setting(inputs.invocations_per_month)
        lines.append(f"{INDENT}Waste:  {finding.wasted_ms_per_invocation:.1f} ms per invocation; {rate} per month")
    lines.append(f"{INDENT}Cost:   {f.usd(finding.cost_usd_per_month)}/month{f.cost_basis(inputs)}")
    lines.append(f"{INDENT}CO2e:   {f.co2_range(finding.co2e_kg_per_month_range)}")
    lines.append(f"{INDENT}SCI:    {f.finding_sci(finding)}")
    if finding.recurrence is not None:
        lines.append(f"{INDENT}When:   {finding.recurrence.describe()}")
    lines += _evidence(finding)
    lines.append(f"{INDENT}Fix:    {f.clean(finding.fix, 400)}")
    lines.append(f"{INDENT}Inputs: " + _inputs(inputs))
    lines += [f"{INDENT}Note:   {f.clean(note, 400)}" for note in inputs.notes]
    return lines


def _evidence(finding: Finding) -> List[str]:
    lines = []
    for item in finding.frames[:5]:
        lines.append(f"{INDENT}Where:  {f.frame(item.frame)}: {item.samples:,} samples ({f.percent(item.share)})")
        for stack in item.stacks[:3]:
            parent = f.caller(stack)
            if parent:
                lines.append(f"{INDENT}          called from {f.frame(parent)} ({stack.samples:,} samples)")
    return lines


def _inputs(inputs: Inputs) -> str:
    parts = [f.setting(inputs.memory_mb, " MB"), f.setting(inputs.architecture), f.setting(inputs.region)]
    if inputs.mean_duration_ms:
        parts.append("mean " + f.setting(inputs.mean_duration_ms, " ms"))
    if inputs.grid_g_co2e_per_kwh is not None:
        parts.append(f"grid {inputs.grid_g_co2e_per_kwh} g/kWh")
    return ", ".join(parts)


def _hotspots(report: Report) -> List[str]:
    spots = report.hotspots
    if not spots:
        return []
    lines = ["", f"Hotspots ({spots[0].sample_type} samples, by self):"]
    for spot in spots[:10]:
        where = f.frame(FrameRef(spot.name, spot.file, spot.line))
        lines.append(f"{INDENT}{spot.self_value:>8,} self {spot.total:>8,} total  {where}")
    return lines
