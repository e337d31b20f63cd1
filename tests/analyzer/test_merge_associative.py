"""merge() is associative: merging merges of consecutive parts gives what merging all the parts
gives (samples with labels, frames in order, totals, window, mean period, metadata counters), so
a server may keep merges of time slots and merge those instead of every report again.

Sums of floats (``duration_ms_sum``, ``times``) are the one exception: float addition rounds
differently when grouped otherwise, so they are compared to a relative 1e-12; every other value,
integer counters included, is compared exactly.
"""

from __future__ import annotations

import random
from typing import Any, List, Sequence

import pytest

from greenflame.analyzer.model import Frame, Profile, merge
from tests.support.generated_profiles import assert_same_merge, random_profile


def _chunks(rng: random.Random, items: Sequence[Any]) -> List[List[Any]]:
    cuts = sorted(rng.sample(range(1, len(items)), rng.randint(0, min(6, len(items) - 1)))) if len(items) > 1 else []
    bounds = [0, *cuts, len(items)]
    return [list(items[a:b]) for a, b in zip(bounds, bounds[1:])]


@pytest.mark.parametrize("seed", range(60))
def test_merging_merges_of_consecutive_parts_equals_merging_all(seed: int) -> None:
    rng = random.Random(seed)
    profiles = [random_profile(rng, n) for n in range(rng.randint(1, 30))]
    whole = merge(profiles, "g")
    slots = _chunks(rng, profiles)
    assert_same_merge(merge([merge(slot, "g") for slot in slots], "g"), whole)
    # two levels (slots, then spans of slots), and merges beside raw reports
    spans = _chunks(rng, [merge(slot, "g") for slot in slots])
    assert_same_merge(merge([merge(span, "g") for span in spans], "g"), whole)
    assert_same_merge(merge([merge(profiles[:-1], "g"), profiles[-1]], "g") if len(profiles) > 1 else whole, whole)


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
