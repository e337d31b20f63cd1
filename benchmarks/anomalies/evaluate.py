"""Evaluate greenflame's anomaly detector against a plain z-score baseline on labelled series.

Both detectors see the same generated series (``generate.py``) and are scored from the first
point of each group: there is no warm-up, regressions start from 6 hours into a group's data.
A detection is a true positive when it names the labelled group and frame and starts between the
regression's start (minus one bucket) and two hours after its end; any other detection is a
false alarm, including ones on the right group but the wrong frame. Further detections of an
already-found regression are counted as duplicates, not as hits. Precision is over all
detections; F1 per size and shape combines that precision with the recall of those labels. A
regression whose whole window falls in an outage of its group (no data point at all) cannot be
seen by any detector: it is left out of recall and counted as ``unobservable`` (a detection of it
still counts as a hit for precision).

Usage: ``python benchmarks/anomalies/evaluate.py --seeds 1 2 3 --groups 20 --days 3 [--json]``
(several seeds are pooled: their groups are scored together, as one larger fleet).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from generate import EPOCH_S, PER_DAY, RESOLUTION_S, SHAPES, SIZES, Label, generate

from greenflame.analyzer.anomalies import detect
from greenflame.analyzer.anomaly_model import DetectorConfig
from greenflame.analyzer.timeseries import TOTAL, GroupSeries

GRACE_S = 2 * 3600


@dataclass(frozen=True)
class Detection:
    """What the evaluation needs of an anomaly."""

    group: str
    frame: str
    start_unix_s: int
    detected_unix_s: int


@dataclass
class Result:
    """Matching of one detector's output against the labels."""

    name: str
    hits: Dict[int, Detection] = field(default_factory=dict)  # label index -> first matching detection
    false_alarms: List[Detection] = field(default_factory=list)
    duplicates: int = 0
    detections: int = 0


# -- detectors ------------------------------------------------------------------


def greenflame_detector(config: Optional[DetectorConfig] = None) -> Callable[[GroupSeries, int], List[Detection]]:
    """greenflame's detector, reporting from ``score_from`` on."""

    def run(series: GroupSeries, score_from: int) -> List[Detection]:
        found = detect(series, config, score_from_unix_s=score_from)
        return [Detection(a.group, a.frame, a.start_unix_s, a.detected_unix_s) for a in found]

    return run


def zscore_detector(window: int = PER_DAY, threshold: float = 3.0) -> Callable[[GroupSeries, int], List[Detection]]:
    """The plain baseline: z-score of each point against the mean and deviation of the previous day."""

    def run(series: GroupSeries, score_from: int) -> List[Detection]:
        t0 = series.times[0]
        index = (np.asarray(series.times) - t0) // series.resolution_s
        size = int(index[-1]) + 1
        found: List[Detection] = []
        targets = [(TOTAL, series.totals["cpu_samples"]), (TOTAL, series.totals["mean_duration_ms"])]
        targets += list(series.inclusive.items())
        for frame, raw in targets:
            values = np.full(size, np.nan)
            values[index] = [np.nan if v is None else v for v in raw]
            flags = _zscore_flags(values, window, threshold)
            first = max(0, (score_from - t0) // series.resolution_s)
            for start in _run_starts(np.flatnonzero(flags[first:]) + first):
                when = t0 + int(start) * series.resolution_s
                found.append(Detection(series.group, frame, when, when + series.resolution_s))
        return found

    return run


def _zscore_flags(values: np.ndarray, window: int, threshold: float) -> np.ndarray:
    valid = ~np.isnan(values)
    filled = np.where(valid, values, 0.0)
    sums = np.concatenate([[0.0], np.cumsum(filled)])
    squares = np.concatenate([[0.0], np.cumsum(filled**2)])
    counts = np.concatenate([[0], np.cumsum(valid)])
    idx = np.arange(len(values))
    lo = np.maximum(idx - window, 0)
    n = counts[idx] - counts[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (sums[idx] - sums[lo]) / n
        std = np.sqrt(np.maximum((squares[idx] - squares[lo]) / n - mean**2, 0))
        z = (values - mean) / std
    flags: np.ndarray = np.nan_to_num(z >= threshold).astype(bool) & (n >= window // 2)
    return flags


def _run_starts(indices: np.ndarray, gap: int = 2) -> List[int]:
    starts: List[int] = []
    last = -(10**9)
    for i in indices.tolist():
        if i - last > gap + 1:
            starts.append(i)
        last = i
    return starts


# -- matching -------------------------------------------------------------------


def match(name: str, detections: Sequence[Detection], labels: Sequence[Label]) -> Result:
    """Assign each detection to the label it finds, or count it as a false alarm or a duplicate."""
    result = Result(name, detections=len(detections))
    by_target: Dict[Tuple[str, str], List[int]] = {}
    for i, label in enumerate(labels):
        by_target.setdefault((label.group, label.frame), []).append(i)
    for detection in sorted(detections, key=lambda d: d.start_unix_s):
        candidates = [
            i
            for i in by_target.get((detection.group, detection.frame), [])
            if labels[i].start_unix_s - RESOLUTION_S <= detection.start_unix_s <= labels[i].end_unix_s + GRACE_S
        ]
        if not candidates:
            result.false_alarms.append(detection)
        elif candidates[0] in result.hits:
            result.duplicates += 1
        else:
            result.hits[candidates[0]] = detection
    return result


def evaluate(
    series: Sequence[GroupSeries],
    labels: Sequence[Label],
    detector: Callable[[GroupSeries, int], List[Detection]],
    name: str,
    warmup_days: int,
) -> Result:
    """Run ``detector`` over every group from the end of the warm-up and match its output."""
    score_from = EPOCH_S + warmup_days * 86400
    detections: List[Detection] = []
    for group in series:
        detections.extend(detector(group, score_from))
    return match(name, detections, labels)


def observable(series: Sequence[GroupSeries], labels: Sequence[Label]) -> List[bool]:
    """Per label, whether its group has at least one data point inside the regression's window."""
    times = {group.group: np.asarray(group.times, dtype=np.int64) for group in series}
    seen = []
    for label in labels:
        at = times[label.group]
        first = int(np.searchsorted(at, label.start_unix_s))
        seen.append(first < len(at) and int(at[first]) < label.end_unix_s)
    return seen


def summary(
    result: Result, labels: Sequence[Label], groups: int, scored_days: float, seen: Optional[Sequence[bool]] = None
) -> Dict[str, object]:
    """Precision, recall, F1 and time to detection per size and shape, and false alarms per group-week.

    Recall is over the labels ``seen`` marks observable (all of them without it)."""
    true_positives = len(result.hits)
    visible = list(seen) if seen is not None else [True] * len(labels)
    precision = true_positives / max(1, true_positives + len(result.false_alarms))
    rows: Dict[str, Dict[str, float]] = {}
    subsets: List[Tuple[str, Callable[[Label], bool]]] = [(f"size {s * 100:.0f} pt", _size_is(s)) for s in SIZES]
    subsets += [(f"shape {shape}", _shape_is(shape)) for shape in SHAPES]
    subsets += [(f"starts day {day + 1}", _day_is(day)) for day in range(2)]
    subsets += [("starts day 3 or later", lambda label: _day(label) >= 2)]
    subsets += [("size >= 3 pt, days 1-2", lambda label: label.size >= 0.03 - 1e-9 and _day(label) < 2)]
    subsets += [("size >= 3 pt", lambda label: label.size >= 0.03 - 1e-9), ("all", lambda label: True)]
    for title, keep in subsets:
        rows[title] = _row(result, labels, keep, precision, visible)
    return {
        "detector": result.name,
        "unobservable": visible.count(False),
        "detections": result.detections,
        "true_positives": true_positives,
        "false_alarms": len(result.false_alarms),
        "duplicates": result.duplicates,
        "precision": round(precision, 3),
        "false_alarms_per_group_week": round(len(result.false_alarms) / (groups * scored_days / 7), 3),
        "rows": rows,
    }


def _size_is(size: float) -> Callable[[Label], bool]:
    return lambda label: abs(label.size - size) < 1e-9


def _shape_is(shape: str) -> Callable[[Label], bool]:
    return lambda label: label.shape == shape


def _day(label: Label) -> int:
    """The day of the group's data (0 = its first) in which the regression starts."""
    return (label.start_unix_s - EPOCH_S) // 86400


def _day_is(day: int) -> Callable[[Label], bool]:
    return lambda label: _day(label) == day


def _row(
    result: Result, labels: Sequence[Label], keep: Callable[[Label], bool], precision: float, visible: Sequence[bool]
) -> Dict[str, float]:
    chosen = [i for i, label in enumerate(labels) if keep(label) and visible[i]]
    found = [i for i in chosen if i in result.hits]
    recall = len(found) / max(1, len(chosen))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    delays = [(result.hits[i].detected_unix_s - labels[i].start_unix_s) / 60 for i in found]
    return {
        "labels": len(chosen),
        "found": len(found),
        "recall": round(recall, 3),
        "f1": round(f1, 3),
        "median_minutes_to_detect": round(statistics.median(delays), 1) if delays else float("nan"),
    }


def time_one_group_day(series: Sequence[GroupSeries], history_days: int = 7) -> float:
    """Median seconds to score the last day of one group with ``history_days`` of history before it."""
    timings = []
    for group in series:
        end = EPOCH_S + (history_days + 1) * 86400
        day = _truncate(group, end)
        started = time.perf_counter()
        detect(day, score_from_unix_s=end - 86400)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def _truncate(series: GroupSeries, end_unix_s: int) -> GroupSeries:
    keep = [i for i, t in enumerate(series.times) if t < end_unix_s]

    def cut(values: Sequence[Optional[float]]) -> List[Optional[float]]:
        return [values[i] for i in keep]

    out = GroupSeries(series.group, series.resolution_s, series.share_of, cut(series.times), cut(series.denominator))
    out.totals = {k: cut(v) for k, v in series.totals.items()}
    out.inclusive = {k: cut(v) for k, v in series.inclusive.items()}
    out.ancestors, out.library = series.ancestors, series.library
    return out


# -- report ---------------------------------------------------------------------


def run(
    seed: int,
    groups: int,
    days: int,
    warmup_days: int = 0,
    regressions_per_day: float = 0.5,
    seeds: Sequence[int] = (),
) -> Dict[str, object]:
    """The whole evaluation as plain data; with ``seeds``, their fleets are pooled (``seed`` is then ignored)."""
    chosen = list(seeds) or [seed]
    series, labels = _fleet(chosen, groups, days, warmup_days, regressions_per_day)
    scored_days = days - warmup_days
    seen = observable(series, labels)
    report: Dict[str, object] = {
        "seeds": chosen,
        "groups": len(series),
        "days": days,
        "labels": len(labels),
        "unobservable": seen.count(False),
    }
    for name, detector in (("greenflame", greenflame_detector()), ("z-score", zscore_detector())):
        started = time.perf_counter()
        result = evaluate(series, labels, detector, name, warmup_days)
        entry = summary(result, labels, len(series), scored_days, seen)
        entry["seconds"] = round(time.perf_counter() - started, 1)
        if len(chosen) > 1:
            entry["per_seed"] = {
                str(one): _per_seed(result, labels, seen, f"s{one}/", groups, scored_days) for one in chosen
            }
        report[name] = entry
    if days >= 8:
        report["seconds_per_group_day"] = round(time_one_group_day(series), 3)
    return report


def _per_seed(
    result: Result, labels: Sequence[Label], seen: Sequence[bool], prefix: str, groups: int, scored_days: float
) -> Dict[str, object]:
    """One pooled seed's figures: its own detections matched to its own labels (groups ``prefix*``)."""
    mine = [i for i, label in enumerate(labels) if label.group.startswith(prefix)]
    own = Result(result.name)
    own.hits = {mine.index(i): d for i, d in result.hits.items() if i in mine}
    own.false_alarms = [d for d in result.false_alarms if d.group.startswith(prefix)]
    entry = summary(own, [labels[i] for i in mine], groups, scored_days, [seen[i] for i in mine])
    big, early = entry["rows"]["size >= 3 pt"], entry["rows"]["size >= 3 pt, days 1-2"]  # type: ignore[index]
    return {
        "precision": entry["precision"],
        "false_alarms_per_group_week": entry["false_alarms_per_group_week"],
        "f1 size >= 3 pt": big["f1"],
        "f1 size >= 3 pt, days 1-2": early["f1"],
        "found, days 1-2": f"{early['found']} of {early['labels']}",
        "unobservable": entry["unobservable"],
    }


def _fleet(
    seeds: Sequence[int], groups: int, days: int, warmup_days: int, per_day: float
) -> Tuple[List[GroupSeries], List[Label]]:
    """The generated groups of every seed, renamed ``s<seed>/service-NN`` when there are several seeds."""
    series: List[GroupSeries] = []
    labels: List[Label] = []
    for seed in seeds:
        some, their_labels = generate(seed, groups, days, warmup_days, per_day)
        if len(seeds) > 1:
            for group in some:
                group.group = f"s{seed}/{group.group}"
            for label in their_labels:
                label.group = f"s{seed}/{label.group}"
        series.extend(some)
        labels.extend(their_labels)
    return series, labels


def render(report: Dict[str, object]) -> str:
    """The report as Markdown tables."""
    seeds = report["seeds"]
    assert isinstance(seeds, list)
    lines = [
        f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}, "
        f"{report['groups']} groups x {report['days']} days of 5-minute points, "
        f"{report['labels']} labelled regressions ({report['unobservable']} unobservable: in an outage); "
        f"python {platform.python_version()}, {os.cpu_count()} cores",
        "",
        "| detector | subset | labels | found | recall | F1 | median minutes to detect |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("greenflame", "z-score"):
        entry = report[name]
        assert isinstance(entry, dict)
        for title, row in entry["rows"].items():
            lines.append(
                f"| {name} | {title} | {row['labels']} | {row['found']} | {row['recall']:.2f} | {row['f1']:.2f} "
                f"| {row['median_minutes_to_detect']} |"
            )
    lines += ["", "| detector | detections | precision | false alarms | per group-week | duplicates | seconds |"]
    lines.append("|---|---|---|---|---|---|---|")
    for name in ("greenflame", "z-score"):
        e = report[name]
        assert isinstance(e, dict)
        lines.append(
            f"| {name} | {e['detections']} | {e['precision']:.3f} | {e['false_alarms']} "
            f"| {e['false_alarms_per_group_week']} | {e['duplicates']} | {e['seconds']} |"
        )
    ours = report["greenflame"]
    assert isinstance(ours, dict)
    if "per_seed" in ours:
        lines += [
            "",
            "| greenflame, per seed | precision | false alarms per group-week | F1 (>= 3 pt) "
            "| F1 (>= 3 pt, days 1-2) | found (days 1-2) | unobservable |",
        ]
        lines.append("|---|---|---|---|---|---|---|")
        for one, e in ours["per_seed"].items():
            lines.append(
                f"| seed {one} | {e['precision']:.3f} | {e['false_alarms_per_group_week']} "
                f"| {e['f1 size >= 3 pt']:.3f} "
                f"| {e['f1 size >= 3 pt, days 1-2']:.3f} | {e['found, days 1-2']} | {e['unobservable']} |"
            )
    if "seconds_per_group_day" in report:
        lines += ["", f"Scoring one group's day (7 days of history): {report['seconds_per_group_day']} s (median)"]
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the evaluation and print it (Markdown, or JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[], help="pool these seeds' fleets")
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--warmup-days", type=int, default=0, help="days at the start with no regression, not scored")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = run(args.seed, args.groups, args.days, args.warmup_days, seeds=args.seeds)
    sys.stdout.write(json.dumps(report, indent=2) + "\n" if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
