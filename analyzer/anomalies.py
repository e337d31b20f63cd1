"""Anomaly detection over a group's time series, and the text and JSON renderings of its anomalies.

:func:`detect` scores every frame's inclusive CPU share, the group's total samples and its mean
invocation duration (see :mod:`.anomaly_model` for the method and ``docs/anomalies.md`` for why),
turns flagged runs into :class:`Anomaly` objects, folds echoes into their cause
(:mod:`.anomaly_dedup`) and applies user feedback (:mod:`.anomaly_feedback`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, ContextManager, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple

from . import anomaly_feedback
from .anomaly_dedup import fold
from .anomaly_model import DetectorConfig, Event, Fitted, ModelCache, events, flag, nanmedian_rows, renormalisation
from .anomaly_model import fit as fit_model
from .timeseries import RESOLUTIONS_S, TOTAL, GroupSeries, build_series

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from .model import Profile

__all__ = ["Anomaly", "DetectorConfig", "ModelCache", "detect", "detect_profiles", "record_feedback", "render"]

_LEVEL_METRICS = ("mean_duration_ms",)
_COUNT_METRICS = ("cpu_samples", "wall_samples")
#: Frames with at least this typical share (the root, the handler) are not renormalised: they
#: contain most of the others, so they do not shrink when one of those grows.
_NEAR_ROOT_SHARE = 0.5
#: Related frames listed per anomaly in the text format (JSON has them all).
_RELATED_SHOWN = 5


@dataclass
class Anomaly:
    """One anomaly: a frame's (or the group total's) metric left its baseline from ``start`` to ``end``.

    Times are Unix seconds (UTC); ``end_unix_s`` is None while the anomaly is ongoing. ``score``
    is the peak residual in robust standard deviations; ``baseline`` and ``observed`` are the
    expected and measured values at the peak (shares as fractions, 0.31 = 31%).
    """

    group: str
    frame: str
    metric: str
    start_unix_s: int
    end_unix_s: Optional[int]
    detected_unix_s: int
    score: float
    direction: str
    baseline: float
    observed: float
    reason: str
    related_frames: List[str] = field(default_factory=list)

    @property
    def delta(self) -> float:
        """Observed minus baseline at the peak."""
        return self.observed - self.baseline

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready form with ISO-8601 UTC times and the two ranges to compare."""
        return {
            "group": self.group,
            "frame": self.frame,
            "metric": self.metric,
            "start": iso(self.start_unix_s),
            "end": iso(self.end_unix_s) if self.end_unix_s is not None else None,
            "detected": iso(self.detected_unix_s),
            "score": round(self.score, 2),
            "direction": self.direction,
            "baseline": _round(self.baseline),
            "observed": _round(self.observed),
            "reason": self.reason,
            "related_frames": list(self.related_frames),
            "compare": self.compare(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Anomaly:
        """The anomaly of a :meth:`to_dict` document (as stored); ValueError if it is not one.

        Figures come back as :meth:`to_dict` rounded them, so ``from_dict(d).to_dict() == d``.
        """
        try:
            end = data["end"]
            return cls(
                group=str(data["group"]),
                frame=str(data["frame"]),
                metric=str(data["metric"]),
                start_unix_s=unix_s(data["start"]),
                end_unix_s=None if end is None else unix_s(end),
                detected_unix_s=unix_s(data["detected"]),
                score=float(data["score"]),
                direction=str(data["direction"]),
                baseline=float(data["baseline"]),
                observed=float(data["observed"]),
                reason=str(data["reason"]),
                related_frames=[str(frame) for frame in data.get("related_frames") or ()],
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"not an anomaly document: {error!r}") from None

    def compare(self) -> Dict[str, Dict[str, str]]:
        """The ranges to diff: as long before the start as the anomaly lasted (at least one hour)."""
        end = self.end_unix_s if self.end_unix_s is not None else self.detected_unix_s
        length = max(end - self.start_unix_s, 3600)
        return {
            "before": {"start": iso(self.start_unix_s - length), "end": iso(self.start_unix_s)},
            "after": {"start": iso(self.start_unix_s), "end": iso(self.start_unix_s + length)},
        }


_ISO = "%Y-%m-%dT%H:%M:%SZ"


def iso(unix_s: float) -> str:
    """``2026-05-09T14:05:00Z``."""
    return datetime.fromtimestamp(unix_s, tz=timezone.utc).strftime(_ISO)


def unix_s(text: str) -> int:
    """Unix seconds of an :func:`iso` time; ValueError if ``text`` is not one."""
    return int(datetime.strptime(text, _ISO).replace(tzinfo=timezone.utc).timestamp())


def _round(value: float) -> float:
    return round(value, 6) if abs(value) < 10 else round(value, 2)


# -- detection ------------------------------------------------------------------


def _grid(series: GroupSeries) -> Tuple[int, np.ndarray]:
    import numpy as np

    t0 = series.times[0]
    index = (np.asarray(series.times, dtype=np.int64) - t0) // series.resolution_s
    return t0, index


def _on_grid(values: Sequence[Optional[float]], index: np.ndarray, size: int) -> np.ndarray:
    import numpy as np

    out = np.full(size, np.nan)
    out[index] = [np.nan if v is None else v for v in values]
    return out


def _targets(series: GroupSeries) -> List[Tuple[str, str, Sequence[Optional[float]], bool]]:
    """(frame, metric, values, is_share) for every series the detector scores."""
    total_metric = "cpu_samples" if series.share_of == "cpu" else "wall_samples"
    out: List[Tuple[str, str, Sequence[Optional[float]], bool]] = []
    for metric in (total_metric, *_LEVEL_METRICS):
        values = series.totals.get(metric)
        if values is not None and sum(v is not None for v in values) > 0:
            out.append((TOTAL, metric, values, False))
    for frame, values in series.inclusive.items():
        out.append((frame, "inclusive_share", values, True))
    return out


def detect(
    series: GroupSeries,
    config: Optional[DetectorConfig] = None,
    feedback: Optional[Mapping[str, Any]] = None,
    score_from_unix_s: Optional[int] = None,
    models: Optional[ModelCache] = None,
) -> List[Anomaly]:
    """Anomalies in one group's series, oldest first; points before ``score_from_unix_s`` only train.

    With ``models`` (kept by the caller between runs), each series' seasonal fit of a day is made
    once and reused by later runs scoring more of that day, which then need only the day's
    points and the short-history window before them, not the whole history.
    """
    config = config or DetectorConfig()
    if not series.times:
        return []
    t0, index = _grid(series)
    size = int(index[-1]) + 1
    denominator = _on_grid(series.denominator, index, size)
    start_index = 0 if score_from_unix_s is None else max(0, -(-(score_from_unix_s - t0) // series.resolution_s))
    with _one_blas_thread():
        targets = _targets(series)
        fitted = [_fit(series, t, denominator, index, size, config, feedback, start_index, models) for t in targets]
        _renormalise(fitted, config)
    found: List[Anomaly] = []
    for fit in fitted:
        scores = flag(fit.values, fit.baseline, fit.sd, fit.is_share, config, fit.factor, fit.fitted.long_scale)
        for event in events(scores, fit.values, config):
            found.append(_anomaly(series, fit.frame, fit.metric, event, fit.values, scores.baseline, scores.z, t0))
    folded = fold(found, series.ancestors, series.library)
    return sorted(folded, key=lambda a: (a.start_unix_s, -a.score, a.frame))


def _one_blas_thread() -> ContextManager[Any]:
    """BLAS limited to one thread while scoring.

    The fits are tiny; BLAS worker threads only add hand-offs, and on a busy machine they spin and
    wait: scoring measured 4-10x slower with two BLAS threads on 2 shared cores.
    """
    # Load scikit-learn (and SciPy's own BLAS) first: only libraries already loaded get limited.
    import sklearn.linear_model  # noqa: F401
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    limiter: ContextManager[Any] = threadpool_limits(limits=1, user_api="blas")
    return limiter


@dataclass
class _Fit:
    frame: str
    metric: str
    is_share: bool
    factor: float
    values: np.ndarray
    baseline: np.ndarray
    sd: np.ndarray
    fitted: Fitted


def _fit(
    series: GroupSeries,
    target: Tuple[str, str, Sequence[Optional[float]], bool],
    denominator: np.ndarray,
    index: np.ndarray,
    size: int,
    config: DetectorConfig,
    feedback: Optional[Mapping[str, Any]],
    start_index: int,
    models: Optional[ModelCache] = None,
) -> _Fit:
    import numpy as np

    frame, metric, raw, is_share = target
    t0, res = series.times[0], series.resolution_s
    values = _on_grid(raw, index, size)
    factor = anomaly_feedback.threshold_factor(feedback, series.group, frame)
    frozen = anomaly_feedback.frozen_since(feedback, series.group, frame)
    frozen_index = None if frozen is None else max(0, (frozen - t0) // res)
    key = (series.group, res, frame, metric, config)
    share_of = denominator if is_share else None
    fitted = fit_model(values, share_of, t0, res, config, frozen_index, start_index, models, key)
    baseline, sd = fitted.baseline, fitted.sd
    if metric in _COUNT_METRICS:
        # Sample counts are at least Poisson-noisy: 1 then 3 samples is no change.
        sd = np.sqrt(sd**2 + np.maximum(baseline, 1.0))
    return _Fit(frame, metric, is_share, factor, values, baseline, sd, fitted)


def _renormalise(fitted: Sequence[_Fit], config: DetectorConfig) -> None:
    """Scale share baselines by the common movement of all frames (see anomaly_model.renormalisation)."""
    import numpy as np

    shares = [fit for fit in fitted if fit.is_share]
    if not shares:
        return
    values = np.vstack([fit.values for fit in shares])
    baselines = np.vstack([fit.baseline for fit in shares])
    typical = nanmedian_rows(baselines)  # NaN for rows all NaN: before scoring starts
    eligible = np.nan_to_num(typical, nan=1.0) < _NEAR_ROOT_SHARE
    factor = renormalisation(values, baselines, eligible, config)
    for fit, use in zip(shares, eligible):
        if use:
            fit.baseline = fit.baseline * factor


def _anomaly(
    series: GroupSeries,
    frame: str,
    metric: str,
    event: Event,
    values: np.ndarray,
    baseline: np.ndarray,
    z: np.ndarray,
    t0: int,
) -> Anomaly:
    import numpy as np

    res = series.resolution_s
    window = z[event.start : event.end + 1]
    score = float(np.nanmax(np.abs(window))) if np.any(~np.isnan(window)) else 0.0
    anomaly = Anomaly(
        group=series.group,
        frame=frame,
        metric=metric,
        start_unix_s=t0 + event.start * res,
        end_unix_s=None if event.ongoing else t0 + (event.end + 1) * res,
        detected_unix_s=t0 + (event.detected + 1) * res,
        score=min(score, 1000.0),
        direction=event.direction,
        baseline=float(baseline[event.peak]),
        observed=float(values[event.peak]),
        reason="",
    )
    anomaly.reason = reason(anomaly, series.share_of)
    return anomaly


def reason(anomaly: Anomaly, share_of: str = "cpu") -> str:
    """One sentence: ``handler.parse went from 4.0% to 31.0% of CPU at 2026-05-09 14:05 UTC``."""
    clock = "%Y-%m-%d %H:%M UTC" if anomaly.start_unix_s % 60 == 0 else "%Y-%m-%d %H:%M:%S UTC"
    when = datetime.fromtimestamp(anomaly.start_unix_s, tz=timezone.utc).strftime(clock)
    before, after = anomaly.baseline, anomaly.observed
    if anomaly.metric == "inclusive_share":
        what = "CPU" if share_of == "cpu" else "wall time"
        text = f"{anomaly.frame} went from {before:.1%} to {after:.1%} of {what} at {when}"
    elif anomaly.metric == "mean_duration_ms":
        text = f"mean invocation duration went from {before:,.0f} ms to {after:,.0f} ms at {when}"
    else:
        kind = "CPU" if anomaly.metric == "cpu_samples" else "wall"
        text = f"total {kind} samples went from {before:,.0f} to {after:,.0f} per bucket at {when}"
    return text + ("" if anomaly.end_unix_s is not None else " (ongoing)")


class TimeWindow(Protocol):
    """Anything with a time window: a profile, or a server's index row of one."""

    @property
    def start_time_unix_ns(self) -> int: ...

    @property
    def duration_ns(self) -> int: ...


def choose_resolution(profiles: Sequence[TimeWindow]) -> int:
    """The finest standard resolution no shorter than the typical window, or that window when a run is short.

    A run of ten-second profiles spanning a few minutes would fall in one 5-minute bucket; there
    the profiles' own window length is the resolution, so each profile is one point.
    """
    durations = sorted(max(p.duration_ns, 1) for p in profiles)
    typical_s = max(1, durations[len(durations) // 2] // 1_000_000_000)
    starts = [p.start_time_unix_ns for p in profiles]
    span_s = (max(starts) - min(starts)) / 1e9
    for resolution in RESOLUTIONS_S:
        if resolution >= typical_s and span_s / resolution >= 12:
            return resolution
    return int(typical_s) if span_s / typical_s >= 2 else RESOLUTIONS_S[0]


def detect_profiles(
    profiles: Sequence[Profile],
    config: Optional[DetectorConfig] = None,
    feedback: Optional[Mapping[str, Any]] = None,
) -> List[Anomaly]:
    """Anomalies over profiles of any groups, each profile one time window."""
    if not profiles:
        return []
    resolution = choose_resolution(profiles)
    found: List[Anomaly] = []
    for per_resolution in build_series(profiles, (resolution,)).values():
        found.extend(detect(per_resolution[resolution], config, feedback))
    return found


def record_feedback(feedback: Mapping[str, Any], anomaly: Anomaly, useful: bool) -> anomaly_feedback.Feedback:
    """``feedback`` with a vote on ``anomaly``: on its frame and on the related frames folded into it."""
    store = anomaly_feedback.record(feedback, anomaly.group, anomaly.frame, useful, anomaly.start_unix_s)
    for frame in anomaly.related_frames:
        store = anomaly_feedback.record(store, anomaly.group, frame, useful, anomaly.start_unix_s)
    return store


# -- the verb -------------------------------------------------------------------


def render(anomalies: Sequence[Anomaly], fmt: str) -> str:
    """``text`` (one line per anomaly) or ``json`` (``{"anomalies": [...]}``)."""
    if fmt == "json":
        return json.dumps({"anomalies": [a.to_dict() for a in anomalies]}, indent=2) + "\n"
    if not anomalies:
        return "No anomalies found.\n"
    lines = [f"{len(anomalies)} anomal{'y' if len(anomalies) == 1 else 'ies'}:"]
    for a in anomalies:
        group = f"[{a.group}] " if a.group else ""
        lines.append(f"- {group}{a.reason} (score {a.score:.1f})")
        if a.related_frames:
            shown = ", ".join(a.related_frames[:_RELATED_SHOWN])
            more = len(a.related_frames) - _RELATED_SHOWN
            lines.append(f"    also moved: {shown}" + (f" and {more} more" if more > 0 else ""))
    return "\n".join(lines) + "\n"
