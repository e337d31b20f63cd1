"""The profile model: stacks of frames with counts per sample type.

A :class:`Profile` is plain data, serialisable to the greenflame JSON wire format
(see ``docs/wire-format.md``) and convertible to and from pprof, collapsed stacks
and speedscope by :mod:`greenflame.analyzer.formats`.

Stacks are stored root first, as tuples of indices into ``Profile.frames``.
Values are counts, one per sample type, in the unit the sample type names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from .errors import UserError

WIRE_FORMAT = "greenflame-profile"
WIRE_VERSION = 2

#: Sample type names used by the agent. ``wall`` counts every sampled thread;
#: ``cpu`` counts only threads that were running on a CPU when sampled.
WALL = "wall"
CPU = "cpu"


class ProfileError(UserError, ValueError):
    """A profile is malformed or cannot be read; the message is for the user."""


@dataclass(frozen=True)
class Frame:
    """One function in a stack.

    ``line`` is the first line of the function's definition (0 when unknown),
    so that every call into a function shares one node in the call tree.
    """

    function: str
    file: str = ""
    line: int = 0

    def label(self) -> str:
        """A short human-readable name: ``function (file:line)``."""
        if not self.file:
            return self.function
        return f"{self.function} ({self.file}:{self.line})"


@dataclass(frozen=True)
class SampleType:
    """What one value column counts, and in which unit (``samples``, ``nanoseconds``)."""

    name: str
    unit: str = "samples"


@dataclass
class Sample:
    """One distinct stack with its values and labels."""

    stack: Tuple[int, ...]
    values: List[int]
    labels: Dict[str, str] = field(default_factory=dict)


@dataclass
class Profile:
    """Aggregated stack samples from one process or group over one time window."""

    sample_types: List[SampleType] = field(default_factory=lambda: [SampleType(WALL), SampleType(CPU)])
    frames: List[Frame] = field(default_factory=list)
    samples: List[Sample] = field(default_factory=list)
    group: str = ""
    start_time_unix_ns: int = 0
    duration_ns: int = 0
    sample_period_ns: int = 10_000_000
    metadata: Dict[str, Any] = field(default_factory=dict)
    #: Set by :func:`merge`: ``(sum of samples x period, samples)`` over the merged profiles whose
    #: period is known, so that merging merges gives exactly the period of merging their parts
    #: (the rounded mean alone cannot). None for a profile as reported: then it is its own samples
    #: times its period (see :func:`period_weight`). Not part of the wire format.
    period_weight: Optional[Tuple[int, int]] = field(default=None, repr=False, compare=False)
    _frame_index: Dict[Frame, int] = field(default_factory=dict, repr=False, compare=False)
    _sample_index: Dict[Tuple[Tuple[int, ...], Tuple[Tuple[str, str], ...]], int] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self._frame_index = {frame: i for i, frame in enumerate(self.frames)}
        self._sample_index = {}
        for i, sample in enumerate(self.samples):
            self._sample_index[(sample.stack, _label_key(sample.labels))] = i

    # -- building ---------------------------------------------------------
    def frame_id(self, frame: Frame) -> int:
        """The index of ``frame`` in ``frames``, adding it if new."""
        index = self._frame_index.get(frame)
        if index is None:
            index = len(self.frames)
            self.frames.append(frame)
            self._frame_index[frame] = index
        return index

    def add(
        self,
        stack: Sequence[Frame],
        values: Sequence[int],
        labels: Optional[Mapping[str, str]] = None,
    ) -> None:
        """Add ``values`` to the sample with this root-first ``stack`` and ``labels``."""
        if len(values) != len(self.sample_types):
            raise ProfileError(
                f"sample has {len(values)} values but the profile has {len(self.sample_types)} sample types"
            )
        ids = tuple(self.frame_id(frame) for frame in stack)
        self.add_ids(ids, values, labels)

    def add_ids(
        self,
        stack: Tuple[int, ...],
        values: Sequence[int],
        labels: Optional[Mapping[str, str]] = None,
    ) -> None:
        """Like :meth:`add` with a stack already made of frame indices."""
        label_dict = dict(labels or {})
        key = (stack, _label_key(label_dict))
        index = self._sample_index.get(key)
        if index is None:
            self._sample_index[key] = len(self.samples)
            self.samples.append(Sample(stack, list(values), label_dict))
            return
        existing = self.samples[index].values
        for i, value in enumerate(values):
            existing[i] += value

    # -- reading ----------------------------------------------------------
    def value_index(self, name: str) -> int:
        """The column of sample type ``name``; ProfileError if absent."""
        for i, sample_type in enumerate(self.sample_types):
            if sample_type.name == name:
                return i
        names = ", ".join(t.name for t in self.sample_types) or "none"
        raise ProfileError(f"profile has no sample type {name!r} (it has: {names})")

    def has_type(self, name: str) -> bool:
        """Whether the profile has a sample type called ``name``."""
        return any(t.name == name for t in self.sample_types)

    def total(self, name: Optional[str] = None) -> int:
        """Sum of one sample type over all samples (the first type by default)."""
        column = 0 if name is None else self.value_index(name)
        return sum(sample.values[column] for sample in self.samples)

    def stacks(self, name: Optional[str] = None) -> Iterator[Tuple[Tuple[Frame, ...], int, Dict[str, str]]]:
        """Yield ``(frames root first, value, labels)`` for every sample with a non-zero value."""
        column = 0 if name is None else self.value_index(name)
        frames = self.frames
        for sample in self.samples:
            value = sample.values[column]
            if value:
                yield tuple(frames[i] for i in sample.stack), value, sample.labels

    def validate(self) -> None:
        """Raise ProfileError when indices or value counts are inconsistent."""
        width = len(self.sample_types)
        if width == 0:
            raise ProfileError("profile has no sample types")
        count = len(self.frames)
        for n, sample in enumerate(self.samples):
            if len(sample.values) != width:
                raise ProfileError(f"sample {n} has {len(sample.values)} values, expected {width}")
            for index in sample.stack:
                if not 0 <= index < count:
                    raise ProfileError(f"sample {n} refers to frame {index}, which does not exist")
            if any(v < 0 for v in sample.values):
                raise ProfileError(f"sample {n} has a negative value")


def _label_key(labels: Mapping[str, str]) -> Tuple[Tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def merge(profiles: Sequence[Profile], group: str = "") -> Profile:
    """Merge profiles with the same sample types into one covering their whole window.

    Sample types are matched by name; a type missing from one profile counts zero there.
    Metadata comes from the last profile, except ``invocations`` and ``dropped``, whose
    counts and sums are added up across profiles (see :func:`merge_metadata`).
    """
    names: List[SampleType] = []
    for profile in profiles:
        for sample_type in profile.sample_types:
            if sample_type.name not in [t.name for t in names]:
                names.append(sample_type)
    merged = Profile(sample_types=names or [SampleType(WALL), SampleType(CPU)], group=group)
    if not profiles:
        return merged
    merged.group = group or profiles[0].group
    starts = [p.start_time_unix_ns for p in profiles if p.start_time_unix_ns]
    ends = [p.start_time_unix_ns + p.duration_ns for p in profiles if p.start_time_unix_ns]
    if starts:
        merged.start_time_unix_ns = min(starts)
        merged.duration_ns = max(ends) - merged.start_time_unix_ns
    merged.sample_period_ns = mean_period_ns(profiles)
    merged.period_weight = _period_sums(profiles)
    merged.metadata = merge_metadata([p.metadata for p in profiles])
    for profile in profiles:
        columns = [next((i for i, t in enumerate(profile.sample_types) if t.name == want.name), None) for want in names]
        same_columns = columns == list(range(len(names)))
        ids = _frame_ids(merged, profile)
        for sample in profile.samples:
            stack = tuple(map(ids.__getitem__, sample.stack))
            values = sample.values if same_columns else [0 if c is None else sample.values[c] for c in columns]
            merged.add_ids(stack, values, sample.labels)
    return merged


def _frame_ids(merged: Profile, profile: Profile) -> List[int]:
    """``profile``'s frame index -> ``merged``'s, adding the frames its samples use in the order
    they first appear (as adding each stack's frames one by one would; unused frames are left out)."""
    ids = [0] * len(profile.frames)
    frames = profile.frames
    for index in dict.fromkeys(chain.from_iterable(sample.stack for sample in profile.samples)):
        ids[index] = merged.frame_id(frames[index])
    return ids


def mean_period_ns(profiles: Sequence[Profile]) -> int:
    """The sampling period of ``profiles`` merged: each one's samples times its own period, over all
    their samples (CPU samples where there are, else the first type's), so that the merged samples
    stand for the time the profiles sampled. A report whose rate the agent's CPU budget lowered
    has a longer period: each of its samples stands for more time. Periods of 0 (unknown) are left
    out; with no sample at all, the first known period."""
    weighted, count = _period_sums(profiles)
    if count:
        return round(weighted / count)
    known = [p for p in profiles if p.sample_period_ns > 0]
    return known[0].sample_period_ns if known else (profiles[0].sample_period_ns if profiles else 0)


def period_weight(profile: Profile) -> Tuple[int, int]:
    """``(sum of samples x period, samples)`` that ``profile`` adds to a merge's mean period: a merge's
    own sums (so merging is associative), else its samples (CPU where it has them) times its period."""
    if profile.period_weight is not None:
        return profile.period_weight
    samples = profile.total(CPU if profile.has_type(CPU) else None)
    return samples * profile.sample_period_ns, samples


def _period_sums(profiles: Sequence[Profile]) -> Tuple[int, int]:
    """The :func:`period_weight` of the profiles of known period, added up."""
    weighted = count = 0
    for profile in profiles:
        if profile.sample_period_ns > 0:
            part_weighted, part_count = period_weight(profile)
            weighted += part_weighted
            count += part_count
    return weighted, count


#: How many per-invocation durations ``metadata["invocations"]["durations_ms"]`` keeps.
MAX_DURATIONS_KEPT = 1000


def merge_metadata(items: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """Metadata of merged profiles: the last one's keys, with counters added up.

    ``invocations`` sums ``count``, ``cold_starts`` and ``duration_ms_sum`` and keeps
    the last :data:`MAX_DURATIONS_KEPT` ``durations_ms``; ``dropped`` sums each reason;
    ``rate_limited`` (the agent's CPU budget lowered the rate) counts the ``reports`` that say so,
    with the ``lowest_rate_hz`` of any and the ``times`` summed; ``late_reports`` counts those whose
    sampler came late for part of its schedule (``schedule_skipped``: their rate is the one achieved).
    Values of the wrong type are ignored rather than trusted.
    """
    merged: Dict[str, Any] = dict(items[-1]) if items else {}
    invocations = [m["invocations"] for m in items if isinstance(m.get("invocations"), Mapping)]
    if invocations:
        merged["invocations"] = _merge_invocations(invocations)
    dropped = [m["dropped"] for m in items if isinstance(m.get("dropped"), Mapping)]
    if dropped:
        totals: Dict[str, int] = {}
        for counts in dropped:
            for reason, count in counts.items():
                if is_number(count):
                    totals[reason] = totals.get(reason, 0) + count
        merged["dropped"] = totals
    limited = [m["rate_limited"] for m in items if isinstance(m.get("rate_limited"), Mapping)]
    if limited:
        merged["rate_limited"] = _merge_rate_limits(limited)
    late = sum(late_reports(m) for m in items)
    merged.pop("schedule_skipped", None)  # one report's figure, not the merge's
    merged.pop("late_reports", None)
    if late:
        merged["late_reports"] = late
    return merged


def late_reports(metadata: Mapping[str, Any]) -> int:
    """How many reports ``metadata`` stands for whose sampler skipped part of its schedule: a merge's
    ``late_reports``, else 1 when it is one report with a ``schedule_skipped`` above 0."""
    value: Any = metadata.get("late_reports")
    if is_number(value) and value >= 1:
        return int(value)
    skipped: Any = metadata.get("schedule_skipped")
    return 1 if is_number(skipped) and skipped > 0 else 0


def _merge_rate_limits(items: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    result: Dict[str, Any] = {"reports": sum(limited_reports(item) for item in items)}
    for key, combine in (("lowest_rate_hz", min), ("times", sum), ("cpu_budget_cores", _last)):
        values = _numbers(items, key)
        if values:
            result[key] = combine(values)
    return result


def _last(values: Sequence[Any]) -> Any:
    return values[-1]


def limited_reports(item: Mapping[str, Any]) -> int:
    """How many reports one ``rate_limited`` entry stands for (1 for an agent's own; more once merged)."""
    value: Any = item.get("reports")
    return int(value) if is_number(value) and value >= 1 else 1


def _merge_invocations(items: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    result: Dict[str, Any] = dict(items[-1])
    for key in ("count", "cold_starts", "duration_ms_sum"):
        values = _numbers(items, key)
        if values:
            result[key] = sum(values)
    durations: List[Any] = []
    for item in items:
        if isinstance(item.get("durations_ms"), list):
            durations.extend(d for d in item["durations_ms"] if is_number(d))
    if durations:
        result["durations_ms"] = durations[-MAX_DURATIONS_KEPT:]
    return result


def _numbers(items: Sequence[Mapping[str, Any]], key: str) -> List[Any]:
    """The values of ``key`` in ``items`` that are numbers, in order."""
    return [item[key] for item in items if is_number(item.get(key))]


def is_number(value: Any) -> bool:
    """Whether ``value`` is an int or a float (not a bool): untrusted metadata is checked with it."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)
