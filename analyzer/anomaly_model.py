"""Scoring one series on a regular time grid: a robust seasonal baseline and flags on its residuals.

Method (the choice is argued in ``docs/anomalies.md``):

1. Baseline. Points are scored one UTC day at a time against a model trained on the series' own
   previous :attr:`DetectorConfig.lookback_days` (never on the points being scored). With at least
   :attr:`DetectorConfig.seasonal_min_days` of history the model is a scikit-learn
   ``HuberRegressor`` over Fourier terms of the time of day, fitted on hourly medians with weights
   halving every :attr:`DetectorConfig.half_life_days`: the Huber loss ignores past incidents, the
   weights let a lasting change become the new normal after a few days. Until then (a new group's
   first day) shares are not left unscored: a short-history baseline takes over as soon as
   :attr:`DetectorConfig.min_history` points exist (totals and durations follow traffic, whose
   daily cycle a few hours cannot show, and wait for the seasonal model): the median of the last
   :attr:`DetectorConfig.local_window` buckets moved along the trend from the window before it,
   whose spread is the robust (MAD) spread of its own one-step errors over the history so far. Until the training holds
   :attr:`DetectorConfig.settled_days` of points (short history, or a seasonal fit on a day or
   so), spreads are multiplied by :attr:`DetectorConfig.young_sd_factor`: the false-alarm control.
2. Spread. Shares get a binomial term from the bucket's sample count plus an extra-binomial term
   estimated robustly (MAD) from the training residuals; levels get a relative MAD spread.
3. Flags. A point is anomalous when its residual is both large in standard deviations and large in
   absolute terms (percentage points for shares, a fraction of the baseline for levels): either on
   its own (a spike) or on average over the last :attr:`DetectorConfig.sustain_points` points (a
   step or a ramp). Flagged runs are merged into events across short gaps.

numpy and scikit-learn are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Dict, Hashable, List, Optional, Sequence, Tuple

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

DAY_S = 86400
HOUR_S = 3600
_MAD_TO_SD = 1.4826
#: Every hour of the day (a bit per UTC hour).
ALL_HOURS = (1 << 24) - 1


@dataclass(frozen=True)
class DetectorConfig:
    """Tuning of the detector; the defaults are the ones measured in benchmarks/anomalies."""

    lookback_days: float = 7.0
    half_life_days: float = 2.0
    seasonal_min_days: float = 1.0
    settled_days: float = 1.8
    harmonics: int = 3
    local_window: int = 36
    min_history: int = 6
    short_spread_window: int = 288
    young_sd_factor: float = 1.15
    z_point: float = 6.0
    z_sustained: float = 4.0
    sustain_points: int = 3
    long_points: int = 12
    z_long: float = 4.5
    min_effect_share: float = 0.015
    min_effect_relative: float = 0.3
    min_sd_share: float = 0.001
    new_frame_share: float = 0.005
    min_frames_to_renormalise: int = 5
    merge_gap: int = 2
    report_decreases: bool = False


@dataclass
class Scores:
    """Per grid point: baseline, standard deviation, flags (``up``/``down``) and raw triggers."""

    baseline: np.ndarray
    sd: np.ndarray
    up: np.ndarray
    down: np.ndarray
    trigger: np.ndarray
    z: np.ndarray


@dataclass
class Event:
    """A run of flagged points: indices of first, last, peak and first-triggered point."""

    start: int
    end: int
    peak: int
    detected: int
    ongoing: bool
    direction: str


def score_series(
    values: np.ndarray,
    denominator: Optional[np.ndarray],
    t0_s: int,
    resolution_s: int,
    config: DetectorConfig,
    factor: float = 1.0,
    frozen_index: Optional[int] = None,
    start_index: int = 0,
) -> Scores:
    """Score ``values`` (NaN = no data) from ``start_index`` on; ``denominator`` marks a share series.

    ``factor`` scales the thresholds (feedback); training never uses points at or after
    ``frozen_index``.
    """
    fitted = fit(values, denominator, t0_s, resolution_s, config, frozen_index, start_index)
    return flag(values, fitted.baseline, fitted.sd, denominator is not None, config, factor, fitted.long_scale)


@dataclass
class Fitted:
    """Per point: the expected value, its standard deviation and, while the history is short,
    ``long_scale``: the standard deviation of the mean of :attr:`DetectorConfig.long_points`
    consecutive residuals in units of the points' own (1/sqrt(points) if residuals were
    independent, up to 1 if they move together), measured on the baseline's own past errors.
    NaN where unscored (``long_scale`` also where the seasonal model scores)."""

    baseline: np.ndarray
    sd: np.ndarray
    long_scale: np.ndarray


def fit(
    values: np.ndarray,
    denominator: Optional[np.ndarray],
    t0_s: int,
    resolution_s: int,
    config: DetectorConfig,
    frozen_index: Optional[int] = None,
    start_index: int = 0,
    models: Optional[ModelCache] = None,
    key: Hashable = None,
) -> Fitted:
    """The baseline, spread and long-window scale at every point from ``start_index`` on.

    A day's seasonal model is fitted at its segment's start (the day's first point, or the
    first point with a day of history on a group's second day) on the points before it, so
    scoring a day's later points alone gives the baselines of scoring the whole day. With
    ``models``, that fit is kept under ``key`` and the segment's start, and later calls scoring
    more of the same day reuse it without the history before the day (see :class:`ModelCache`).
    """
    import numpy as np

    n = len(values)
    baseline = np.full(n, np.nan)
    sd = np.full(n, np.nan)
    long_scale = np.full(n, np.nan)
    per_day = max(1, DAY_S // resolution_s)
    lookback = max(1, int(config.lookback_days * DAY_S / resolution_s))
    valid_before = np.concatenate([[0], np.cumsum(~np.isnan(values))])
    frozen = n if frozen_index is None else frozen_index

    def history(at: np.ndarray) -> np.ndarray:
        """Points known before each index in ``at`` (within the lookback, before any freeze)."""
        hi = np.minimum(at, frozen)
        counted: np.ndarray = valid_before[hi] - valid_before[np.maximum(0, hi - lookback)]
        return counted

    i = max(0, start_index)
    short: List[int] = []  # points scored against the short-history baseline
    while i < n:
        day_s = (t0_s + i * resolution_s) // DAY_S * DAY_S
        day_first = max(0, -(-(day_s - t0_s) // resolution_s))
        day_end = min(n, max(i + 1, -(-(day_s + DAY_S - t0_s) // resolution_s)))
        start = _segment_start(history, day_first, day_end, config.seasonal_min_days * per_day, resolution_s)
        if models is not None:
            start = models.segment(key, day_s, t0_s, resolution_s, start)
        if start is not None and start <= i:
            span = np.arange(i, day_end)
            model = _seasonal_model(
                values, denominator, t0_s, resolution_s, config, start, frozen, lookback, models, key
            )
            seen = model.covers(t0_s + span * resolution_s)
            baseline[span[seen]], sd[span[seen]] = model.scores(
                t0_s + span[seen] * resolution_s, denominator, span[seen]
            )
            unseen = span[~seen]  # hours of the day its training never saw: the short-history baseline
            short.extend(unseen[history(unseen) >= config.min_history].tolist())
            i = day_end
        else:
            stop = day_end if start is None else start
            points = np.arange(i, stop)
            short.extend(points[history(points) >= config.min_history].tolist())
            i = stop
    # Totals and durations follow traffic, whose daily cycle a few hours cannot show (a morning's
    # rise would look like an incident): they wait for the seasonal model.
    if short and denominator is not None:
        points = np.array(short)
        short_history = _ShortHistory(values, denominator, config)
        until = np.minimum(points, frozen)
        baseline[points], sd[points], long_scale[points] = short_history.scores(points, until)
    return Fitted(baseline, sd, long_scale)


def _segment_start(
    history: Callable[[np.ndarray], np.ndarray], first: int, end: int, needed: float, resolution_s: int
) -> Optional[int]:
    """The first index of a day's points with enough history for the seasonal model, if any."""
    import numpy as np

    if resolution_s >= DAY_S or first >= end:
        return None
    enough = np.flatnonzero(history(np.arange(first, end)) >= needed)
    return first + int(enough[0]) if len(enough) else None


@dataclass(frozen=True)
class SeasonalModel:
    """A day's seasonal fit: the Huber curve's coefficients (on standardised values), and the
    spread terms of its training residuals (extra-binomial variance for a share, relative
    deviation for a level), widened while the training was young."""

    center: float
    scale: float
    coef: Tuple[float, ...]
    intercept: float
    harmonics: int
    is_share: bool
    spread: float
    widen: float
    floor: float = 0.0
    hours: int = ALL_HOURS

    def covers(self, times_s: np.ndarray) -> np.ndarray:
        """Whether each time's UTC hour of the day was in the training (bit ``hour`` of ``hours``).

        Fourier terms interpolate across an hour the training never saw (an outage on the one
        day a young model knows) and can miss it by several points, so those hours are not
        scored against the curve."""
        import numpy as np

        hour = (np.asarray(times_s, dtype=np.int64) % DAY_S) // HOUR_S
        covered: np.ndarray = ((self.hours >> hour) & 1).astype(bool)
        return covered

    def predict(self, times_s: np.ndarray) -> np.ndarray:
        import numpy as np

        if not self.coef:
            return np.full(len(times_s), self.center)
        features = _time_of_day_features(times_s, self.harmonics, 0)
        predicted: np.ndarray = (features @ np.asarray(self.coef) + self.intercept) * self.scale + self.center
        return np.clip(predicted, 0.0, 1.0) if self.is_share else predicted

    def to_list(self) -> List[Any]:
        """A JSON-ready form (:meth:`from_list` reads it back, equal)."""
        return [
            self.center,
            self.scale,
            list(self.coef),
            self.intercept,
            self.harmonics,
            self.is_share,
            self.spread,
            self.widen,
            self.floor,
            self.hours,
        ]

    @classmethod
    def from_list(cls, data: Sequence[Any]) -> SeasonalModel:
        """The model of a :meth:`to_list` form; ValueError if it is not one."""
        try:
            center, scale, coef, intercept, harmonics, is_share, spread, widen, floor, hours = data
            return cls(
                float(center),
                float(scale),
                tuple(float(c) for c in coef),
                float(intercept),
                int(harmonics),
                bool(is_share),
                float(spread),
                float(widen),
                float(floor),
                int(hours),
            )
        except (TypeError, ValueError) as error:
            raise ValueError(f"not a seasonal model: {error}") from None

    def scores(
        self, times_s: np.ndarray, denominator: Optional[np.ndarray], span: np.ndarray
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Expected values and standard deviations at ``times_s`` (the grid points ``span``)."""
        import numpy as np

        expected = self.predict(times_s)
        if self.is_share and denominator is not None:
            return expected, np.maximum(_share_sd_of(expected, denominator[span], self.spread), self.floor) * self.widen
        level_sd: np.ndarray = self.spread * np.maximum(np.abs(expected), 1e-9) * self.widen
        return expected, level_sd


class ModelCache:
    """Seasonal fits kept between detection runs, so a run scores its new points without refitting
    every series on its whole history (a day's fit only uses the points before the day).

    Keys are the caller's series key, the segment's start and the freeze point; at most
    ``max_models`` fits are kept (the oldest forgotten first). A fit is reused as long as the
    day lasts, even if late data changed a point before the day: the next day's fit sees it.
    """

    def __init__(self, max_models: int = 200_000) -> None:
        from collections import OrderedDict

        self.max_models = max_models
        self._models: OrderedDict[Hashable, SeasonalModel] = OrderedDict()
        self._segments: Dict[Hashable, int] = {}

    def get(self, key: Hashable) -> Optional[SeasonalModel]:
        model = self._models.get(key)
        if model is not None:
            self._models.move_to_end(key)
        return model

    def put(self, key: Hashable, model: SeasonalModel) -> None:
        self._models[key] = model
        self._models.move_to_end(key)
        while len(self._models) > self.max_models:
            self._models.popitem(last=False)

    def segment(self, key: Hashable, day_s: int, t0_s: int, resolution_s: int, found: Optional[int]) -> Optional[int]:
        """The index of the day's segment start: as found on a longer history before, if it was."""
        known = self._segments.get((key, day_s))
        if known is not None:
            return (known - t0_s) // resolution_s
        if found is not None:
            self.put_segment(key, day_s, t0_s + found * resolution_s)
            if len(self._segments) > self.max_models:
                self._segments.pop(next(iter(self._segments)))
        return found

    def has_day(self, key: Hashable, day_s: int) -> bool:
        """Whether a segment start is known for ``key`` on the day starting at ``day_s``."""
        return (key, day_s) in self._segments

    def models(self) -> List[Tuple[Hashable, SeasonalModel]]:
        """Every kept fit: ``((series key, segment start, freeze), model)``, oldest first."""
        return list(self._models.items())

    def segments(self) -> List[Tuple[Hashable, int]]:
        """Every known segment start: ``((series key, day start), segment start)``, in Unix seconds."""
        return list(self._segments.items())

    def put_segment(self, key: Hashable, day_s: int, start_s: int) -> None:
        """Record that ``key``'s segment of the day starting at ``day_s`` starts at ``start_s``
        (as found on a whole history: kept fits read back from storage)."""
        self._segments[(key, day_s)] = start_s


def nanmedian_rows(values: np.ndarray) -> np.ndarray:
    """The median of each row's non-NaN values (NaN for a row without any), as ``np.nanmedian``
    gives it, from one sort of the rows (``np.nanmedian`` goes through masked arrays for short
    rows, many more steps) and without the warning NumPy gives for empty rows: silencing it with
    ``warnings.catch_warnings`` is not thread-safe, and analysis runs on several threads."""
    import numpy as np

    ordered = np.sort(values, axis=1)  # NaN sorts last
    counts = values.shape[1] - np.count_nonzero(np.isnan(values), axis=1)
    rows = np.flatnonzero(counts)
    medians = np.full(values.shape[0], np.nan)
    if len(rows):  # the middle value, or the mean of the two middle values, of each row's numbers
        low = ordered[rows, (counts[rows] - 1) // 2]
        high = ordered[rows, counts[rows] // 2]
        medians[rows] = (low + high) / 2
    return medians


def _time_of_day_features(times_s: np.ndarray, harmonics: int, resolution_s: int) -> np.ndarray:
    import numpy as np

    if resolution_s >= DAY_S:
        return np.zeros((len(times_s), 1))
    phase = 2 * np.pi * (times_s % DAY_S) / DAY_S
    columns = [f(k * phase) for k in range(1, harmonics + 1) for f in (np.sin, np.cos)]
    return np.column_stack(columns)


def _hourly_medians(times_s: np.ndarray, values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Median value per clock hour, with the hour's middle as its time."""
    import numpy as np

    hours = times_s // HOUR_S
    order = np.lexsort((values, hours))
    hours, values = hours[order], values[order]
    unique, first, counts = np.unique(hours, return_index=True, return_counts=True)
    lower = values[first + (counts - 1) // 2]
    upper = values[first + counts // 2]
    return unique * HOUR_S + HOUR_S // 2, (lower + upper) / 2


def _seasonal_model(
    values: np.ndarray,
    denominator: Optional[np.ndarray],
    t0_s: int,
    resolution_s: int,
    config: DetectorConfig,
    start: int,
    frozen: int,
    lookback: int,
    models: Optional[ModelCache],
    key: Hashable,
) -> SeasonalModel:
    """The seasonal fit for the segment starting at index ``start``, trained on the points before it."""
    import numpy as np

    hi = min(start, frozen)
    cache_key = (key, t0_s + start * resolution_s, t0_s + hi * resolution_s)
    model = None if models is None else models.get(cache_key)
    if model is not None:
        return model
    train = np.arange(max(0, hi - lookback), hi)
    train = train[~np.isnan(values[train])]
    train_t = t0_s + train * resolution_s
    y = values[train]
    fit_t, fit_y = _hourly_medians(train_t, y) if resolution_s < HOUR_S else (train_t, y)
    center = float(np.median(fit_y))
    spread = float(np.median(np.abs(fit_y - center))) * _MAD_TO_SD
    coef: Tuple[float, ...] = ()
    intercept = 0.0
    if spread > 0:
        coef, intercept = _huber(fit_t, fit_y, center, spread, t0_s + start * resolution_s, resolution_s, config)
    young = len(train) < config.settled_days * max(1, DAY_S // resolution_s)
    is_share = denominator is not None
    partial = SeasonalModel(center, spread, coef, intercept, config.harmonics, is_share, 0.0, 1.0)
    fitted = partial.predict(train_t)
    residuals = y - fitted
    if denominator is not None:
        term = _extra_variance(residuals, fitted, denominator[train])
    else:
        relative = residuals / np.maximum(np.abs(fitted), 1e-9)
        term = max(_MAD_TO_SD * float(np.median(np.abs(relative - np.median(relative)))), 0.02)
    widen = config.young_sd_factor if young else 1.0
    hours = ALL_HOURS
    if resolution_s < DAY_S:
        hours = sum(1 << int(hour) for hour in np.unique((train_t % DAY_S) // HOUR_S))
    model = replace(partial, spread=term, widen=widen, floor=config.min_sd_share if is_share else 0.0, hours=hours)
    if models is not None:
        models.put(cache_key, model)
    return model


def _huber(
    fit_t: np.ndarray,
    fit_y: np.ndarray,
    center: float,
    spread: float,
    now_s: int,
    resolution_s: int,
    config: DetectorConfig,
) -> Tuple[Tuple[float, ...], float]:
    """A HuberRegressor over time-of-day terms, fitted on standardised values weighted by recency:
    its coefficients and intercept."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import HuberRegressor

    age_days = (now_s - fit_t) / DAY_S
    weights = 0.5 ** (age_days / config.half_life_days)
    model = HuberRegressor(alpha=1e-4, max_iter=100, tol=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(_time_of_day_features(fit_t, config.harmonics, resolution_s), (fit_y - center) / spread, weights)
    return tuple(float(c) for c in model.coef_), float(model.intercept_)


class _ShortHistory:
    """The baseline of a series too young for the seasonal model (its first day or two).

    The expected value is the median of the points among the last ``local_window`` buckets (at
    least ``min_history`` of them: after an outage, scoring waits for fresh points, since a median
    from before it has missed the daily cycle's move), moved along the trend from the median of
    the window before it: it follows the cycle, and a change shows at once (a ramp mostly too,
    since a window's median trails it). Its spread is measured on its own one-step errors (each past point
    against the median of the window before it) over the last ``short_spread_window`` points,
    robustly (MAD): the cycle's lag is in it, past incidents do not dominate it.
    """

    #: The spread is re-estimated once per this many scored points (it moves slowly).
    REFRESH = 12

    def __init__(self, values: np.ndarray, denominator: Optional[np.ndarray], config: DetectorConfig) -> None:
        import numpy as np
        from numpy.lib.stride_tricks import sliding_window_view

        self.values, self.denominator, self.config = values, denominator, config
        window = config.local_window
        padded = np.concatenate([np.full(window, np.nan), values])
        before = sliding_window_view(padded, window)[: len(values)]  # row i: the window before point i
        enough = np.sum(~np.isnan(before), axis=1) >= config.min_history
        medians = nanmedian_rows(before)
        median = np.where(enough, medians, np.nan)
        # The window's median lags the daily cycle by half a window: move it along the trend
        # from the window before (where there is one) to the point being scored.
        earlier = np.full(len(values), np.nan)
        earlier[window:] = median[: max(0, len(values) - window)]
        trend = np.nan_to_num((median - earlier) / window)
        predicted = median + trend * (window + 1) / 2
        # The trend must show in the latest points too. After a step ends (or a ramp tops out)
        # the two windows' medians still differ, and extrapolating that difference expects a
        # drop (a rise) the series has already finished. On a straight trend the median of the
        # last ``min_history`` points has moved 15/18.5 of the way from the window's median to
        # the point scored (at 5 minutes); the expectation moves from the median at most twice as
        # far as they did, and in their direction.
        latest = nanmedian_rows(before[:, -config.min_history :])
        reach = np.where(np.isnan(latest), predicted, median + 2 * (latest - median))
        predicted = np.clip(predicted, np.minimum(median, reach), np.maximum(median, reach))
        self.predicted: np.ndarray = predicted if denominator is None else np.clip(predicted, 0.0, 1.0)
        self.present = np.flatnonzero(~np.isnan(values))
        self.valid = np.flatnonzero(~np.isnan(values) & enough)  # points with a one-step error

    def scores(self, points: np.ndarray, until: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Expected values, standard deviations and long-window scales at ``points`` (ascending),
        each trained on the points before its ``until`` (the point itself, or earlier when
        feedback froze the baseline)."""
        import numpy as np

        expected = self.predicted[until]
        sd = np.full(len(points), np.nan)
        long_scale = np.full(len(points), np.nan)
        for first in range(0, len(points), self.REFRESH):
            block = slice(first, first + self.REFRESH)
            sd[block], long_scale[block] = self._spread(int(until[first]), expected[block], points[block])
        sd[np.isnan(expected)] = np.nan
        return expected, sd * self.config.young_sd_factor, long_scale

    def _spread(self, until: int, expected: np.ndarray, points: np.ndarray) -> Tuple[np.ndarray, float]:
        """From the one-step errors before ``until``; while there are few, from the spread of the
        window itself around its median (and no long-window scale)."""
        import numpy as np

        end = int(np.searchsorted(self.valid, until))
        known = self.valid[max(0, end - self.config.short_spread_window) : end]
        if len(known) >= self.config.min_history:
            fitted = self.predicted[known]
        else:
            lo, hi = np.searchsorted(self.present, [until - self.config.local_window, until])
            known = self.present[lo:hi]
            if len(known) < self.config.min_history:
                return np.full(len(points), np.nan), np.nan
            fitted = np.full(len(known), expected[0])
        residuals = self.values[known] - fitted
        spread = _spread(residuals, fitted, self.denominator, known, expected, points, self.config)
        if self.denominator is None or not np.array_equal(fitted, self.predicted[known]):
            return spread, np.nan
        extra = _extra_variance(residuals, fitted, self.denominator[known])
        own_sd = _share_sd(fitted, self.denominator[known], extra, self.config)
        return spread, _long_scale(residuals / own_sd, known, self.config.long_points)


def _long_scale(z: np.ndarray, at: np.ndarray, points: int) -> float:
    """Robust standard deviation of the mean of ``points`` consecutive standardised residuals ``z``
    (at grid indices ``at``, ascending), between 1/sqrt(points) (independent) and 1 (moving
    together); NaN while fewer than six windows' worth are known.

    The short-history baseline's errors are correlated from point to point (a window's median
    trails the daily cycle), so an hour's mean residual varies more than independent points'
    would: measured on its own past errors, not assumed.
    """
    import numpy as np

    if len(at) < 6 * points:
        return float("nan")
    grid = np.full(int(at[-1] - at[0]) + 1, np.nan)
    grid[at - at[0]] = z
    means = _rolling_mean(grid, points, (2 * points + 2) // 3)
    means = means[~np.isnan(means)]
    if len(means) < 4 * points:
        return float("nan")
    spread = _MAD_TO_SD * float(np.median(np.abs(means - np.median(means))))
    return float(np.clip(spread, 1.0 / np.sqrt(points), 1.0))


def _binomial_var(share: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Sampling variance of a share over ``count`` samples; a share is never known better than
    one sample, so a frame expected at 0% seen in 2 of 7 samples is not a sure change."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        one_sample = np.where(count > 0, 1.0 / np.maximum(count, 1), 1.0)
    p = np.clip(np.maximum(share, one_sample), 1e-4, 1 - 1e-4)
    with np.errstate(divide="ignore", invalid="ignore"):
        var: np.ndarray = np.where(count > 0, p * (1 - p) / count, 0.0)
    return np.nan_to_num(var)


def _spread(
    residuals: np.ndarray,
    fitted: np.ndarray,
    denominator: Optional[np.ndarray],
    train: np.ndarray,
    expected: np.ndarray,
    span: np.ndarray,
    config: DetectorConfig,
) -> np.ndarray:
    import numpy as np

    if denominator is None:
        scale = np.maximum(np.abs(fitted), 1e-9)
        relative = residuals / scale
        rel_sd = _MAD_TO_SD * float(np.median(np.abs(relative - np.median(relative))))
        level_sd: np.ndarray = np.maximum(rel_sd, 0.02) * np.maximum(np.abs(expected), 1e-9)
        return level_sd
    extra = _extra_variance(residuals, fitted, denominator[train])
    return _share_sd(expected, denominator[span], extra, config)


def _extra_variance(residuals: np.ndarray, fitted: np.ndarray, counts: np.ndarray) -> float:
    """Variance of a share's residuals beyond sampling noise (workload mix), estimated robustly."""
    import numpy as np

    sigma = _MAD_TO_SD * float(np.median(np.abs(residuals - np.median(residuals))))
    binomial_train = _binomial_var(fitted, counts)
    return max(sigma**2 - float(np.median(binomial_train)), (0.25 * sigma) ** 2)


def _share_sd(expected: np.ndarray, counts: np.ndarray, extra: float, config: DetectorConfig) -> np.ndarray:
    """Standard deviation of a share expected at ``expected`` over ``counts`` samples."""
    import numpy as np

    share_sd: np.ndarray = np.maximum(_share_sd_of(expected, counts, extra), config.min_sd_share)
    return share_sd


def _share_sd_of(expected: np.ndarray, counts: np.ndarray, extra: float) -> np.ndarray:
    import numpy as np

    binomial_now = _binomial_var(expected, np.nan_to_num(counts))
    share_sd: np.ndarray = np.sqrt(binomial_now + extra)
    return share_sd


def _rolling_mean(values: np.ndarray, k: int, min_count: int = 2) -> np.ndarray:
    """Mean of the valid values among each valid point and the ``k - 1`` before it (NaN with fewer
    than ``min_count``)."""
    import numpy as np

    valid = ~np.isnan(values)
    sums = np.concatenate([[0.0], np.cumsum(np.where(valid, values, 0.0))])
    counts = np.concatenate([[0], np.cumsum(valid)])
    idx = np.arange(len(values))
    lo = np.maximum(idx - k + 1, 0)
    total = sums[idx + 1] - sums[lo]
    count = counts[idx + 1] - counts[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean: np.ndarray = np.where((count >= min(min_count, k)) & valid, total / np.maximum(count, 1), np.nan)
    return mean


def flag(
    values: np.ndarray,
    baseline: np.ndarray,
    sd: np.ndarray,
    is_share: bool,
    config: DetectorConfig,
    factor: float = 1.0,
    long_scale: Optional[np.ndarray] = None,
) -> Scores:
    """Flags where ``values`` leave ``baseline`` by enough standard deviations and enough effect.

    Three tests, each needing the effect as well: a point alone (a spike), the mean of the last
    :attr:`DetectorConfig.sustain_points` (a step), and, where ``long_scale`` is known (a short
    history; see :class:`Fitted`), the mean of the last :attr:`DetectorConfig.long_points`
    against the spread such means had (a smaller step, each of whose points is within the
    noise). A share whose baseline is about zero (a frame new since training) must move twice
    the usual effect: code added by a deploy is expected to show up.
    """
    import numpy as np

    residual = values - baseline
    with np.errstate(invalid="ignore", divide="ignore"):
        z = residual / sd
    if is_share:
        raw_effect = np.where(np.abs(baseline) < config.new_frame_share, 2.0, 1.0) * config.min_effect_share
    else:
        raw_effect = config.min_effect_relative * np.abs(baseline)
    effect = np.broadcast_to(np.asarray(raw_effect, dtype=float) * factor, values.shape)
    k, long_k = config.sustain_points, config.long_points
    mean_r = _rolling_mean(residual, k)
    mean_z = _rolling_mean(z, k)
    long_r = _rolling_mean(residual, long_k, (2 * long_k + 2) // 3)
    long_z = _rolling_mean(z, long_k, (2 * long_k + 2) // 3)
    scale = np.full(len(values), np.nan) if long_scale is None else long_scale
    flags = []
    triggers = np.zeros(len(values), dtype=bool)
    for sign in (1.0, -1.0):
        with np.errstate(invalid="ignore", divide="ignore"):
            above = np.nan_to_num(sign * residual >= effect).astype(bool)
            holding = np.nan_to_num(sign * residual >= effect / 2).astype(bool)
            point = np.nan_to_num(sign * z >= config.z_point * factor).astype(bool) & above
            sustained = np.nan_to_num((sign * mean_z >= config.z_sustained * factor) & (sign * mean_r >= effect))
            long = np.nan_to_num((sign * long_z >= config.z_long * factor * scale) & (sign * long_r >= effect))
            # A long window: still holding now, on average over the last few points (an hour's
            # mean still lifted by a change that already ended must not report it again).
            recent = np.nan_to_num(sign * mean_r >= effect / 2).astype(bool)
        sustained, long = sustained.astype(bool), long.astype(bool) & holding & recent
        trigger = point | sustained | long
        # A window's trigger dates the change from where its run of points above the effect began
        # (contiguous: a point above the effect by chance just before does not move the start).
        flag = trigger | _back_dated(sustained, above, k - 1) | _back_dated(long, above, long_k - 1)
        flags.append(_hold(flag, holding))
        triggers |= trigger
    return Scores(baseline, sd, flags[0], flags[1], triggers, z)


def _back_dated(trigger: np.ndarray, above: np.ndarray, most: int) -> np.ndarray:
    """Points up to ``most`` before each trigger reached through an unbroken run of ``above`` points."""
    import numpy as np

    out = np.zeros(len(trigger), dtype=bool)
    reach = trigger
    for _ in range(most):
        earlier = np.zeros(len(trigger), dtype=bool)
        earlier[:-1] = reach[1:] & above[:-1]  # one point further back, still above
        if not earlier.any():
            break
        out |= earlier
        reach = earlier
    return out


def _hold(flag: np.ndarray, holding: np.ndarray) -> np.ndarray:
    """Keep an open anomaly open while the residual stays above half the effect (hysteresis)."""
    import numpy as np

    out = flag.copy()
    for i in np.flatnonzero(holding & ~flag).tolist():
        if i > 0 and out[i - 1]:
            out[i] = True
    return out


def events(scores: Scores, values: np.ndarray, config: DetectorConfig) -> List[Event]:
    """Flagged runs merged across gaps of at most ``merge_gap`` points, up first then down."""
    import numpy as np

    valid = np.flatnonzero(~np.isnan(values))
    last_valid = int(valid[-1]) if len(valid) else -1
    found: List[Event] = []
    for direction, flag in (("up", scores.up), ("down", scores.down)):
        if direction == "down" and not config.report_decreases:
            continue
        sign = 1.0 if direction == "up" else -1.0
        for start, end in _runs(np.flatnonzero(flag), config.merge_gap):
            window = np.arange(start, end + 1)
            strength = np.nan_to_num(sign * (values[window] - scores.baseline[window]), nan=-np.inf)
            peak = int(window[int(np.argmax(strength))])
            fired = np.flatnonzero(scores.trigger[window])
            detected = int(window[fired[0]]) if len(fired) else start
            found.append(Event(start, end, peak, detected, end >= last_valid, direction))
    return found


def _runs(indices: np.ndarray, gap: int) -> List[Tuple[int, int]]:
    runs: List[Tuple[int, int]] = []
    for index in indices.tolist():
        if runs and index - runs[-1][1] <= gap + 1:
            runs[-1] = (runs[-1][0], index)
        else:
            runs.append((index, index))
    return runs


def renormalisation(
    values: np.ndarray, baselines: np.ndarray, eligible: np.ndarray, config: DetectorConfig
) -> np.ndarray:
    """Per point, the factor by which most frames' shares moved together (1 where unknown).

    Shares sum to one: when one frame takes 10 more points, every other frame's share shrinks by
    about 10%, and when a frame disappears the others grow. The median over frames of
    observed / expected captures that common movement without being moved by the few frames that
    really changed; the expected value of every frame not above the others is multiplied by it.
    ``values`` and ``baselines`` are (frames, points); ``eligible`` selects the frames to use.
    """
    import numpy as np

    chosen = eligible & np.any(baselines > 0.01, axis=1)
    if int(chosen.sum()) < config.min_frames_to_renormalise:
        return np.ones(values.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = np.where(baselines[chosen] > 0.01, values[chosen] / baselines[chosen], np.nan)
    enough = np.sum(~np.isnan(ratios), axis=0) >= config.min_frames_to_renormalise
    factor = np.ones(values.shape[1])
    if np.any(enough):
        factor[enough] = np.nanmedian(ratios[:, enough], axis=0)
    return factor
