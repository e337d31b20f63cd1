"""The report as Markdown for tickets, pull requests and chat: one section per finding.

Each finding reads **What** (summary, observed and expected share, N times more than
expected), **Where** (entry frames with file and line, and their heaviest call paths),
**Why it matters** (the rule's reason, dollars and kg CO2e per month with the low-high range,
SCI before and after the fix, the inputs with their sources), **Fix** (text, a bad and a
good example from the rule catalogue) and **Evidence** (samples, fingerprint and the
evidence flame graph as SVG).

The flame graph is *embedded* by default, as a Markdown image whose URL is a
``data:image/svg+xml;base64`` URI: the Markdown stays one self-contained document (what
``greenflame analyze --format markdown`` prints), rendered by viewers that show data URIs
(VS Code, most local Markdown viewers, pandoc). GitHub and GitLab do not display data-URI
images in issues, so a caller that has uploaded the SVGs passes ``evidence_urls``
(fingerprint to URL) to *reference* them instead, or ``evidence="none"`` to leave them out.

Frame names, titles and notes are attacker-controlled text: they are escaped, or shown as
inline code, and never become links, HTML or mentions.
"""

from __future__ import annotations

import base64
import re
from typing import Any, List, Mapping, Optional
from urllib.parse import quote

from .. import svg
from ..report import Report
from ..rules.base import Rule
from ..rules.finding import Finding, Inputs
from . import _format as f
from . import markdown_text

_BACKTICKS = re.compile(r"`+")
#: Embedded evidence graphs are drawn smaller than exported ones, to keep tickets short.
EMBED_WIDTH = 900
EMBED_MAX_NODES = 80
MAX_FRAMES = 5
MAX_PATHS = 3
EVIDENCE_MODES = ("embed", "none")
#: Longest escaped text shown (frame names, titles, notes).
MAX_TEXT_CHARS = 300


def escape(text: Any) -> str:
    """Attacker-controlled text made inert in Markdown, on one line of at most 300 characters."""
    return markdown_text.escape(text, MAX_TEXT_CHARS)


def code(text: Any) -> str:
    """Attacker-controlled identifiers as an inline code span, where Markdown and HTML are inert."""
    return "`" + f.clean(text, 300).replace("`", "'") + "`"


def fence(body: str, language: str = "") -> List[str]:
    """A fenced code block whose fence is longer than any backtick run inside ``body``."""
    longest = max((len(run) for run in _BACKTICKS.findall(body)), default=0)
    marker = "`" * max(3, longest + 1)
    return [marker + language, *body.rstrip("\n").split("\n"), marker]


def render(report: Report, *, evidence: str = "embed", evidence_urls: Optional[Mapping[str, str]] = None) -> str:
    """The report as a Markdown document, ending with a newline.

    ``evidence``: ``embed`` (a data-URI SVG image per finding) or ``none``; a URL in
    ``evidence_urls`` for a finding's fingerprint is referenced instead of embedding.
    """
    if evidence not in EVIDENCE_MODES:
        raise ValueError(f"unknown evidence mode {evidence!r}: expected one of {', '.join(EVIDENCE_MODES)}")
    lines = [f"# greenflame analysis: {escape(report.group or '(no group)')}", "", *_header(report)]
    findings = report.recommendations
    if not findings:
        lines.append(f"No recommendations: none of the {len(report.rules)} rule(s) found a problem in this profile.")
        return "\n".join(lines) + "\n"
    lines += [_totals(report), "", *_summary_table(findings), ""]
    for number, finding in enumerate(findings, 1):
        lines += [*_finding(number, finding, evidence, evidence_urls or {}), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _header(report: Report) -> List[str]:
    lines = []
    window = report.window
    if window.start:
        lines.append(f"- **Window:** {escape(window.start)} to {escape(window.end)}")
    samples = ", ".join(f"{escape(name)} {count:,}" for name, count in report.samples.items())
    if samples:
        lines.append(f"- **Samples:** {samples}")
    limited = f.rate_limited(report.sampling)
    if limited:
        lines.append(f"- **Sampling:** {escape(limited)}.")
    lam = report.lambda_function
    if lam is not None and lam.to_dict():
        memory = lam.memory_size_mb and f"{lam.memory_size_mb} MB"
        parts = [lam.function_name, lam.handler, memory, lam.architecture, lam.region]
        lines.append("- **Lambda:** " + ", ".join(escape(p) for p in parts if p))
    invocations = report.invocations
    if invocations is not None and invocations.count:
        mean = invocations.mean_duration_ms
        count = escape(f.count(invocations.count))
        lines.append(f"- **Invocations:** {count}" + (f", mean {mean:.1f} ms" if mean else ""))
    return [*lines, ""] if lines else []


def _totals(report: Report) -> str:
    totals = report.totals
    noun = "recommendation" if totals.recommendations == 1 else "recommendations"
    return (
        f"**{totals.recommendations} {noun}:** {f.usd(totals.cost_usd_per_month)}/month, "
        f"{f.co2_range(totals.co2e_kg_per_month_range)}"
    )


def _times(finding: Finding) -> str:
    times = finding.times_expected
    return f"{times:.1f}x" if times is not None else "n/a"


def _summary_table(findings: List[Finding]) -> List[str]:
    lines = ["| # | rule | share | vs expected | cost / month | CO2e / month |", "|---|---|---|---|---|---|"]
    for number, finding in enumerate(findings, 1):
        co2 = f.co2_range(finding.co2e_kg_per_month_range)
        lines.append(
            f"| {number} | {code(finding.rule)} | {f.percent(finding.share)} | {_times(finding)} "
            f"| {f.usd(finding.cost_usd_per_month)} | {co2} |"
        )
    return lines


def _finding(number: int, finding: Finding, evidence: str, urls: Mapping[str, str]) -> List[str]:
    rule = _catalogue(finding.rule)
    lines = [f"## {number}. {escape(finding.title)} ({code(finding.rule)})", ""]
    lines += _what(finding)
    lines += _where(finding)
    lines += _why(finding, rule)
    lines += _fix(finding, rule)
    lines += _evidence(finding, evidence, urls)
    return lines


def _what(finding: Finding) -> List[str]:
    scope = finding.scope_samples
    of = f" ({finding.samples:,} of {scope:,} {escape(finding.sample_type)} samples)" if scope else ""
    return [
        "### What",
        "",
        escape(finding.summary or finding.title),
        "",
        f"- **Share:** {f.percent(finding.share)}{of}",
        f"- **Expected share:** {f.percent(finding.expected_share)} "
        f"(reported above {f.percent(finding.threshold_share)})",
        f"- **{_times(finding)} more than expected**",
        "",
    ]


def _where(finding: Finding) -> List[str]:
    lines = ["### Where", ""]
    for item in finding.frames[:MAX_FRAMES]:
        lines.append(f"- {code(f.frame(item.frame))}: {item.samples:,} samples ({f.percent(item.share)})")
        for stack in item.stacks[:MAX_PATHS]:
            path = " → ".join(code(frame.function) for frame in stack.frames)
            lines.append(f"  - {path} ({stack.samples:,} samples)")
    hidden = len(finding.frames) - MAX_FRAMES
    if hidden > 0:
        lines.append(f"- and {hidden} more frame(s) (see the JSON report)")
    return [*lines, ""]


def _why(finding: Finding, rule: Optional[Rule]) -> List[str]:
    lines = ["### Why it matters", ""]
    if rule is not None:
        lines += [escape(rule.description), ""]
    inputs = finding.inputs
    wasted = finding.wasted_ms_per_invocation
    if wasted is not None:
        lines.append(f"- **Wasted:** {wasted:.1f} ms per invocation")
    lines += [
        f"- **Cost:** {f.usd(finding.cost_usd_per_month)}/month{_cost_basis(inputs)}",
        f"- **CO2e:** {f.co2_range(finding.co2e_kg_per_month_range)}",
        f"- **SCI:** {_sci(finding)}",
    ]
    if finding.recurrence is not None:
        lines.append(f"- **Recurrence:** {escape(finding.recurrence.describe())}")
    settings = _inputs(inputs)
    if settings:
        lines.append(f"- **Inputs:** {settings}")
    lines += [f"- *Note:* {escape(note)}" for note in inputs.notes]
    return [*lines, ""]


def _cost_basis(inputs: Inputs) -> str:
    basis = f.cost_basis(inputs).strip()
    return f" {escape(basis)}" if basis else ""


def _sci(finding: Finding) -> str:
    for value, unit in ((finding.sci_g_per_invocation, "invocation"), (finding.sci_g_per_request, "request")):
        if value is not None and value.before is not None and value.after is not None:
            return f"{value.before:.2g} g CO2e per {unit} now, {value.after:.2g} after the fix"
    return "n/a"


def _inputs(inputs: Inputs) -> str:
    parts = []
    for value, label, unit in (
        (inputs.invocations_per_month, "invocations/month", ""),
        (inputs.requests_per_month, "requests/month", ""),
        (inputs.memory_mb, "memory", " MB"),
        (inputs.architecture, "architecture", ""),
        (inputs.platform, "platform", ""),
        (inputs.region, "region", ""),
        (inputs.mean_duration_ms, "mean duration", " ms"),
    ):
        if value is not None:
            parts.append(f"{label} {escape(f.setting(value, unit))}")
    if inputs.grid_g_co2e_per_kwh is not None:
        parts.append(f"grid {inputs.grid_g_co2e_per_kwh} g CO2e/kWh")
    return "; ".join(parts)


def _fix(finding: Finding, rule: Optional[Rule]) -> List[str]:
    lines = ["### Fix", "", escape(finding.fix or (rule.fix if rule else "")), ""]
    if rule is not None and rule.bad_example and rule.good_example:
        lines += [
            "Bad:",
            "",
            *fence(rule.bad_example, "python"),
            "",
            "Good:",
            "",
            *fence(rule.good_example, "python"),
            "",
        ]
    return lines


def _evidence(finding: Finding, mode: str, urls: Mapping[str, str]) -> List[str]:
    fingerprint = finding.fingerprint
    lines = ["### Evidence", ""]
    if fingerprint:
        lines += [f"Fingerprint: {code(fingerprint)}", ""]
    url = urls.get(fingerprint) if fingerprint else None
    if url:
        lines.append(f"![evidence flame graph]({_safe_url(url)})")
    elif mode == "embed":
        drawing = svg.render_svg(
            svg.evidence_tree(finding),
            sample_type=finding.sample_type or "samples",
            title=f"{finding.rule}: evidence",
            highlight=[item.frame for item in finding.frames],
            width=EMBED_WIDTH,
            max_nodes=EMBED_MAX_NODES,
        )
        encoded = base64.b64encode(drawing.encode("utf-8")).decode("ascii")
        lines.append(f"![evidence flame graph](data:image/svg+xml;base64,{encoded})")
    else:
        return lines if fingerprint else []
    return lines


def _safe_url(url: str) -> str:
    """A URL that cannot break out of the Markdown link: spaces, brackets and quotes encoded."""
    return quote(f.clean(url, 2000), safe=":/?#&=%+,;@!$'*~.-_")


def _catalogue(rule_id: str) -> Optional[Rule]:
    """The rule's catalogue entry, or None for a rule this version does not know."""
    from ..rules import get_rule

    try:
        return get_rule(rule_id)
    except KeyError:
        return None
