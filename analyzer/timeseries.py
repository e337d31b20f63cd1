"""Per-group time series built from profiles, the input of anomaly detection.

Each profile covers one time window (``start_time_unix_ns``, ``duration_ns``). A profile is put in
the bucket that holds the middle of its window; counts of the profiles in one bucket are summed,
and shares are computed from the sums, so an hourly point is exactly the merge of its 5-minute
points.

For every group and resolution (:data:`RESOLUTIONS_S`: 5 minutes, 1 hour, 1 day) the series are:

- ``cpu_samples`` and ``wall_samples``: total samples of each type;
- ``invocations`` and ``mean_duration_ms``: from ``metadata["invocations"]`` where present;
- per significant frame, ``inclusive_share`` (samples whose stack contains the frame, divided by all
  samples) and ``self_share`` (samples where it is the running frame), both of the ``cpu`` sample
  type when the group has CPU samples, else of ``wall``.

A frame is *significant* when its inclusive share reaches :data:`SIGNIFICANT_SHARE` (1%) in at least
one bucket holding at least :data:`MIN_BUCKET_SAMPLES` samples, or over all buckets together; at
most :data:`MAX_FRAMES` frames per group are kept, the largest first. Frames are identified by
:func:`frame_key`, which ignores line numbers and directories so that a deploy that moves code does
not start new series.

Gaps are explicit: a bucket with no profile is absent from ``times`` (never a zero). A frame that
is absent from a bucket that has samples has a real share of 0 there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from .model import CPU, WALL, Frame, Profile, ProfileError

#: The standard resolutions, in seconds: 5 minutes, 1 hour, 1 day.
RESOLUTIONS_S: Tuple[int, ...] = (300, 3600, 86400)
#: Inclusive share a frame must reach in some bucket to get a series.
SIGNIFICANT_SHARE = 0.01
#: Buckets with fewer samples than this do not make a frame significant (their shares are noise).
MIN_BUCKET_SAMPLES = 20
#: Most frame series kept per group and resolution.
MAX_FRAMES = 300
#: The pseudo-frame that names a group-level series.
TOTAL = "[total]"

#: Group-level metrics.
TOTAL_METRICS: Tuple[str, ...] = ("cpu_samples", "wall_samples", "invocations", "mean_duration_ms")

#: ``<string>``: code generated at run time by ``exec`` (a namedtuple's ``__new__``, a dataclass's
#: ``__init__``): nothing the user can open and fix, and one frame key for all of it.
_LIBRARY_MARKERS = ("site-packages", "dist-packages", "/lib/python", "\\lib\\python", "<frozen", "<string>")
_SOURCE_SUFFIX = re.compile(r"\.(py|pyc|pyo|pyx|pyi|so|pyd)$")


def frame_key(frame: Frame) -> str:
    """A name for ``frame`` that survives deploys: ``module.function``, without line or directories.

    ``module`` is the file's base name without extension (the package directory for
    ``__init__.py``), so ``/var/task/app/handler.py:42 parse`` and ``/tmp/build/app/handler.py:57
    parse`` are both ``handler.parse``.
    """
    function = frame.function or "<unknown>"
    module = _module_name(frame.file)
    if not module or function == module or function.startswith(module + "."):
        return function
    return f"{module}.{function}"


def _module_name(path: str) -> str:
    if not path:
        return ""
    if path.startswith("<frozen ") and path.endswith(">"):
        return path[len("<frozen ") : -1].rsplit(".", 1)[-1]
    if path.startswith("<"):
        return ""
    parts = [p for p in re.split(r"[\\/]", path) if p]
    if not parts:
        return ""
    name = _SOURCE_SUFFIX.sub("", parts[-1])
    if name == "__init__" and len(parts) > 1:
        return parts[-2]
    return name


def is_library_file(path: str) -> bool:
    """Whether ``path`` is installed third-party or standard-library code rather than the user's."""
    return any(marker in path for marker in _LIBRARY_MARKERS)


@dataclass
class Series:
    """One metric over time: ``points`` are ``(bucket start, value)``, sorted, gaps absent."""

    group: str
    metric: str
    frame: str
    resolution_s: int
    points: List[Tuple[int, float]]


@dataclass
class GroupSeries:
    """All series of one group at one resolution, aligned on ``times`` (bucket starts, Unix seconds).

    ``totals[metric][i]`` and ``inclusive[frame][i]`` are the values at ``times[i]``; ``None`` in a
    list means the value is unknown there (e.g. no invocation metadata, or no samples to share).
    ``denominator[i]`` is the sample count that shares are fractions of.
    """

    group: str
    resolution_s: int
    share_of: str
    times: List[int] = field(default_factory=list)
    denominator: List[float] = field(default_factory=list)
    totals: Dict[str, List[Optional[float]]] = field(default_factory=dict)
    inclusive: Dict[str, List[Optional[float]]] = field(default_factory=dict)
    self_share: Dict[str, List[Optional[float]]] = field(default_factory=dict)
    #: frame key -> keys of the frames seen above it in some stack.
    ancestors: Dict[str, Set[str]] = field(default_factory=dict)
    #: frame keys whose file is third-party or standard-library code.
    library: Set[str] = field(default_factory=set)

    def series(self) -> List[Series]:
        """Every metric as a :class:`Series` (gaps and unknown values left out)."""
        result = [self._one(metric, TOTAL, values) for metric, values in self.totals.items()]
        for frame, values in self.inclusive.items():
            result.append(self._one("inclusive_share", frame, values))
        for frame, values in self.self_share.items():
            result.append(self._one("self_share", frame, values))
        return result

    def _one(self, metric: str, frame: str, values: Sequence[Optional[float]]) -> Series:
        points = [(t, v) for t, v in zip(self.times, values) if v is not None]
        return Series(self.group, metric, frame, self.resolution_s, points)


@dataclass
class _Bucket:
    cpu: float = 0.0
    wall: float = 0.0
    invocations: Optional[float] = None
    duration_ms: Optional[float] = None
    inclusive: Dict[str, float] = field(default_factory=dict)
    self_counts: Dict[str, float] = field(default_factory=dict)


@dataclass
class _Window:
    """What one profile contributes, independent of the resolution."""

    middle_s: float
    cpu: float
    wall: float
    invocations: Optional[float]
    duration_ms: Optional[float]
    inclusive: Dict[str, float]
    self_counts: Dict[str, float]


def build_series(
    profiles: Iterable[Profile], resolutions_s: Sequence[int] = RESOLUTIONS_S
) -> Dict[str, Dict[int, GroupSeries]]:
    """Series per group (``""`` for profiles without a group) and resolution: ``result[group][300]``.

    Raises ProfileError when a profile has no time window.
    """
    by_group: Dict[str, List[Profile]] = {}
    for profile in profiles:
        by_group.setdefault(profile.group, []).append(profile)
    result: Dict[str, Dict[int, GroupSeries]] = {}
    for group, members in sorted(by_group.items()):
        result[group] = group_series(members, resolutions_s)
    return result


def group_series(profiles: Sequence[Profile], resolutions_s: Sequence[int] = RESOLUTIONS_S) -> Dict[int, GroupSeries]:
    """The series of one group's profiles at each resolution."""
    for resolution in resolutions_s:
        if resolution <= 0:
            raise ValueError(f"resolution must be positive, got {resolution}")
    share_of = CPU if any(p.has_type(CPU) and p.total(CPU) > 0 for p in profiles) else WALL
    ancestors: Dict[str, Set[str]] = {}
    library: Set[str] = set()
    windows = [_window(p, share_of, ancestors, library) for p in profiles]
    group = profiles[0].group if profiles else ""
    out: Dict[int, GroupSeries] = {}
    for resolution in resolutions_s:
        buckets = _bucketize(windows, resolution)
        out[resolution] = _assemble(group, resolution, share_of, buckets, ancestors, library)
    return out


def _window(profile: Profile, share_of: str, ancestors: Dict[str, Set[str]], library: Set[str]) -> _Window:
    if profile.start_time_unix_ns <= 0:
        raise ProfileError(
            f"profile of group {profile.group!r} has no start time; anomaly detection needs each profile's time window"
        )
    middle_s = (profile.start_time_unix_ns + max(profile.duration_ns, 0) / 2) / 1e9
    cpu = float(profile.total(CPU)) if profile.has_type(CPU) else 0.0
    wall = float(profile.total(WALL)) if profile.has_type(WALL) else 0.0
    inclusive: Dict[str, float] = {}
    self_counts: Dict[str, float] = {}
    if profile.has_type(share_of):
        for stack, value, _labels in profile.stacks(share_of):
            keys = [frame_key(frame) for frame in stack]
            _note_structure(stack, keys, ancestors, library)
            for key in set(keys):
                inclusive[key] = inclusive.get(key, 0.0) + value
            if keys:
                self_counts[keys[-1]] = self_counts.get(keys[-1], 0.0) + value
    count, duration = _invocations(profile.metadata)
    return _Window(middle_s, cpu, wall, count, duration, inclusive, self_counts)


def _note_structure(stack: Sequence[Frame], keys: List[str], ancestors: Dict[str, Set[str]], library: Set[str]) -> None:
    for depth, (frame, key) in enumerate(zip(stack, keys)):
        above = ancestors.setdefault(key, set())
        above.update(k for k in keys[:depth] if k != key)
        if is_library_file(frame.file):
            library.add(key)


def _invocations(metadata: Mapping[str, Any]) -> Tuple[Optional[float], Optional[float]]:
    info = metadata.get("invocations")
    if not isinstance(info, Mapping) or not isinstance(info.get("count"), (int, float)):
        return None, None
    count = float(info["count"])
    total = info.get("duration_ms_sum")
    if not isinstance(total, (int, float)):
        durations = info.get("durations_ms")
        total = sum(durations) if isinstance(durations, list) and len(durations) == count else None
    return count, (float(total) if total is not None else None)


def _bucketize(windows: Sequence[_Window], resolution: int) -> Dict[int, _Bucket]:
    buckets: Dict[int, _Bucket] = {}
    for window in windows:
        start = int(window.middle_s // resolution) * resolution
        bucket = buckets.setdefault(start, _Bucket())
        bucket.cpu += window.cpu
        bucket.wall += window.wall
        if window.invocations is not None:
            bucket.invocations = (bucket.invocations or 0.0) + window.invocations
            if window.duration_ms is not None:
                bucket.duration_ms = (bucket.duration_ms or 0.0) + window.duration_ms
        _add_counts(bucket.inclusive, window.inclusive)
        _add_counts(bucket.self_counts, window.self_counts)
    return buckets


def _add_counts(into: Dict[str, float], counts: Mapping[str, float]) -> None:
    for key, value in counts.items():
        into[key] = into.get(key, 0.0) + value


def _assemble(
    group: str,
    resolution: int,
    share_of: str,
    buckets: Mapping[int, _Bucket],
    ancestors: Dict[str, Set[str]],
    library: Set[str],
) -> GroupSeries:
    times = sorted(buckets)
    ordered = [buckets[t] for t in times]
    denominator = [b.cpu if share_of == CPU else b.wall for b in ordered]
    result = GroupSeries(group, resolution, share_of, times, denominator, ancestors=ancestors, library=library)
    result.totals = {
        "cpu_samples": [b.cpu for b in ordered],
        "wall_samples": [b.wall for b in ordered],
        "invocations": [b.invocations for b in ordered],
        "mean_duration_ms": [_mean_duration(b) for b in ordered],
    }
    for frame in _significant_frames(ordered, denominator):
        result.inclusive[frame] = _shares(ordered, denominator, frame, inclusive=True)
        result.self_share[frame] = _shares(ordered, denominator, frame, inclusive=False)
    return result


def _mean_duration(bucket: _Bucket) -> Optional[float]:
    if not bucket.invocations or bucket.duration_ms is None:
        return None
    return bucket.duration_ms / bucket.invocations


def _significant_frames(buckets: Sequence[_Bucket], denominator: Sequence[float]) -> List[str]:
    """Frames whose inclusive share reaches SIGNIFICANT_SHARE in a well-sampled bucket or over all
    buckets together (sparse sampling: a busy machine lowers the agent's rate), largest first."""
    peak: Dict[str, float] = {}
    overall = sum(denominator)
    if overall >= MIN_BUCKET_SAMPLES:
        totals: Dict[str, float] = {}
        for bucket in buckets:
            _add_counts(totals, bucket.inclusive)
        peak = {key: count / overall for key, count in totals.items() if count / overall >= SIGNIFICANT_SHARE}
    for bucket, total in zip(buckets, denominator):
        if total < MIN_BUCKET_SAMPLES:
            continue
        for key, count in bucket.inclusive.items():
            share = count / total
            if share >= SIGNIFICANT_SHARE and share > peak.get(key, 0.0):
                peak[key] = share
    ranked = sorted(peak, key=lambda k: (-peak[k], k))
    return ranked[:MAX_FRAMES]


def _shares(
    buckets: Sequence[_Bucket], denominator: Sequence[float], frame: str, inclusive: bool
) -> List[Optional[float]]:
    values: List[Optional[float]] = []
    for bucket, total in zip(buckets, denominator):
        counts = bucket.inclusive if inclusive else bucket.self_counts
        values.append(counts.get(frame, 0.0) / total if total > 0 else None)
    return values
