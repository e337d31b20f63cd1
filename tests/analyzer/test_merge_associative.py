"""merge() is associative: merging merges of consecutive parts gives what merging all the parts
gives (samples with labels, frames in order, totals, window, mean period, metadata counters), so
a server may keep merges of time slots and merge those instead of every report again.

Sums of floats (``duration_ms_sum``, ``times``) are the one exception: float addition rounds
differently when grouped otherwise, so they are compared to a relative 1e-12; every other value,
integer counters included, is compared exactly.
"""

from __future__ import annotations

import copy
import random
from typing import Any, Dict, List, Sequence

import pytest

from greenflame.analyzer.model import CPU, WALL, Frame, Profile, SampleType, merge, period_weight

FRAMES = [Frame(f"f{i}", f"mod{i % 7}.py", i) for i in range(40)]
#: Float sums: grouped otherwise, they may differ in their last bits.
FLOAT_SUMS = (("invocations", "duration_ms_sum"), ("rate_limited", "times"))


def _metadata(rng: random.Random, n: int) -> Dict[str, Any]:
    metadata: Dict[str, Any] = {"host": f"instance-{n % 3}", "n": n}
    if rng.random() < 0.7:
        durations = [round(rng.uniform(0.1, 900.0), 3) for _ in range(rng.randint(0, 6))]
        metadata["invocations"] = {
            "count": rng.choice([len(durations), 0, "two", 3.0]),
            "cold_starts": rng.randint(0, 2),
            "duration_ms_sum": sum(durations),
            "durations_ms": rng.choice([durations, [*durations, "x", True], "none"]),
        }
    if rng.random() < 0.4:
        metadata["dropped"] = {"aggregator_full": rng.randint(0, 9), "bad": rng.choice([1, "x"])}
    if rng.random() < 0.4:
        metadata["rate_limited"] = {
            "cpu_budget_cores": rng.choice([0.01, 0.05, "?"]),
            "lowest_rate_hz": rng.choice([31.5, 12.0, 77.25, None]),
            "times": rng.choice([1, 2, 0.5]),
            "reports": rng.choice([None, 2, 0, 3.7]),
        }
    if rng.random() < 0.1:
        metadata["invocations"] = "garbage"
    return metadata


def _profile(rng: random.Random, n: int) -> Profile:
    types = rng.choice([[SampleType(WALL), SampleType(CPU)], [SampleType(CPU), SampleType(WALL)], [SampleType(WALL)]])
    start = 0 if rng.random() < 0.1 else 10**18 + n * 60 * 10**9 + rng.randint(-5, 5) * 10**9
    profile = Profile(
        sample_types=list(types),
        group="g",
        start_time_unix_ns=start,
        duration_ns=rng.choice([60, 10, 300]) * 10**9,
        sample_period_ns=rng.choice([10**7, 2 * 10**7, 25 * 10**6, 0]),
        metadata=_metadata(rng, n),
    )
    for _ in range(rng.randint(0, 25)):
        stack = [rng.choice(FRAMES) for _ in range(rng.randint(1, 6))]
        labels = rng.choice([{}, {"endpoint": "GET /a"}, {"endpoint": "POST /b", "lambda_phase": "invoke"}])
        profile.add(stack, [rng.randint(0, 5) for _ in types], labels)
    if rng.random() < 0.2:
        profile.frames.append(Frame("unused", "nowhere.py", 1))  # a frame no sample uses
    return profile


def _chunks(rng: random.Random, items: Sequence[Any]) -> List[List[Any]]:
    cuts = sorted(rng.sample(range(1, len(items)), rng.randint(0, min(6, len(items) - 1)))) if len(items) > 1 else []
    bounds = [0, *cuts, len(items)]
    return [list(items[a:b]) for a, b in zip(bounds, bounds[1:])]


def _assert_same(grouped: Profile, whole: Profile) -> None:
    left, right = copy.deepcopy(grouped), copy.deepcopy(whole)
    for outer, key in FLOAT_SUMS:
        a, b = left.metadata.get(outer), right.metadata.get(outer)
        if isinstance(a, dict) and isinstance(b, dict) and isinstance(b.get(key), float):
            assert a.pop(key) == pytest.approx(b.pop(key), rel=1e-12)
    assert left == right
    assert period_weight(grouped) == period_weight(whole)
    assert [s.labels for s in grouped.samples] == [s.labels for s in whole.samples]


@pytest.mark.parametrize("seed", range(60))
def test_merging_merges_of_consecutive_parts_equals_merging_all(seed: int) -> None:
    rng = random.Random(seed)
    profiles = [_profile(rng, n) for n in range(rng.randint(1, 30))]
    whole = merge(profiles, "g")
    slots = _chunks(rng, profiles)
    _assert_same(merge([merge(slot, "g") for slot in slots], "g"), whole)
    # two levels (slots, then spans of slots), and merges beside raw reports
    spans = _chunks(rng, [merge(slot, "g") for slot in slots])
    _assert_same(merge([merge(span, "g") for span in spans], "g"), whole)
    _assert_same(merge([merge(profiles[:-1], "g"), profiles[-1]], "g") if len(profiles) > 1 else whole, whole)


def test_the_period_of_merged_merges_is_that_of_all_reports() -> None:
    # 100 CPU samples at 10 ms, 3 at 25 ms and 1 at 20 ms: the rounded mean of the first two
    # merged (10.6796... ms) would weigh wrongly beside the third.
    def one(period_ms: int, samples: int) -> Profile:
        profile = Profile(start_time_unix_ns=10**18, duration_ns=10**9, sample_period_ns=period_ms * 10**6)
        profile.add([Frame("f")], [samples, samples])
        return profile

    parts = [one(10, 100), one(25, 3), one(20, 1)]
    whole = merge(parts)
    assert whole.sample_period_ns == round((100 * 10 + 3 * 25 + 20) * 10**6 / 104)
    assert merge([merge(parts[:2]), parts[2]]).sample_period_ns == whole.sample_period_ns
    assert merge([merge(parts[:1]), merge(parts[1:])]).period_weight == whole.period_weight
