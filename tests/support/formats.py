"""A small profile that exercises every format's features, and a canonical form to compare profiles by."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from greenflame.analyzer.model import Frame, Profile

MAIN = Frame("main", "app.py", 1)
HANDLER = Frame("Service.handle", "app/service.py", 10)
DUMPS = Frame("json.dumps", "/usr/lib/python3.11/json/__init__.py", 183)
NATIVE = Frame("<native>")

Canonical = Dict[Tuple[Tuple[Frame, ...], Tuple[Tuple[str, str], ...]], Tuple[int, ...]]


def make_profile() -> Profile:
    """A small profile with both sample types, labels, metadata and a frame without a file."""
    p = Profile(
        group="orders-api",
        start_time_unix_ns=1_700_000_000_000_000_000,
        duration_ns=60_000_000_000,
        sample_period_ns=10_000_000,
        metadata={
            "agent": "greenflame-agent/0.1.0",
            "pid": 4242,
            "sample_rate_hz": 100.0,
            "lambda": {"function_name": "orders", "memory_size_mb": 512, "architecture": "arm64"},
            "invocations": {"count": 3, "cold_starts": 1, "duration_ms_sum": 31.5, "durations_ms": [10, 11.5, 10]},
        },
    )
    p.add([MAIN, HANDLER], [50, 30], {"lambda_phase": "invoke"})
    p.add([MAIN, HANDLER, DUMPS], [20, 20], {"lambda_phase": "invoke"})
    p.add([MAIN, HANDLER, DUMPS], [4, 1], {"lambda_phase": "init"})
    p.add([MAIN, NATIVE], [7, 0])
    p.add([MAIN], [3, 3])
    return p


def canonical(p: Profile, labels: bool = True, types: Optional[List[str]] = None) -> Canonical:
    """(frames root first, labels) -> values by type name, summed, all-zero entries dropped."""
    names = types or [t.name for t in p.sample_types]
    columns = [p.value_index(name) for name in names]
    result: Dict[Any, List[int]] = {}
    for sample in p.samples:
        key = (tuple(p.frames[i] for i in sample.stack), tuple(sorted(sample.labels.items())) if labels else ())
        totals = result.setdefault(key, [0] * len(columns))
        for n, column in enumerate(columns):
            totals[n] += sample.values[column]
    return {key: tuple(values) for key, values in result.items() if any(values)}
