"""Seeded, labelled multi-day 5-minute series for evaluating anomaly detection.

Each group is a small service: a call tree of user and library frames whose self shares follow
their own daily cycles, a traffic curve (daily cycle, quieter weekends, noise) that sets how many
CPU samples each 5-minute bucket holds, multinomial sampling noise on top of extra-binomial
workload noise, outages (gaps of 15 minutes to 6 hours and scattered missing points), deploys that
add a small new frame or remove one, and injected regressions of 1, 3, 5 and 10 percentage points
shaped as a step that ends (6-36 hours), a ramp (rising over 2 hours, lasting 6-24) or a spike
(15-30 minutes). A group's first regression starts between 6 hours and 2 days into its data, so
the first two days of a new group are covered; later ones follow every 2-4 days. Every
regression is labelled with its frame and window.

Usage: ``python benchmarks/anomalies/generate.py --seed 1 --groups 20 --days 14 > series.json``
(the evaluation calls :func:`generate` directly).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from greenflame.analyzer.timeseries import GroupSeries

RESOLUTION_S = 300
PER_DAY = 86400 // RESOLUTION_S
SIZES = (0.01, 0.03, 0.05, 0.10)
SHAPES = ("step", "ramp", "spike")
#: A ramp reaches its full size after this many points (two hours).
RAMP_POINTS = 24
#: The earliest start of a group's first regression: the detector needs a few hours of history.
FIRST_AFTER_HOURS = 6.0
#: A group's first regression starts within this many points of the earliest start.
FIRST_WITHIN = 2 * PER_DAY - int(FIRST_AFTER_HOURS * 3600 // RESOLUTION_S)
#: Monday 2026-01-05 00:00 UTC: series start on a day boundary, weekends fall on days 5 and 6.
EPOCH_S = 1767571200

# (frame, parent, library?) for the call tree every group is drawn from.
_TREE: Tuple[Tuple[str, Optional[str], bool], ...] = (
    ("bootstrap.run", None, True),
    ("app.handler", "bootstrap.run", False),
    ("app.parse_request", "app.handler", False),
    ("decoder.JSONDecoder.raw_decode", "app.parse_request", True),
    ("app.validate", "app.handler", False),
    ("app.load_user", "app.handler", False),
    ("db.query", "app.load_user", False),
    ("cursor.execute", "db.query", True),
    ("app.price_items", "app.handler", False),
    ("app.apply_discounts", "app.price_items", False),
    ("app.render", "app.handler", False),
    ("templates.render_page", "app.render", False),
    ("encoder.JSONEncoder.encode", "app.render", True),
    ("cache.get", "app.handler", False),
    ("client.send", "app.handler", True),
    ("logging.emit", "app.handler", True),
)


@dataclass
class Label:
    """One injected regression: ``size`` is in share (0.03 = 3 points), times in Unix seconds."""

    group: str
    frame: str
    shape: str
    size: float
    start_unix_s: int
    end_unix_s: int


@dataclass
class _Service:
    names: List[str]
    parents: List[int]
    library: Set[str]
    base: np.ndarray  # base self share per frame (sums to 1)
    amplitude: np.ndarray
    phase: np.ndarray
    active_from: np.ndarray  # first index where each frame exists
    active_to: np.ndarray  # index after the last where it exists


def generate(
    seed: int,
    groups: int = 20,
    days: int = 14,
    warmup_days: int = 0,
    regressions_per_day: float = 0.5,
    first_after_hours: float = FIRST_AFTER_HOURS,
) -> Tuple[List[GroupSeries], List[Label]]:
    """``groups`` groups of ``days`` days of 5-minute series, and the regressions injected in them.

    No regression starts in the first ``warmup_days`` or the first ``first_after_hours`` of a group.
    """
    rng = np.random.default_rng(seed)
    all_series: List[GroupSeries] = []
    labels: List[Label] = []
    first = warmup_days * PER_DAY + int(first_after_hours * 3600 // RESOLUTION_S)
    for g in range(groups):
        name = f"service-{g:02d}"
        series, group_labels = _group(name, rng, days, first, regressions_per_day)
        all_series.append(series)
        labels.extend(group_labels)
    return all_series, labels


def _service(rng: np.random.Generator, n: int) -> _Service:
    names = [name for name, _, _ in _TREE]
    parents = [-1 if parent is None else names.index(parent) for _, parent, _ in _TREE]
    library = {name for name, _, lib in _TREE if lib}
    base = rng.dirichlet(np.full(len(names), 1.2))
    base = 0.02 + base  # every frame does some work of its own
    amplitude = rng.uniform(0.0, 0.35, len(names))
    phase = rng.uniform(0, 1, len(names))
    active_from = np.zeros(len(names), dtype=int)
    active_to = np.full(len(names), n)
    # A deploy adds a new small frame; another removes one.
    new_parent = names.index("app.handler")
    names.append("app.new_feature")
    parents.append(new_parent)
    base = np.append(base, rng.uniform(0.004, 0.012) * base.sum())
    amplitude = np.append(amplitude, 0.1)
    phase = np.append(phase, 0.5)
    active_from = np.append(active_from, rng.integers(n // 4, 3 * n // 4))
    active_to = np.append(active_to, n)
    active_to[names.index("cache.get")] = rng.integers(n // 3, n)
    return _Service(names, parents, library, base / base.sum(), amplitude, phase, active_from, active_to)


def _traffic(rng: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(n)
    day_phase = (t % PER_DAY) / PER_DAY
    daily = 0.35 + 0.65 * np.exp(-((day_phase - 0.58) ** 2) / 0.03)
    weekend = np.where(((t // PER_DAY) % 7) >= 5, 0.8, 1.0)
    scale = rng.uniform(1500, 20000)
    noise = rng.lognormal(0.0, 0.1, n)
    traffic: np.ndarray = scale * daily * weekend * noise
    return traffic


def _regressions(
    rng: np.random.Generator, group: str, service: _Service, n: int, first: int, per_day: float
) -> List[Label]:
    candidates = [i for i, name in enumerate(service.names) if name not in service.library and service.parents[i] >= 0]
    # app.handler contains most samples: growing its own time barely moves its inclusive share.
    candidates = [i for i in candidates if service.names[i] not in ("app.handler", "app.new_feature", "cache.get")]
    labels: List[Label] = []
    index = first + int(rng.integers(0, FIRST_WITHIN))
    gap = int(PER_DAY / per_day)
    while index < n - PER_DAY // 4:
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        size = SIZES[int(rng.integers(len(SIZES)))]
        # Spikes last 15-30 minutes, ramps 6-24 hours (rising over the first two), steps 6-36 hours.
        low, high = {"spike": (3, 7), "ramp": (72, 288), "step": (72, 432)}[shape]
        length = int(rng.integers(low, high))
        frame = service.names[int(rng.choice(candidates))]
        end = min(n, index + length)
        labels.append(Label(group, frame, shape, size, EPOCH_S + index * RESOLUTION_S, EPOCH_S + end * RESOLUTION_S))
        index = end + gap + int(rng.integers(0, gap))
    return labels


def _profile(label: Label, n: int) -> np.ndarray:
    """The regression's added share at each index: 0 outside its window."""
    start = (label.start_unix_s - EPOCH_S) // RESOLUTION_S
    end = (label.end_unix_s - EPOCH_S) // RESOLUTION_S
    effect = np.zeros(n)
    if label.shape == "ramp":
        ramp_points = max(1, min(RAMP_POINTS, (end - start) // 2))
        rise = np.minimum(1.0, (np.arange(end - start) + 1) / ramp_points)
        effect[start:end] = rise * label.size
    else:
        effect[start:end] = label.size
    return effect


def _self_shares(rng: np.random.Generator, service: _Service, n: int, labels: Sequence[Label]) -> np.ndarray:
    t = np.arange(n)
    day_phase = (t % PER_DAY) / PER_DAY
    shares = service.base[:, None] * (
        1 + service.amplitude[:, None] * np.sin(2 * np.pi * (day_phase[None, :] - service.phase[:, None]))
    )
    drift = np.cumsum(rng.normal(0, 0.01, (len(service.names), n // PER_DAY + 1)), axis=1)
    shares *= np.exp(drift[:, t // PER_DAY])
    shares *= rng.lognormal(0.0, 0.05, shares.shape)  # workload mix varies from bucket to bucket
    for i in range(len(service.names)):
        shares[i, : service.active_from[i]] = 0
        shares[i, service.active_to[i] :] = 0
    shares /= shares.sum(axis=0, keepdims=True)
    for label in labels:
        added = _profile(label, n)
        row = service.names.index(label.frame)
        others = 1 - shares[row]
        new_row = shares[row] + added
        shares *= np.where(others > 0, (1 - new_row) / np.maximum(others, 1e-12), 1.0)[None, :]
        shares[row] = new_row
    return shares


def _gaps(rng: np.random.Generator, n: int) -> np.ndarray:
    present = rng.random(n) > 0.01
    for _ in range(int(rng.integers(1, 4))):
        start = int(rng.integers(0, n))
        present[start : start + int(rng.integers(3, 72))] = False
    return present


def _group(
    group: str, rng: np.random.Generator, days: int, first: int, per_day: float
) -> Tuple[GroupSeries, List[Label]]:
    n = days * PER_DAY
    service = _service(rng, n)
    labels = _regressions(rng, group, service, n, first, per_day)
    shares = _self_shares(rng, service, n, labels)
    extra = sum((_profile(label, n) for label in labels), np.zeros(n))
    cpu = np.maximum(1, rng.poisson(_traffic(rng, n) / np.maximum(1 - extra, 0.5)))
    self_counts = np.stack([rng.multinomial(int(c), p / p.sum()) for c, p in zip(cpu, shares.T)], axis=1)
    inclusive = _inclusive(self_counts, service.parents)
    present = _gaps(rng, n)
    times = [EPOCH_S + int(i) * RESOLUTION_S for i in np.flatnonzero(present)]
    invocations = np.maximum(1, rng.poisson(cpu / 25.0))
    duration = 120.0 / np.maximum(1 - extra, 0.5) * rng.lognormal(0, 0.05, n)
    series = GroupSeries(group, RESOLUTION_S, "cpu", times, [float(c) for c in cpu[present]])
    series.totals = {
        "cpu_samples": [float(v) for v in cpu[present]],
        "wall_samples": [float(v) * 1.4 for v in cpu[present]],
        "invocations": [float(v) for v in invocations[present]],
        "mean_duration_ms": [float(v) for v in duration[present]],
    }
    for i, name in enumerate(service.names):
        share = inclusive[i][present] / cpu[present]
        series.inclusive[name] = [float(v) for v in share]
        series.self_share[name] = [float(v) for v in (self_counts[i][present] / cpu[present])]
    series.ancestors = _ancestors(service)
    series.library = set(service.library)
    return series, labels


def _inclusive(self_counts: np.ndarray, parents: Sequence[int]) -> np.ndarray:
    inclusive = self_counts.astype(float).copy()
    # Parents come before children in _TREE, so one pass from the leaves up is enough.
    for i in range(len(parents) - 1, -1, -1):
        if parents[i] >= 0:
            inclusive[parents[i]] += inclusive[i]
    return inclusive


def _ancestors(service: _Service) -> Dict[str, Set[str]]:
    result: Dict[str, Set[str]] = {}
    for i, name in enumerate(service.names):
        above: Set[str] = set()
        parent = service.parents[i]
        while parent >= 0:
            above.add(service.names[parent])
            parent = service.parents[parent]
        result[name] = above
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Write the generated series and labels as JSON on standard output."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--days", type=int, default=14)
    args = parser.parse_args(argv)
    series, labels = generate(args.seed, args.groups, args.days)
    document = {
        "series": [
            {
                "group": s.group,
                "resolution_s": s.resolution_s,
                "times": s.times,
                "totals": s.totals,
                "inclusive_share": s.inclusive,
                "ancestors": {k: sorted(v) for k, v in s.ancestors.items()},
            }
            for s in series
        ],
        "labels": [asdict(label) for label in labels],
    }
    json.dump(document, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
