"""Generated reports for merge tests: labels, Lambda invocation counters (some malformed), dropped
counts, rate_limited reports at different rates, different sample periods and sample types, a
few with no start or a local runner, and frames no sample uses."""

from __future__ import annotations

import copy
import random
from typing import Any, Dict

import pytest

from greenflame.analyzer.model import CPU, WALL, Frame, Profile, SampleType, period_weight

FRAMES = [Frame(f"f{i}", f"mod{i % 7}.py", i) for i in range(40)]
#: Float sums: grouped otherwise, they may differ in their last bits.
FLOAT_SUMS = (("invocations", "duration_ms_sum"), ("rate_limited", "times"))


def metadata(rng: random.Random, n: int, local_runner: float = 0.0, malformed: bool = True) -> Dict[str, Any]:
    """A report's metadata: each counter present or not, now and then ``malformed`` (values the
    wire format refuses, which merges ignore)."""
    metadata: Dict[str, Any] = {"host": f"instance-{n % 3}", "n": n, "lambda": {"memory_size_mb": 512}}
    if rng.random() < local_runner:
        metadata["lambda"] = {"local_runner": "sam-local"}
    if rng.random() < 0.7:
        durations = [round(rng.uniform(0.1, 900.0), 3) for _ in range(rng.randint(0, 6))]
        metadata["invocations"] = {
            "count": rng.choice([len(durations), 0, "two", 3.0] if malformed else [len(durations), 0, 7]),
            "cold_starts": rng.randint(0, 2),
            "duration_ms_sum": sum(durations),
            "durations_ms": rng.choice([durations, [*durations, "x", True], "none"] if malformed else [durations]),
        }
    if rng.random() < 0.4:
        metadata["dropped"] = {"aggregator_full": rng.randint(0, 9), "bad": rng.choice([1, "x"] if malformed else [1])}
    if rng.random() < 0.4:
        metadata["rate_limited"] = {
            "cpu_budget_cores": rng.choice([0.01, 0.05, "?"]),
            "lowest_rate_hz": rng.choice([31.5, 12.0, 77.25, None]),
            "times": rng.choice([1, 2, 0.5]),
            "reports": rng.choice([None, 2, 0, 3.7]),
        }
    if malformed and rng.random() < 0.1:
        metadata["invocations"] = "garbage"
    return metadata


def random_profile(
    rng: random.Random,
    n: int,
    start_ns: int = 10**18,
    zero_start: float = 0.1,
    local_runner: float = 0.0,
    malformed: bool = True,
) -> Profile:
    """Report ``n`` of a group, starting about ``n`` minutes after ``start_ns`` (none: ``zero_start`` of
    them; ``local_runner`` of them made by one; ``malformed``: see :func:`metadata`)."""
    types = rng.choice([[SampleType(WALL), SampleType(CPU)], [SampleType(CPU), SampleType(WALL)], [SampleType(WALL)]])
    start = 0 if rng.random() < zero_start else start_ns + n * 60 * 10**9 + rng.randint(-5, 5) * 10**9
    profile = Profile(
        sample_types=list(types),
        group="g",
        start_time_unix_ns=start,
        duration_ns=rng.choice([60, 10, 300]) * 10**9,
        sample_period_ns=rng.choice([10**7, 2 * 10**7, 25 * 10**6, 0]),
        metadata=metadata(rng, n, local_runner, malformed),
    )
    for _ in range(rng.randint(0, 25)):
        stack = [rng.choice(FRAMES) for _ in range(rng.randint(1, 6))]
        labels = rng.choice([{}, {"endpoint": "GET /a"}, {"endpoint": "POST /b", "lambda_phase": "invoke"}])
        profile.add(stack, [rng.randint(0, 5) for _ in types], labels)
    if rng.random() < 0.2:
        profile.frames.append(Frame("unused", "nowhere.py", 1))  # a frame no sample uses
    return profile


def assert_same_merge(grouped: Profile, whole: Profile) -> None:
    """``grouped`` (merged from merges) is ``whole`` (merged from the reports), float sums to 1e-12."""
    left, right = copy.deepcopy(grouped), copy.deepcopy(whole)
    for outer, key in FLOAT_SUMS:
        a, b = left.metadata.get(outer), right.metadata.get(outer)
        if isinstance(a, dict) and isinstance(b, dict) and isinstance(b.get(key), float):
            assert a.pop(key) == pytest.approx(b.pop(key), rel=1e-12)
    assert left == right
    assert period_weight(grouped) == period_weight(whole)
    assert [s.labels for s in grouped.samples] == [s.labels for s in whole.samples]
