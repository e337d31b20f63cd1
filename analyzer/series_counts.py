"""What profiles contribute to a time-series bucket: sample counts per frame, summed.

A :class:`BucketCounts` holds, for the profiles whose window's middle falls in one bucket, the
total CPU and wall samples, the invocation counts and durations, and per sample type the
inclusive and self sample counts of each frame (keyed by
:func:`~greenflame.analyzer.timeseries.frame_key`), with the structure anomaly folding needs
(which frames were seen above which, which are library code). Counts add up exactly, so the
buckets of a range can be computed once per profile, stored (:meth:`BucketCounts.to_dict`), and
summed later into any coarser bucket without the profiles (``timeseries.series_from_buckets``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from itertools import chain
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from .model import CPU, WALL, Frame, Profile, ProfileError

Counts = Dict[str, float]
#: Version of the :meth:`BucketCounts.to_dict` document.
COUNTS_VERSION = 1


@dataclass
class BucketCounts:
    """Summed counts of the profiles in one bucket (see the module's docstring)."""

    cpu: float = 0.0
    wall: float = 0.0
    invocations: Optional[float] = None
    duration_ms: Optional[float] = None
    profiles: int = 0
    #: sample type -> frame key -> samples whose stack holds the frame.
    inclusive: Dict[str, Counts] = field(default_factory=dict)
    #: sample type -> frame key -> samples where the frame was running.
    self_counts: Dict[str, Counts] = field(default_factory=dict)
    #: frame key -> keys of the frames seen above it in some stack.
    ancestors: Dict[str, Set[str]] = field(default_factory=dict)
    #: frame keys whose file is third-party or standard-library code.
    library: Set[str] = field(default_factory=set)

    def add(self, other: BucketCounts) -> None:
        """Add ``other``'s counts and structure to these."""
        self.cpu += other.cpu
        self.wall += other.wall
        self.profiles += other.profiles
        if other.invocations is not None:
            self.invocations = (self.invocations or 0.0) + other.invocations
            if other.duration_ms is not None:
                self.duration_ms = (self.duration_ms or 0.0) + other.duration_ms
        for sample_type, counts in other.inclusive.items():
            add_counts(self.inclusive.setdefault(sample_type, {}), counts)
        for sample_type, counts in other.self_counts.items():
            add_counts(self.self_counts.setdefault(sample_type, {}), counts)
        for key, above in other.ancestors.items():
            self.ancestors.setdefault(key, set()).update(above)
        self.library.update(other.library)

    def copy(self) -> BucketCounts:
        """A copy sharing no dict or set with these counts (they may then change without it)."""
        return replace(
            self,
            inclusive={t: dict(c) for t, c in self.inclusive.items()},
            self_counts={t: dict(c) for t, c in self.self_counts.items()},
            ancestors={key: set(above) for key, above in self.ancestors.items()},
            library=set(self.library),
        )

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready document (sets as sorted lists), read back by :meth:`from_dict`."""
        return {
            "version": COUNTS_VERSION,
            "cpu": self.cpu,
            "wall": self.wall,
            "invocations": self.invocations,
            "duration_ms": self.duration_ms,
            "profiles": self.profiles,
            "inclusive": self.inclusive,
            "self": self.self_counts,
            "ancestors": {key: sorted(above) for key, above in self.ancestors.items()},
            "library": sorted(self.library),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BucketCounts:
        """The counts written by :meth:`to_dict`; ValueError for another version."""
        if data.get("version") != COUNTS_VERSION:
            raise ValueError(f"bucket counts version {data.get('version')!r} is not {COUNTS_VERSION}")
        return cls(
            cpu=float(data["cpu"]),
            wall=float(data["wall"]),
            invocations=data["invocations"],
            duration_ms=data["duration_ms"],
            profiles=int(data["profiles"]),
            inclusive={t: dict(c) for t, c in data["inclusive"].items()},
            self_counts={t: dict(c) for t, c in data["self"].items()},
            ancestors={key: set(above) for key, above in data["ancestors"].items()},
            library=set(data["library"]),
        )


def add_counts(into: Counts, counts: Mapping[str, float]) -> None:
    """Add each count of ``counts`` into ``into``."""
    for key, value in counts.items():
        into[key] = into.get(key, 0.0) + value


def middle_s(profile: Profile) -> float:
    """The middle of ``profile``'s window in Unix seconds; ProfileError when it has no start time."""
    if profile.start_time_unix_ns <= 0:
        raise ProfileError(
            f"profile of group {profile.group!r} has no start time; anomaly detection needs each profile's time window"
        )
    return (profile.start_time_unix_ns + max(profile.duration_ns, 0) / 2) / 1e9


def window_counts(
    profile: Profile,
    frame_key: Callable[[Frame], str],
    is_library_file: Callable[[str], bool],
    sample_types: Sequence[str] = (CPU, WALL),
    structure: bool = True,
    seen: Optional[Set[Tuple[str, ...]]] = None,
) -> BucketCounts:
    """What ``profile`` contributes to its bucket, for each of ``sample_types`` it has.

    The structure (ancestors, library frames; see :func:`add_structure`) comes from the stacks
    of the first of ``sample_types`` with samples; ``structure`` False leaves the ancestors out
    (they are as large as every frame times its callers, too large to store per bucket).
    ``seen``: stacks (as frame keys) whose ancestors the caller has gathered already, left out
    of these counts' ancestors; the others are added to it (see :func:`note_ancestors`).
    """
    middle_s(profile)  # the window is required
    counts = BucketCounts(
        cpu=float(profile.total(CPU)) if profile.has_type(CPU) else 0.0,
        wall=float(profile.total(WALL)) if profile.has_type(WALL) else 0.0,
        profiles=1,
    )
    counts.invocations, counts.duration_ms = invocation_counts(profile.metadata)
    keys_of = _stack_keys(profile, frame_key)
    present = [t for t in sample_types if profile.has_type(t)]
    for sample_type in present:
        counts.inclusive[sample_type], counts.self_counts[sample_type] = _frame_counts(profile, sample_type, keys_of)
    _add_structure(counts, profile, present, keys_of, is_library_file, with_ancestors=structure, seen=seen)
    return counts


def columnar_counts(
    type_names: Sequence[str],
    values: Any,
    stack_frames: Tuple[Any, Any],
    leaf_frames: Any,
    frame_keys: Any,
    keys: Any,
    frame_library: Any,
    metadata: Mapping[str, Any],
    sample_types: Sequence[str] = (CPU, WALL),
) -> BucketCounts:
    """:func:`window_counts` with ``structure=False``, from a profile's stacks as numpy columns.

    ``values``: one row per stack, one column per sample type (``type_names``); ``stack_frames``:
    the (row, frame number) pairs of every frame of each row's stack (repeats allowed);
    ``leaf_frames``: the frame number running in each row (-1: an empty stack); ``frame_keys``:
    each frame number's key number, named by ``keys``; ``frame_library``: whether each frame
    number is library code. Equal to :func:`window_counts` of the same profile (a test holds them
    together): a key counts once per stack, a stack whose value is 0 adds no key, and the library
    keys come from the stacks of the first sample type with samples.
    """
    import numpy as np

    rows, frames = stack_frames
    size = len(keys)
    key_names = keys if isinstance(keys, np.ndarray) else np.asarray(keys, dtype=object)
    pairs = _distinct(rows * size + frame_keys[frames])  # each key once per stack
    key_rows = pairs // size
    key_numbers = pairs - key_rows * size
    present = [t for t in sample_types if t in type_names]
    totals = {t: int(values[:, type_names.index(t)].sum()) for t in present}
    counts = BucketCounts(cpu=float(totals.get(CPU, 0)), wall=float(totals.get(WALL, 0)), profiles=1)
    counts.invocations, counts.duration_ms = invocation_counts(metadata)
    running = leaf_frames >= 0
    leaf_keys = frame_keys[leaf_frames[running]]
    for sample_type in present:
        column = values[:, type_names.index(sample_type)]
        inclusive = np.bincount(key_numbers, weights=column[key_rows], minlength=size)
        self_counts = np.bincount(leaf_keys, weights=column[running], minlength=size)
        counts.inclusive[sample_type] = _nonzero(key_names, inclusive)
        counts.self_counts[sample_type] = _nonzero(key_names, self_counts)
    structure = next((t for t in present if totals[t] > 0), None)
    if structure is not None:
        sampled = frames[(values[rows, type_names.index(structure)] != 0) & frame_library[frames]]
        counts.library = {keys[k] for k in set(frame_keys[sampled].tolist())}
    return counts


def _distinct(numbers: Any) -> Any:
    """The distinct values of an integer array, sorted (numpy's ``unique`` hashes them, which was
    several times slower on these arrays of tens of thousands of pairs)."""
    import numpy as np

    ordered = np.sort(numbers)
    if ordered.size < 2:
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


def _nonzero(keys: Any, sums: Any) -> Counts:
    """``keys``: a numpy array (object) of the key names, or a sequence of them."""
    import numpy as np

    present = np.flatnonzero(sums)
    names = keys[present] if isinstance(keys, np.ndarray) else [keys[k] for k in present.tolist()]
    return dict(zip(list(names), sums[present].astype(float).tolist()))


def add_structure(
    counts: BucketCounts,
    profile: Profile,
    frame_key: Callable[[Frame], str],
    is_library_file: Callable[[str], bool],
    sample_types: Sequence[str] = (CPU, WALL),
) -> None:
    """Note in ``counts`` which frames ``profile``'s stacks show above which, and which are library code."""
    present = [t for t in sample_types if profile.has_type(t)]
    _add_structure(counts, profile, present, _stack_keys(profile, frame_key), is_library_file, with_ancestors=True)


def _add_structure(
    counts: BucketCounts,
    profile: Profile,
    present: Sequence[str],
    keys_of: Callable[[Tuple[int, ...]], List[str]],
    is_library_file: Callable[[str], bool],
    with_ancestors: bool,
    seen: Optional[Set[Tuple[str, ...]]] = None,
) -> None:
    structure = next((t for t in present if profile.total(t) > 0), None)
    if structure is None:
        return
    column = profile.value_index(structure)
    stacks = {sample.stack for sample in profile.samples if sample.values[column]}
    for index in set(chain.from_iterable(stacks)):
        if is_library_file(profile.frames[index].file):
            counts.library.add(keys_of((index,))[0])
    if with_ancestors:
        note_ancestors(counts.ancestors, map(keys_of, stacks), set() if seen is None else seen)


def note_ancestors(ancestors: Dict[str, Set[str]], stacks: Iterable[Sequence[str]], seen: Set[Tuple[str, ...]]) -> None:
    """Add to ``ancestors`` the keys each stack of frame keys (root first) shows above each of its
    frames (never a frame above itself). A stack in ``seen`` is skipped (already noted); the others
    are added to it."""
    for keys in stacks:
        stack = tuple(keys)
        if stack in seen:
            continue
        seen.add(stack)
        for depth, key in enumerate(stack):
            above = ancestors.setdefault(key, set())
            above.update(stack[:depth])
            above.discard(key)  # a recursive frame is not its own ancestor


def _stack_keys(profile: Profile, frame_key: Callable[[Frame], str]) -> Callable[[Tuple[int, ...]], List[str]]:
    """Frame keys of a stack of frame indices, each frame's key computed once."""
    frame_keys = [frame_key(frame) for frame in profile.frames]
    return lambda stack: [frame_keys[i] for i in stack]


def _frame_counts(
    profile: Profile, sample_type: str, keys_of: Callable[[Tuple[int, ...]], List[str]]
) -> Tuple[Counts, Counts]:
    inclusive: Counts = {}
    self_counts: Counts = {}
    column = profile.value_index(sample_type)
    for sample in profile.samples:
        value = sample.values[column]
        if not value:
            continue
        keys = keys_of(sample.stack)
        for key in set(keys):
            inclusive[key] = inclusive.get(key, 0.0) + value
        if keys:
            self_counts[keys[-1]] = self_counts.get(keys[-1], 0.0) + value
    return inclusive, self_counts


def invocation_counts(metadata: Mapping[str, Any]) -> Tuple[Optional[float], Optional[float]]:
    """The invocations a profile's ``metadata`` counts and their summed duration in ms (None: not said)."""
    info = metadata.get("invocations")
    if not isinstance(info, Mapping) or not isinstance(info.get("count"), (int, float)):
        return None, None
    count = float(info["count"])
    total = info.get("duration_ms_sum")
    if not isinstance(total, (int, float)):
        durations = info.get("durations_ms")
        total = sum(durations) if isinstance(durations, list) and len(durations) == count else None
    return count, (float(total) if total is not None else None)
