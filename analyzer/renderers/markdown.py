"""The report as Markdown, for tickets, pull requests and chat."""

from __future__ import annotations

import re
from typing import Any, Dict, List

from . import _format as f

# Characters that start markup anywhere in a line; HTML is neutralised separately.
_SPECIAL = re.compile(r"([\\`*_{}\[\]#!|~])")


def escape(text: Any) -> str:
    """Attacker-controlled text made inert in Markdown: no markup, no HTML, one line."""
    value = f.clean(text, 300).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", value)


def code(text: Any) -> str:
    """Attacker-controlled identifiers as an inline code span, where Markdown and HTML are inert."""
    return "`" + f.clean(text, 300).replace("`", "'") + "`"


def render(report: Dict[str, Any]) -> str:
    """The report as a Markdown document, ending with a newline."""
    lines = [f"# greenflame analysis: {escape(report.get('group') or '(no group)')}", ""]
    window = report.get("window") or {}
    if window.get("start"):
        lines += [f"Window: {window['start']} to {window['end']}", ""]
    findings = report.get("recommendations") or []
    if not findings:
        rules = len(report.get("rules") or [])
        lines.append(f"No recommendations: none of the {rules} rule(s) found a problem in this profile.")
        return "\n".join(lines) + "\n"
    lines += [*_summary_table(findings), ""]
    for finding in findings:
        lines += [*_finding(finding), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _summary_table(findings: List[Dict[str, Any]]) -> List[str]:
    lines = ["| rule | share | vs expected | cost / month | CO2e / month |", "|---|---|---|---|---|"]
    for finding in findings:
        times = finding.get("times_expected")
        co2 = f.co2_range(finding.get("co2e_kg_per_month_range"))
        lines.append(
            f"| `{finding['rule']}` | {f.percent(finding['share'])} | {f'{times:.1f}x' if times else 'n/a'} "
            f"| {f.usd(finding.get('cost_usd_per_month'))} | {co2} |"
        )
    return lines


def _finding(finding: Dict[str, Any]) -> List[str]:
    lines = [
        f"## {escape(finding['title'])} (`{finding['rule']}`)",
        "",
        finding["summary"],
        "",
        f"- **Cost:** {f.usd(finding.get('cost_usd_per_month'))}/month (Lambda duration)",
        f"- **CO2e:** {f.co2_range(finding.get('co2e_kg_per_month_range'))}",
        f"- **SCI:** {f.sci(finding.get('sci_g_per_invocation'))}",
        f"- **Fix:** {finding['fix']}",
        "",
        "Evidence (call paths into the matching frames):",
        "",
    ]
    for item in (finding.get("frames") or [])[:5]:
        lines.append(f"- {code(f.frame(item))}: {item['samples']:,} samples ({f.percent(item['share'])})")
        for stack in (item.get("stacks") or [])[:3]:
            path = " → ".join(code(frame.get("function", "?")) for frame in stack.get("frames") or [])
            lines.append(f"  - {path} ({stack['samples']:,} samples)")
    notes = (finding.get("inputs") or {}).get("notes") or []
    if notes:
        lines += [""] + [f"> {escape(note)}" for note in notes]
    return lines
