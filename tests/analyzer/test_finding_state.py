"""Finding states across analyses: new, ongoing, resolved, reopened, late analyses, serialisation."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

import pytest
from support.builders import finding, lambda_profile

from greenflame.analyzer import finding_state as fs
from greenflame.analyzer.report import analyze_profile
from greenflame.analyzer.rules.finding import Finding

T0 = 1_700_000_000.0
MINUTE = 60.0
POLICY = fs.ResolvePolicy(min_missed=3, min_quiet_s=30 * MINUTE)


def run(
    states: Dict[str, Any], findings: List[Finding], at: float, rules: Optional[List[str]] = None
) -> Dict[str, Any]:
    before = json.dumps(states, sort_keys=True)
    after = fs.update_states(states, findings, at, policy=POLICY, rules_evaluated=rules)
    assert json.dumps(states, sort_keys=True) == before  # the input is never modified
    return json.loads(json.dumps(after))  # and the output survives JSON, as the server stores it


def test_new_then_ongoing_with_the_latest_numbers() -> None:
    states = run({}, [finding(cost=4.0)], T0)
    record = states["fp-a"]
    assert record["state"] == fs.NEW and record["first_seen"] == record["last_seen"] == T0
    assert record["resolved_at"] is None and set(record["last"]) == set(fs.LAST_FIELDS)
    assert record["last"] == {key: finding(cost=4.0).to_dict()[key] for key in fs.LAST_FIELDS}
    assert (record["last"]["share"], record["last"]["cost_usd_per_month"]) == (0.2, 4.0)
    states = run(states, [finding(share=0.3, cost=6.0)], T0 + MINUTE)
    record = states["fp-a"]
    assert record["state"] == fs.ONGOING and record["first_seen"] == T0 and record["last_seen"] == T0 + MINUTE
    assert record["last"]["cost_usd_per_month"] == 6.0 and record["analyses_seen"] == 2


def test_resolved_needs_enough_missed_analyses_and_enough_quiet_time() -> None:
    states = run({}, [finding()], T0)
    # Three quick analyses without it: missed three times, but only 3 minutes quiet.
    for minute in (1, 2, 3):
        states = run(states, [], T0 + minute * MINUTE)
        assert states["fp-a"]["state"] == fs.ONGOING and fs.is_open(states["fp-a"])
    assert states["fp-a"]["missed_analyses"] == 3
    states = run(states, [], T0 + 31 * MINUTE)
    assert states["fp-a"]["state"] == fs.RESOLVED and states["fp-a"]["resolved_at"] == T0 + 31 * MINUTE
    # One long gap alone is not enough either.
    alone = run(run({}, [finding()], T0), [], T0 + 10 * 3600)
    assert alone["fp-a"]["state"] == fs.ONGOING and alone["fp-a"]["missed_analyses"] == 1
    # Further quiet analyses leave a resolved finding as it is.
    again = run(states, [], T0 + 90 * MINUTE)
    assert again["fp-a"] == states["fp-a"]


def test_a_sighting_resets_the_missed_count() -> None:
    states = run({}, [finding()], T0)
    states = run(states, [], T0 + 40 * MINUTE)
    states = run(states, [], T0 + 50 * MINUTE)
    states = run(states, [finding()], T0 + 60 * MINUTE)
    states = run(states, [], T0 + 100 * MINUTE)
    states = run(states, [], T0 + 110 * MINUTE)
    assert states["fp-a"]["state"] == fs.ONGOING and states["fp-a"]["missed_analyses"] == 2


def test_reopened_when_it_comes_back_then_ongoing() -> None:
    states = run({}, [finding()], T0)
    for minute in (40, 50, 60):
        states = run(states, [], T0 + minute * MINUTE)
    assert states["fp-a"]["state"] == fs.RESOLVED
    states = run(states, [finding(cost=9.0)], T0 + 70 * MINUTE)
    record = states["fp-a"]
    assert record["state"] == fs.REOPENED and record["reopened_at"] == T0 + 70 * MINUTE
    assert record["times_reopened"] == 1 and record["first_seen"] == T0 and record["resolved_at"] == T0 + 60 * MINUTE
    assert record["last"]["cost_usd_per_month"] == 9.0 and fs.is_open(record)
    states = run(states, [finding()], T0 + 71 * MINUTE)
    assert states["fp-a"]["state"] == fs.ONGOING


def test_late_or_replayed_analyses_change_nothing_but_first_seen() -> None:
    states = run({}, [finding()], T0)
    assert run(states, [finding()], T0) == states  # the same analysis twice
    states = run(states, [], T0 + 40 * MINUTE)
    late = run(states, [finding(cost=1.0)], T0 - MINUTE)  # an older profile arrives late
    assert late["fp-a"]["first_seen"] == T0 - MINUTE
    assert late["fp-a"]["missed_analyses"] == 1 and late["fp-a"]["last"]["cost_usd_per_month"] == 4.0
    assert run(states, [], T0 + 40 * MINUTE) == states  # a replayed quiet analysis is not a second miss


def test_rules_that_did_not_run_keep_their_findings() -> None:
    states = run({}, [finding("fp-a", "rule-a"), finding("fp-b", "rule-b")], T0)
    for minute in (40, 50, 60):
        states = run(states, [], T0 + minute * MINUTE, rules=["rule-a"])
    assert states["fp-a"]["state"] == fs.RESOLVED
    assert states["fp-b"]["state"] == fs.NEW and states["fp-b"]["missed_analyses"] == 0


def test_duplicates_bad_input_and_forgetting() -> None:
    states = run({}, [finding(share=0.1, cost=1.0), finding(share=0.4, cost=2.0)], T0)
    assert states["fp-a"]["last"]["share"] == 0.4
    with pytest.raises(ValueError, match="no fingerprint"):
        fs.update_states({}, [finding("")], T0)
    for when in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValueError):
            fs.update_states({}, [], when)
    with pytest.raises(ValueError):
        fs.ResolvePolicy(min_missed=0)
    forgetful = fs.ResolvePolicy(min_missed=1, min_quiet_s=0, forget_after_s=3600)
    states = fs.update_states({}, [finding()], T0, policy=forgetful)
    states = fs.update_states(states, [], T0 + 1, policy=forgetful)
    assert states["fp-a"]["state"] == fs.RESOLVED
    assert "fp-a" in fs.update_states(states, [], T0 + 3600, policy=forgetful)
    forgotten = fs.update_states(states, [], T0 + 3602, policy=forgetful)
    assert forgotten == {}
    assert fs.update_states(forgotten, [finding()], T0 + 3700, policy=forgetful)["fp-a"]["state"] == fs.NEW
    # Still remembered when it comes back in the analysis that would have forgotten it.
    assert fs.update_states(states, [finding()], T0 + 3602, policy=forgetful)["fp-a"]["state"] == fs.REOPENED


def test_real_findings_from_the_analyzer() -> None:
    brown = analyze_profile(lambda_profile(invocations=50)).recommendations
    green = analyze_profile(lambda_profile(invocations=50, client_in_handler=False)).recommendations
    assert brown and not green
    states = run({}, brown, T0)
    fingerprint = brown[0].fingerprint
    assert states[fingerprint]["rule"] == "aws-sdk-client-per-invocation"
    assert states[fingerprint]["last"]["times_expected"] == brown[0].times_expected
    assert states[fingerprint]["last"]["co2e_kg_per_month_range"] == brown[0].to_dict()["co2e_kg_per_month_range"]
    for minute in (20, 40, 60):
        states = run(states, green, T0 + minute * MINUTE)
    assert states[fingerprint]["state"] == fs.RESOLVED
