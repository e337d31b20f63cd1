"""The analysis report, its three renderers, and ``greenflame analyze`` run as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
from support.builders import HANDLER, lambda_profile

from greenflame.analyzer.model import Frame, Profile
from greenflame.analyzer.renderers import RENDERERS, markdown_text, render
from greenflame.analyzer.report import Report, Sampling, analyze_profile

REQUIRED = {"rule", "title", "frames", "share", "expected_share", "cost_usd_per_month", "co2e_kg_per_month"}


def test_report_document_shape() -> None:
    report = analyze_profile(lambda_profile())
    assert report.version == 1 and report.group == "brown"
    assert report.window.duration_ns == 60 * 10**9 and (report.window.start or "").startswith("2023-11-14")
    (finding,) = report.recommendations
    assert set(finding.to_dict()) >= REQUIRED
    assert report.totals.cost_usd_per_month == pytest.approx(finding.cost_usd_per_month)
    assert report.totals.co2e_kg_per_month == pytest.approx(finding.co2e_kg_per_month)
    assert report.lambda_function is not None and report.lambda_function.memory_size_mb == 512
    assert report.invocations is not None and report.invocations.mean_duration_ms == 40.0
    assert report.rules and report.hotspots
    document = report.to_dict()
    json.dumps(document, allow_nan=False)
    assert document["lambda"]["memory_size_mb"] == 512 and document["invocations"]["mean_duration_ms"] == 40.0
    assert document["totals"]["co2e_kg_per_month"] == pytest.approx(finding.co2e_kg_per_month)
    assert document["hotspots"][0]["self"] == report.hotspots[0].self_value


def test_a_report_says_when_the_agents_budget_lowered_the_rate() -> None:
    profile = lambda_profile()
    profile.sample_period_ns = 20_000_000
    profile.metadata["rate_limited"] = {"cpu_budget_cores": 0.01, "lowest_rate_hz": 41.4, "times": 3}
    report = analyze_profile(profile)
    assert report.sampling == Sampling(rate_hz=50.0, rate_limited_reports=1, lowest_rate_hz=41.4)
    assert report.to_dict()["sampling"] == {"rate_hz": 50.0, "rate_limited_reports": 1, "lowest_rate_hz": 41.4}
    assert Report.from_dict(report.to_dict()).sampling == report.sampling
    text = render(report, "text")
    assert "Sampling: the agent's CPU budget lowered the sampling rate in 1 report (lowest 41 Hz)" in text
    assert "scaled to the mean rate achieved, 50 Hz" in text
    assert "- **Sampling:** the agent's CPU budget lowered" in render(report, "markdown")
    plain = analyze_profile(lambda_profile())
    assert plain.sampling == Sampling(rate_hz=100.0) and "Sampling:" not in render(plain, "text")
    assert Report.from_dict({**plain.to_dict(), "sampling": None}).sampling == Sampling()


def test_a_report_says_when_the_sampler_came_late_for_part_of_its_schedule() -> None:
    profile = lambda_profile()
    profile.sample_period_ns = 25_000_000  # the agent reports the rate it achieved: 40 Hz
    profile.metadata.update(schedule_skipped=0.6, asked_rate_hz=100.0)
    report = analyze_profile(profile)
    assert report.sampling == Sampling(rate_hz=40.0, late_reports=1)
    assert Report.from_dict(report.to_dict()).sampling == report.sampling
    text = render(report, "text")
    assert "Sampling: the sampler waited for busy threads and sampled below the rate asked in 1 report" in text
    assert "scaled to the mean rate achieved, 40 Hz" in text
    profile.metadata["rate_limited"] = {"cpu_budget_cores": 0.01, "lowest_rate_hz": 41.4, "times": 3}
    both = render(analyze_profile(profile), "text")
    assert "lowered the sampling rate in 1 report (lowest 41 Hz); the sampler waited" in both


def test_a_real_agents_lowered_rate_reaches_the_text_report(tmp_path: Path) -> None:
    """The agent at 1,000 Hz with a budget of 0.01% of a core, its main thread mostly waiting (the
    sampler thread must wake for each sample): the budget binds, and ``greenflame analyze`` says so."""
    out = tmp_path / "p.json"
    code = (
        "import time\nfrom greenflame import agent\n"
        f"agent.start(out={str(out)!r}, rate_hz=1000, cpu_budget=0.0001, report_interval_s=3600)\n"
        "end = time.monotonic() + 2\n"
        "while time.monotonic() < end:\n    time.sleep(0.002)\n"
        "agent.stop()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    report = json.loads(out.read_text())
    lowest = report["metadata"]["rate_limited"]["lowest_rate_hz"]
    assert lowest < 1000 and report["sample_period_ns"] > 1_000_000
    result = _cli(str(out))
    assert result.returncode == 0, result.stderr
    assert "Sampling: the agent's CPU budget lowered the sampling rate in 1 report" in result.stdout


def test_report_json_keeps_the_published_key_order() -> None:
    document = analyze_profile(lambda_profile()).to_dict()
    assert list(document) == [
        "version",
        "group",
        "window",
        "samples",
        "sampling",
        "lambda",
        "invocations",
        "overrides",
        "rules",
        "recommendations",
        "totals",
        "hotspots",
    ]
    assert list(document["invocations"]) == ["count", "cold_starts", "duration_ms_sum", "mean_duration_ms"]
    assert list(document["totals"]) == [
        "recommendations",
        "cost_usd_per_month",
        "co2e_kg_per_month",
        "co2e_kg_per_month_range",
    ]


def test_untrusted_lambda_metadata_keeps_only_strings_and_numbers() -> None:
    profile = lambda_profile()
    profile.metadata = {
        "lambda": {"memory_size_mb": True, "handler": "app.lambda_handler", "region": ["x"], "runtime": 3.11},
        "invocations": {"count": 0, "duration_ms_sum": 3, "cold_starts": "1"},
    }
    document = analyze_profile(profile).to_dict()
    assert document["lambda"] == {"runtime": 3.11, "handler": "app.lambda_handler"}
    assert document["invocations"] == {"count": 0, "duration_ms_sum": 3, "cold_starts": "1"}
    profile.metadata = {"lambda": "not an object"}
    assert analyze_profile(profile).to_dict()["lambda"] is None


def test_report_without_findings() -> None:
    report = analyze_profile(lambda_profile(client_in_handler=False))
    assert report.recommendations == []
    assert report.totals.cost_usd_per_month is None and report.to_dict()["totals"]["cost_usd_per_month"] is None
    assert "No recommendations" in render(report, "text")
    assert "No recommendations" in render(report, "markdown")
    assert json.loads(render(report, "json"))["recommendations"] == []


def test_report_on_an_empty_profile() -> None:
    report = analyze_profile(Profile())
    assert report.recommendations == [] and report.window.start is None
    for fmt in RENDERERS:
        assert render(report, fmt).endswith("\n")


def test_overrides_reach_the_findings() -> None:
    report = analyze_profile(lambda_profile(), region="eu-west-3", invocations_per_month=2e6)
    inputs = report.recommendations[0].inputs
    assert inputs.region is not None and inputs.region.source == "override" and inputs.grid_g_co2e_per_kwh == 51.1
    assert report.to_dict()["overrides"] == {"region": "eu-west-3", "invocations_per_month": 2e6}
    with pytest.raises(ValueError):
        analyze_profile(lambda_profile(), invocations_per_month=-5)


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_human_renderers_show_rule_cost_and_carbon(fmt: str) -> None:
    report = analyze_profile(lambda_profile())
    finding = report.recommendations[0]
    output = render(report, fmt)
    assert "aws-sdk-client-per-invocation" in output
    assert f"${finding.cost_usd_per_month:,.2f}" in output
    assert f"{finding.co2e_kg_per_month:.3g} kg CO2e/month" in output
    assert "lambda_handler" in output and "client" in output
    fix = finding.fix.split(",")[0]
    assert (markdown_text.escape(fix) if fmt == "markdown" else fix) in output


def test_renderers_neutralise_hostile_frame_names() -> None:
    profile = lambda_profile()
    evil = Frame("<img src=x onerror=alert(1)>\x1b[2J[link](http://x)", "/var/task/\x07evil.py", 1)
    for _ in range(20):
        profile.add(
            [HANDLER, evil, *[profile.frames[i] for i in profile.samples[1].stack[-5:]]],
            [1, 1],
            {"lambda_phase": "invoke"},
        )
    report = analyze_profile(profile)
    text = render(report, "text")
    assert "\x1b" not in text and "\x07" not in text
    markdown = render(report, "markdown")
    assert "\x1b" not in markdown
    for line in markdown.splitlines():
        if "<img" in line:  # only ever inside inline code, where Markdown and HTML are inert
            spans = line.split("`")
            assert all("<img" not in outside for outside in spans[0::2])
    assert any("<img" in line for line in markdown.splitlines())


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError):
        render(analyze_profile(Profile()), "yaml")


# -- the command line, as a real process ---------------------------------------------


def _write(tmp_path: Path, name: str, profile: Profile) -> str:
    from greenflame.analyzer.formats import dump_profile

    path = tmp_path / name
    path.write_bytes(dump_profile(profile, "json"))
    return str(path)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from greenflame.cli.main import main; sys.exit(main())",
            "analyze",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_json_output_has_the_design_keys(tmp_path: Path) -> None:
    path = _write(tmp_path, "brown.json", lambda_profile())
    result = _cli(path, "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert "recommendations" in document
    (finding,) = document["recommendations"]
    assert set(finding) >= REQUIRED
    assert isinstance(finding["co2e_kg_per_month"], float)


def test_cli_merges_files_and_adds_up_invocations(tmp_path: Path) -> None:
    first = lambda_profile(invocations=40)
    second = lambda_profile(invocations=60)
    second.start_time_unix_ns = first.start_time_unix_ns + first.duration_ns
    paths = [_write(tmp_path, "a.json", first), _write(tmp_path, "b.json", second)]
    document: Dict[str, Any] = json.loads(_cli(*paths, "--format", "json").stdout)
    assert document["invocations"]["count"] == 100
    assert document["window"]["duration_ns"] == 120 * 10**9
    finding = document["recommendations"][0]
    assert finding["inputs"]["invocations_per_month"]["value"] == pytest.approx(100 / 120 * 730 * 3600)
    assert finding["samples"] == 100


def test_cli_text_and_overrides(tmp_path: Path) -> None:
    path = _write(tmp_path, "brown.json", lambda_profile())
    result = _cli(path, "--region", "eu-north-1", "--invocations-per-month", "1000000")
    assert result.returncode == 0, result.stderr
    assert "aws-sdk-client-per-invocation" in result.stdout and "eu-north-1 (override)" in result.stdout
    lines: List[str] = result.stdout.splitlines()
    assert any(line.startswith("1 recommendation: $") for line in lines)


def test_cli_bad_input_is_one_line(tmp_path: Path) -> None:
    missing = _cli(str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "nope.json" in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "greenflame-profile", "version": 1, "samples": "x"}')
    result = _cli(str(bad))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "overrides",
    [{}, {"region": "eu-west-3", "invocations_per_month": 2e6}],
)
def test_report_and_findings_read_back_from_their_json(overrides: Dict[str, Any]) -> None:
    report = analyze_profile(lambda_profile(), **overrides)
    document = json.loads(json.dumps(report.to_dict()))
    again = Report.from_dict(document)
    assert again.to_dict() == document
    assert again.recommendations == report.recommendations
    assert render(again, "markdown") == render(report, "markdown")
