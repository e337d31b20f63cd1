"""merge() adds up invocation counters and dropped counts across profiles."""

from __future__ import annotations

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
