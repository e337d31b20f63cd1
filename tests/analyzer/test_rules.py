"""The rule catalogue: aws-sdk-client-per-invocation, and edge cases every rule must survive."""

from __future__ import annotations

import json
import sys
from types import FrameType
from typing import Any, List, Tuple

import pytest
from support.builders import CLIENT_CREATION, HANDLER, WORK, lambda_profile

from greenflame.analyzer.model import Frame, Profile, SampleType
from greenflame.analyzer.rules import AnalysisContext, all_rules, get_rule, run_rules
from greenflame.analyzer.rules.aws_sdk_client import EXPECTED_SHARE, THRESHOLD_SHARE, entry_index
from greenflame.analyzer.rules.finding import Finding, Inputs, Setting

RULE = "aws-sdk-client-per-invocation"
REQUIRED = {"rule", "title", "frames", "share", "expected_share", "cost_usd_per_month", "co2e_kg_per_month"}


def only(findings: List[Any], rule: str = RULE) -> Any:
    """The one finding of ``rule`` (other rules may fire on hand-made profiles)."""
    mine = [f for f in findings if f.rule == rule]
    assert len(mine) == 1, findings
    return mine[0]


def test_fires_when_every_invocation_creates_a_client() -> None:
    finding = only(run_rules(lambda_profile(invocations=100, client_samples=1, work_samples=3)))
    assert finding.rule == RULE
    assert finding.sample_type == "cpu"
    assert finding.share == pytest.approx(100 / 400)
    assert finding.times_expected == pytest.approx(0.25 / EXPECTED_SHARE)
    assert finding.samples == 100 and finding.scope_samples == 400
    # 10 ms of a 40 ms mean invocation; 100 invocations in 60 s is 121.6 million a month.
    assert finding.wasted_ms_per_invocation == pytest.approx(10.0)
    rate = finding.inputs.invocations_per_month
    assert rate is not None and rate.source == "measured" and rate.value == pytest.approx(100 / 60 * 730 * 3600)
    assert finding.cost_usd_per_month == pytest.approx(0.010 * rate.value * 0.5 * 0.0000166667)
    co2 = finding.co2e_kg_per_month_range
    assert co2 is not None and co2.low < co2.central == finding.co2e_kg_per_month < co2.high
    sci = finding.sci_g_per_invocation
    assert sci is not None and sci.before is not None and sci.after is not None and sci.after < sci.before


def test_fires_without_labels_using_the_handler_frame() -> None:
    finding = only(run_rules(lambda_profile(labels=False)))
    assert "handler" in (finding.inputs.scope or "")
    assert finding.share == pytest.approx(0.25)


def test_silent_when_the_client_is_created_at_init() -> None:
    for labels in (True, False):
        profile = lambda_profile(invocations=200, client_in_handler=False, labels=labels)
        assert [f.rule for f in run_rules(profile)] == []


def test_init_phase_never_counts_even_with_the_handler_on_the_stack() -> None:
    profile = lambda_profile(invocations=50, client_in_handler=False)
    # An init phase that calls the handler once (a warm-up) creating a client: still init.
    profile.add([HANDLER, *CLIENT_CREATION], [500, 500], {"lambda_phase": "init"})
    assert run_rules(profile) == []


def test_a_lazily_cached_client_stays_below_the_threshold() -> None:
    profile = lambda_profile(invocations=300, client_in_handler=False)
    profile.add([HANDLER, *CLIENT_CREATION], [3, 3], {"lambda_phase": "invoke"})  # first invocation only
    share = 3 / (profile.total("cpu") - 8 + 3)
    assert share < THRESHOLD_SHARE
    assert run_rules(profile) == []


def test_too_few_matching_samples_is_not_evidence() -> None:
    profile = Profile()
    profile.add([HANDLER, *CLIENT_CREATION], [2, 2], {"lambda_phase": "invoke"})
    profile.add([HANDLER, WORK], [1, 1], {"lambda_phase": "invoke"})
    assert run_rules(profile) == []
    profile.add([HANDLER, *CLIENT_CREATION], [1, 1], {"lambda_phase": "invoke"})
    assert only(run_rules(profile)).samples == 3


def test_evidence_names_the_entry_frame_and_its_call_paths() -> None:
    finding = only(run_rules(lambda_profile()))
    (entry,) = finding.frames
    assert entry.frame.function == "client" and entry.frame.file.endswith("boto3/__init__.py")
    assert entry.samples == 100
    (stack,) = entry.stacks
    assert [f.function for f in stack.frames][-2:] == ["lambda_handler", "client"]
    assert stack.samples == 100


def test_wall_only_profiles_use_wall_and_say_so() -> None:
    profile = lambda_profile()
    for sample in profile.samples:
        sample.values[1] = 0
    finding = only(run_rules(profile))
    assert finding.sample_type == "wall"


def test_wasted_time_uses_the_wall_share_when_io_inflates_the_cpu_share() -> None:
    profile = lambda_profile(invocations=100, client_samples=1, work_samples=1)
    profile.add([HANDLER, Frame("recv", "socket.py", 1)], [200, 0], {"lambda_phase": "invoke"})
    finding = only(run_rules(profile))
    assert finding.share == pytest.approx(0.5)  # CPU
    assert finding.inputs.time_share is not None and finding.inputs.time_share.value == pytest.approx(100 / 400)


def test_overrides_are_used_and_reported() -> None:
    profile = lambda_profile()
    base = only(run_rules(profile))
    finding = only(run_rules(profile, AnalysisContext(region="eu-north-1", invocations_per_month=1e6)))
    assert finding.inputs.region == Setting("eu-north-1", "override")
    assert finding.inputs.invocations_per_month == Setting(1e6, "override")
    assert finding.cost_usd_per_month == pytest.approx(0.010 * 1e6 * 0.5 * 0.0000166667)
    assert finding.co2e_kg_per_month < base.co2e_kg_per_month
    with pytest.raises(ValueError):
        AnalysisContext(invocations_per_month=0)


def test_defaults_fill_missing_or_bad_metadata() -> None:
    profile = lambda_profile()
    profile.metadata["lambda"].update(memory_size_mb="lots", architecture="aarch64", region="mars-1")
    finding = only(run_rules(profile))
    assert finding.inputs.memory_mb == Setting(128, "default")
    assert finding.inputs.architecture == Setting("arm64", "profile")
    assert finding.inputs.grid_g_co2e_per_kwh == 392.8
    assert any("mars-1" in note for note in finding.inputs.notes)


def test_without_durations_the_mean_is_estimated_from_samples() -> None:
    profile = lambda_profile(invocations=100)
    profile.metadata["invocations"] = {"count": 100}
    finding = only(run_rules(profile))
    assert finding.inputs.mean_duration_ms == Setting(pytest.approx(40.0), "estimated")
    assert finding.wasted_ms_per_invocation == pytest.approx(10.0)


def test_without_invocation_counts_there_is_a_finding_but_no_money() -> None:
    profile = lambda_profile()
    profile.metadata.pop("invocations")
    finding = only(run_rules(profile))
    assert finding.cost_usd_per_month is None and finding.co2e_kg_per_month is None
    assert finding.inputs.notes
    data = finding.to_dict()
    assert set(data) >= REQUIRED and data["co2e_kg_per_month"] is None
    # Without an estimate the inputs stop after the notes, and read back the same.
    assert list(data["inputs"])[-1] == "notes" and "vcpu_hours_per_month" not in data["inputs"]
    assert Finding.from_dict(json.loads(json.dumps(data))) == finding


def test_a_finding_without_inputs_writes_none() -> None:
    finding = only(run_rules(lambda_profile()))
    finding.inputs = Inputs(notes=["not written without a kind"])
    assert finding.to_dict()["inputs"] == {} and Finding.from_dict(finding.to_dict()).inputs == Inputs()


def test_to_dict_has_the_required_keys_and_is_json() -> None:
    data = only(run_rules(lambda_profile())).to_dict()
    assert set(data) >= REQUIRED
    assert data["co2e_kg_per_month"] == data["co2e_kg_per_month_range"]["central"]
    assert set(data["sci_g_per_invocation"]) == {"before", "after"}
    assert data["times_expected"] == pytest.approx(data["share"] / data["expected_share"])
    json.dumps(data, allow_nan=False)


def test_fingerprint_is_stable_across_windows() -> None:
    small = only(run_rules(lambda_profile(invocations=20)))
    large = only(run_rules(lambda_profile(invocations=90, client_samples=2)))
    assert small.fingerprint == large.fingerprint and len(small.fingerprint) == 16


def _record_real_stacks() -> List[Tuple[Frame, ...]]:
    """Stacks seen inside a real ``boto3.client`` call, via a profile hook (root = this function)."""
    boto3 = pytest.importorskip("boto3")
    stacks: List[Tuple[Frame, ...]] = []

    def hook(frame: FrameType, event: str, arg: Any) -> None:
        if event != "call" or len(stacks) > 3000:
            return
        chain = []
        current: Any = frame
        while current is not None and current.f_code.co_name != "_record_real_stacks":
            code = current.f_code
            chain.append(Frame(getattr(code, "co_qualname", code.co_name), code.co_filename, code.co_firstlineno))
            current = current.f_back
        stacks.append(tuple(reversed(chain)))

    boto3.client("dynamodb", region_name="us-east-1")  # warm the loaders: the later calls are the repeats
    sys.setprofile(hook)
    try:
        boto3.client("dynamodb", region_name="us-east-1")
        boto3.session.Session(region_name="us-east-1")
    finally:
        sys.setprofile(None)
    return stacks


def test_matchers_recognise_real_boto3_stacks() -> None:
    stacks = [s for s in _record_real_stacks() if len(s) >= 2]
    sdk = [s for s in stacks if any("botocore" in f.file or "boto3" in f.file for f in s[1:])]
    assert sdk, "no boto3 frames recorded"
    assert all(entry_index(stack) is not None for stack in sdk)
    outer = {stack[entry_index(stack) or 0].function for stack in sdk}
    assert outer <= {"client", "Session.__init__", "__init__"}


def test_rule_catalogue_entries_are_complete() -> None:
    rule = get_rule(RULE)
    assert rule in all_rules()
    for text in (rule.title, rule.description, rule.context, rule.fix, rule.bad_example, rule.good_example):
        assert text.strip()
    assert rule.target_frames and 0 < rule.expected_share < rule.threshold_share < 1
    assert "boto3.resource" in rule.bad_example and "def handler" in rule.good_example


# -- edge cases every rule must survive ------------------------------------------


def _edge_profiles() -> List[Tuple[str, Profile]]:
    cases: List[Tuple[str, Profile]] = [("empty", Profile()), ("no sample types", Profile(sample_types=[]))]
    one = Profile()
    one.add([HANDLER, *CLIENT_CREATION], [1, 1], {"lambda_phase": "invoke"})
    cases.append(("one sample", one))
    truncated = lambda_profile(invocations=10)
    for sample in list(truncated.samples):
        stack = [Frame("[truncated]"), *(truncated.frames[i] for i in sample.stack[-3:])]
        truncated.add(stack, sample.values, sample.labels)
    cases.append(("truncated stacks", truncated))
    unknown = Profile(metadata={"lambda": "not an object", "invocations": {"count": "many"}})
    unknown.add([Frame("<unknown>"), Frame("")], [5, 5], {"lambda_phase": "invoke"})
    unknown.add([], [3, 0], {})
    cases.append(("unknown frames and bad metadata", unknown))
    pprof_like = Profile(sample_types=[SampleType("samples", "count"), SampleType("cpu", "nanoseconds")])
    pprof_like.add([HANDLER, *CLIENT_CREATION], [1, 10**9], {"lambda_phase": "invoke"})
    cases.append(("nanosecond values", pprof_like))
    return cases


@pytest.mark.parametrize("rule", all_rules(), ids=lambda r: r.id)
@pytest.mark.parametrize("name, profile", _edge_profiles(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_rule_survives_edge_cases(rule: Any, name: str, profile: Profile) -> None:
    findings = rule(profile, AnalysisContext())
    for finding in findings:
        json.dumps(finding.to_dict(), allow_nan=False)
        assert 0 <= finding.share <= 1


def test_truncated_stacks_still_fire_with_labels() -> None:
    profile = dict(_edge_profiles())["truncated stacks"]
    findings = run_rules(profile)
    assert {f.rule for f in findings} == {RULE}
    # Stacks cut at the root have no application frame: their call site is the [truncated] marker.
    assert {f.call_site.function for f in findings if f.call_site} == {"lambda_handler", "[truncated]"}


def _profile_hitting(entry: Frame, size: int, off_cpu: bool) -> Profile:
    """``size`` distinct invoke-phase samples, a quarter of them under ``entry``."""
    profile = Profile(group="big", duration_ns=3600 * 10**9)
    profile.metadata = {"invocations": {"count": 50_000, "duration_ms_sum": 50_000 * 30}}
    for i in range(size):
        frames = [HANDLER, Frame(f"step{i % 997}", "/var/task/app.py", i % 997), Frame(f"leaf{i}", "x.py", i)]
        values = [1, 1]
        if i % 4 == 0:
            frames = [HANDLER, entry, Frame(f"leaf{i}", "x.py", i)]
            values = [1, 0] if off_cpu else [1, 1]
        profile.add(frames, values, {"lambda_phase": "invoke"})
    return profile


def _entry(pattern: Any) -> Frame:
    target = pattern.targets[0]
    name = target.names[0] if target.names[0] != "*" else "scan"
    path = target.path if target.path.startswith("<") else f"/usr/lib/python3.11/{target.path}"
    return Frame(name, path, 1)


def test_every_rule_handles_100k_distinct_samples() -> None:
    profile = _profile_hitting(CLIENT_CREATION[0], 100_000, off_cpu=False)
    assert len(profile.samples) == 100_000
    for rule in all_rules():
        findings = rule(profile, AnalysisContext())
        expected = [pytest.approx(0.25)] if rule.id == RULE else []
        assert [f.share for f in findings] == expected, rule.id


def test_every_rule_finds_its_own_target_in_a_large_profile() -> None:
    from greenflame.analyzer.rules.pattern import OFF_CPU, patterns

    for pattern in patterns():
        profile = _profile_hitting(_entry(pattern), 8_000, off_cpu=pattern.measure == OFF_CPU)
        findings = get_rule(pattern.rule_id)(profile, AnalysisContext())
        assert [f.share for f in findings] == [pytest.approx(0.25)], pattern.rule_id
