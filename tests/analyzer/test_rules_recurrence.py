"""Per-invocation evidence: a pattern fires only when it recurs; cost inputs say where they come from;
http-connection-per-request tells new pools from kept ones."""

from __future__ import annotations

import json
from typing import Dict, List, Sequence

import pytest
from support.builders import BOOTSTRAP, CLIENT_CREATION, HANDLE, HANDLER, SITE, WORK, lambda_metadata

from greenflame.analyzer import impact
from greenflame.analyzer.model import Frame, Profile
from greenflame.analyzer.renderers import render
from greenflame.analyzer.report import analyze_profile, observed_traffic
from greenflame.analyzer.rules import AnalysisContext, run_rules
from greenflame.analyzer.rules.finding import Finding, Recurrence, Setting

SDK = "aws-sdk-client-per-invocation"
HTTP = "http-connection-per-request"
STACK = [BOOTSTRAP, HANDLE, HANDLER]
CONNECT = [
    Frame("HTTPConnectionPool.urlopen", f"{SITE}/urllib3/connectionpool.py", 600),
    Frame("HTTPConnection.connect", f"{SITE}/urllib3/connection.py", 270),
    Frame("create_connection", "/var/lang/lib/python3.11/socket.py", 820),
]
REQUESTS_GET = [Frame("get", f"{SITE}/requests/api.py", 62), Frame("request", f"{SITE}/requests/api.py", 14)]
SESSION_INIT = [Frame("Session.__init__", f"{SITE}/requests/sessions.py", 390)]
BOTOCORE_SEND = [Frame("URLLib3Session.send", f"{SITE}/botocore/httpsession.py", 455)]


def invocation_labels(number: int) -> Dict[str, str]:
    """The agent's labels on invocation ``number`` (0 is the cold one; request ids on the first 8)."""
    labels = {"lambda_phase": "invoke"}
    if number == 0:
        labels["lambda_cold_start"] = "true"
    if number < 8:
        labels["lambda_request_id"] = f"request-{number}"
    return labels


def profile_of(invocations: Sequence[List[List[Frame]]], first_sequence: bool = True, **extra: str) -> Profile:
    """One invocation per item: the stacks under the handler sampled in it (one tick each), plus work."""
    profile = Profile(group="fn", start_time_unix_ns=1_700_000_000 * 10**9, duration_ns=60 * 10**9)
    for number, stacks in enumerate(invocations):
        labels = invocation_labels(number)
        for stack in stacks:
            profile.add([*STACK, *stack], [1, 1], labels)
        profile.add([*STACK, WORK], [3, 3], labels)
    profile.metadata = lambda_metadata(len(invocations), 40.0, **extra)
    if first_sequence:
        profile.metadata["invocations"]["first_sequence"] = 1
    return profile


def of_rule(findings: List[Finding], rule: str) -> List[Finding]:
    return [finding for finding in findings if finding.rule == rule]


def test_a_client_created_in_the_first_invocation_only_is_not_reported() -> None:
    lazily_cached = [[CLIENT_CREATION] * 6] + [[]] * 20
    assert of_rule(run_rules(profile_of(lazily_cached)), SDK) == []


def test_a_client_created_in_every_invocation_says_where_it_was_seen() -> None:
    (finding,) = of_rule(run_rules(profile_of([[CLIENT_CREATION]] * 20)), SDK)
    assert finding.recurrence == Recurrence("cold-start label", True, True, 8, 8)
    assert finding.recurrence.recurs
    assert "in 8 of 8 sampled invocations" in finding.recurrence.describe()
    assert Recurrence.from_dict(finding.to_dict()["recurrence"]) == finding.recurrence


def test_an_older_profile_without_the_mark_fires_as_before_and_says_so() -> None:
    (finding,) = of_rule(run_rules(profile_of([[CLIENT_CREATION] * 6] + [[]] * 20, first_sequence=False)), SDK)
    assert finding.recurrence == Recurrence("none") and finding.recurrence.recurs
    assert any("recurrence not checked" in note for note in finding.inputs.notes)


def test_a_local_runner_rate_is_assumed_not_extrapolated() -> None:
    profile = profile_of([[CLIENT_CREATION]] * 20, local_runner="greenflame lambda invoke")
    (finding,) = of_rule(run_rules(profile), SDK)
    assert finding.inputs.invocations_per_month == Setting(impact.ASSUMED_INVOCATIONS_PER_MONTH, "assumed")
    assert any("not extrapolated" in note for note in finding.inputs.notes)
    (overridden,) = of_rule(run_rules(profile, AnalysisContext(invocations_per_month=5e6)), SDK)
    assert overridden.inputs.invocations_per_month == Setting(5e6, "override")


def test_observed_traffic_wins_over_the_profile_window_and_is_stated() -> None:
    profile = profile_of([[CLIENT_CREATION]] * 20)
    (finding,) = of_rule(run_rules(profile, AnalysisContext(observed_invocations=3600, observed_window_s=3600.0)), SDK)
    assert finding.inputs.invocations_per_month == Setting(impact.SECONDS_PER_MONTH, "observed")
    assert any("3,600 in the group's reports over 3,600 s" in note for note in finding.inputs.notes)
    with pytest.raises(ValueError):
        AnalysisContext(observed_invocations=10)


def test_observed_traffic_sums_reports_over_their_span_and_never_uses_a_local_loop() -> None:
    first, second = profile_of([[]] * 10), profile_of([[]] * 30)
    second.start_time_unix_ns += 60 * 10**9
    assert observed_traffic([first, second]) == {"observed_invocations": 40, "observed_window_s": 120.0}
    local = profile_of([[]] * 10, local_runner="greenflame lambda invoke")
    assert observed_traffic([first, local]) == {}
    report = analyze_profile(second, **observed_traffic([first, second]))
    assert report.to_dict()["overrides"] == {"observed_invocations": 40, "observed_window_s": 120.0}


def test_a_kept_pool_reconnecting_is_not_a_new_connection() -> None:
    assert of_rule(run_rules(profile_of([[CONNECT] * 2] * 20)), HTTP) == []


def test_a_new_client_per_call_is_reported() -> None:
    (finding,) = of_rule(run_rules(profile_of([[REQUESTS_GET + CONNECT] * 2] * 20)), HTTP)
    assert finding.samples == 40


def test_a_kept_pool_counts_where_the_same_site_builds_new_pools_in_later_invocations() -> None:
    (finding,) = of_rule(run_rules(profile_of([[SESSION_INIT, CONNECT, CONNECT]] * 20)), HTTP)
    assert finding.samples == 60
    built_once = [[SESSION_INIT, CONNECT, CONNECT]] + [[CONNECT, CONNECT]] * 19
    assert of_rule(run_rules(profile_of(built_once)), HTTP) == []


def test_an_sdk_client_and_its_pool_are_one_finding() -> None:
    per_invocation = [[CLIENT_CREATION, BOTOCORE_SEND + CONNECT]] * 20
    assert [f.rule for f in run_rules(profile_of(per_invocation))] == [SDK]
    kept = [[BOTOCORE_SEND + CONNECT] * 2] * 20
    assert run_rules(profile_of(kept)) == []


def test_every_report_format_shows_the_recurrence_and_the_rate_source() -> None:
    report = analyze_profile(profile_of([[CLIENT_CREATION]] * 20, local_runner="greenflame lambda invoke"))
    seen = "seen in the first and later invocations; in 8 of 8 sampled invocations with a request id"
    assert f"When:   {seen}" in render(report, "text") and "1,000,000 (assumed) per month" in render(report, "text")
    markdown = render(report, "markdown")
    assert f"**Recurrence:** {seen}" in markdown and "invocations/month 1,000,000 \\(assumed\\)" in markdown
    (finding,) = json.loads(render(report, "json"))["recommendations"]
    assert finding["recurrence"]["recurs"] and finding["inputs"]["invocations_per_month"]["source"] == "assumed"
