"""merge() adds up invocation counters and dropped counts across profiles, and keeps the time that
reports sampled at different rates stood for."""

from __future__ import annotations

import pytest

from greenflame.analyzer.model import MAX_DURATIONS_KEPT, Frame, Profile, merge, merge_metadata


def _profile(count: int, durations: list, dropped: int) -> Profile:
    profile = Profile(start_time_unix_ns=10**18, duration_ns=10**9)
    profile.add([Frame("f")], [1, 1])
    profile.metadata = {
        "lambda": {"memory_size_mb": 256},
        "invocations": {"count": count, "cold_starts": 1, "duration_ms_sum": sum(durations), "durations_ms": durations},
        "dropped": {"aggregator_full": dropped},
    }
    return profile


def test_merge_adds_invocation_counters() -> None:
    merged = merge([_profile(2, [10.0, 20.0], 1), _profile(3, [1.0, 2.0, 3.0], 4)])
    invocations = merged.metadata["invocations"]
    assert invocations["count"] == 5 and invocations["cold_starts"] == 2
    assert invocations["duration_ms_sum"] == 36.0
    assert invocations["durations_ms"] == [10.0, 20.0, 1.0, 2.0, 3.0]
    assert merged.metadata["dropped"] == {"aggregator_full": 5}
    assert merged.metadata["lambda"] == {"memory_size_mb": 256}
    assert merged.total("wall") == 2


def test_merge_keeps_the_newest_durations_and_ignores_bad_values() -> None:
    many = [float(i) for i in range(MAX_DURATIONS_KEPT)]
    result = merge_metadata(
        [
            {"invocations": {"count": 1000, "durations_ms": many}},
            {"invocations": {"count": "two", "durations_ms": [5.0, "x", True]}},
            {"invocations": "garbage"},
        ]
    )
    assert result["invocations"]["count"] == 1000
    assert len(result["invocations"]["durations_ms"]) == MAX_DURATIONS_KEPT
    assert result["invocations"]["durations_ms"][-1] == 5.0
    assert merge_metadata([]) == {}


def _sampled(period_ms: int, function: str, samples: int, metadata: dict) -> Profile:
    profile = Profile(start_time_unix_ns=10**18, duration_ns=10**9, sample_period_ns=period_ms * 10**6)
    profile.add([Frame("handler"), Frame(function)], [samples, samples])
    profile.metadata = metadata
    return profile


def test_merged_reports_keep_the_time_each_one_sampled_at_its_own_rate() -> None:
    # Each report sampled one second of CPU: 100 samples at 100 Hz; 40 at the 40 Hz the agent's
    # budget lowered the other to. The first report's period alone would make it 1.4 s.
    limited = {"rate_limited": {"cpu_budget_cores": 0.01, "lowest_rate_hz": 31.5, "times": 2}}
    full, lowered = _sampled(10, "crunch", 100, {}), _sampled(25, "parse", 40, limited)
    merged = merge([full, lowered])
    assert merged.total("cpu") * merged.sample_period_ns / 1e9 == pytest.approx(2.0, rel=1e-6)
    assert merge([lowered, full]).sample_period_ns == merged.sample_period_ns
    expected = {"reports": 1, "lowest_rate_hz": 31.5, "times": 2, "cpu_budget_cores": 0.01}
    assert merged.metadata["rate_limited"] == expected
    again = merge([merged, _sampled(50, "parse", 20, limited)])
    assert again.metadata["rate_limited"]["reports"] == 2 and again.metadata["rate_limited"]["times"] == 4
    assert again.total("cpu") * again.sample_period_ns / 1e9 == pytest.approx(3.0, rel=1e-6)
    assert "rate_limited" not in merge([full, full]).metadata


def test_merged_reports_count_those_whose_sampler_came_late() -> None:
    late = {"schedule_skipped": 0.5, "asked_rate_hz": 100.0}
    merged = merge([_sampled(10, "f", 100, {}), _sampled(20, "g", 50, late), _sampled(20, "g", 50, late)])
    assert merged.metadata["late_reports"] == 2 and "schedule_skipped" not in merged.metadata
    assert merge([merged, _sampled(20, "g", 50, late)]).metadata["late_reports"] == 3
    assert "late_reports" not in merge([_sampled(10, "f", 100, {}), _sampled(10, "f", 100, {})]).metadata
    assert "late_reports" not in merge_metadata([{"schedule_skipped": "x"}, {"late_reports": -2}])


def test_periods_unknown_or_without_samples_do_not_weigh() -> None:
    unknown = _sampled(0, "f", 7, {})  # collapsed stacks and speedscope files carry no period
    empty = Profile(sample_period_ns=50 * 10**6)
    assert merge([unknown, _sampled(10, "g", 5, {}), empty]).sample_period_ns == 10 * 10**6
    assert merge([empty]).sample_period_ns == 50 * 10**6
    assert merge([unknown]).sample_period_ns == 0
    assert merge_metadata([{"rate_limited": "yes"}, {"rate_limited": {"reports": -3, "lowest_rate_hz": "x"}}]) == {
        "rate_limited": {"reports": 1}
    }
