"""The terminal report: cost basis and SCI unit for Lambda and service findings."""

from __future__ import annotations

from dataclasses import replace

from support.builders import lambda_profile

from greenflame.analyzer.renderers import markdown, text
from greenflame.analyzer.report import analyze_profile
from greenflame.analyzer.rules.finding import SERVICE_INPUTS, Inputs, Sci, Setting


def test_lambda_and_service_findings() -> None:
    report = analyze_profile(lambda_profile(invocations=50))
    finding = report.recommendations[0]
    output = text.render(report)
    assert "/month (Lambda duration)" in output
    sci = finding.sci_g_per_invocation
    assert sci is not None and sci.before is not None and sci.after is not None
    assert f"{sci.before:.2g} -> {sci.after:.2g} g CO2e per invocation" in output
    service = replace(finding, sci_g_per_invocation=None, sci_g_per_request=Sci(3e-4, 1e-4))
    service.inputs = replace(finding.inputs, usd_per_vcpu_hour=Setting(0.0408, "override"))
    report = replace(report, recommendations=[service])
    output = text.render(report)
    assert "(vCPU-hours at $0.0408 per vCPU-hour, override)" in output
    assert "0.0003 -> 0.0001 g CO2e per request" in output
    service.sci_g_per_request = None
    assert "SCI:    n/a" in text.render(report)
    service.inputs = Inputs(kind=SERVICE_INPUTS, notes=["no cpu sample counts: cost and CO2e not estimated"])
    service.cost_usd_per_month = None
    output = text.render(report)
    assert "Cost:   n/a/month\n" in output and "Lambda duration" not in output


def test_untrusted_invocation_counts_are_shown_as_text() -> None:
    profile = lambda_profile(invocations=5)
    profile.metadata["invocations"] = {"count": "12\x1b[2J", "duration_ms_sum": 3}
    report = analyze_profile(profile)
    assert "Invocations: 12 [2J\n" in text.render(report)
    assert "- **Invocations:** 12 \\[2J\n" in markdown.render(report)
