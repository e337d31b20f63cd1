"""Call paths interned to integer ids, and count arrays per time bucket over them.

A group's :class:`PathIndex` gives every call path (a stack prefix) a dense integer id,
parents before children, id 0 being the empty path (the root). A bucket (one profile,
or one hour) is then a :class:`PathCounts`: the ids of the stacks it holds and a count
array (one column per sample type). A range's flame graph is the sum of its buckets'
arrays, totals accumulated up the parent array level by level with numpy, and a
:class:`~greenflame.analyzer.tree.PathTree` pruned without building the full tree.

Dense ids belong to one process. Stored buckets name their stacks by a 63-bit content hash
of the path (the parent's hash and the frame, mixed by splitmix64 so that whole levels of
paths hash at once in numpy), so any server process sharing the blob store can read them into
its own index with one vectorised lookup. The stored form keeps only the stacks' hashes raw;
the tree of their prefixes (parents and frames, small integers) is compressed and read only
when the reading index lacks a stack, its hashes then recomputed level by level.
"""

from __future__ import annotations

import hashlib
import json
import threading
import zlib
from dataclasses import dataclass
from itertools import count, repeat
from typing import AbstractSet, Any, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from greenflame.analyzer.formats.wire_summary import DocumentSummary, FrameColumns
from greenflame.analyzer.model import Frame, Profile, Sample, SampleType
from greenflame.analyzer.tree import ROOT_FRAME, PathTree

ROOT = 0
#: Stacks beyond a bucket's cap are counted under this path (a child of the root).
CAPPED_FRAME = Frame("other", "<capped>")
#: Default cap on distinct stacks (leaf call paths) per bucket, the "other" path included.
MAX_BUCKET_PATHS = 50_000
#: A group's index is replaced by an empty one once it holds more paths than this.
MAX_INDEX_PATHS = 500_000
FORMAT_VERSION = 3
MAGIC = b"GFPATHS3"
_HASH_MASK = (1 << 63) - 1
_MASK64 = (1 << 64) - 1
_GOLDEN, _MIX1, _MIX2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_epochs = count(1)


def _frame_digest(frame: Frame) -> int:
    text = f"{frame.function}\0{frame.file}\0{frame.line}"
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def _path_hash(parent_hash: int, frame_digest: int) -> int:
    """The content hash of a path: its parent's hash and its frame's digest, mixed (splitmix64)."""
    x = (parent_hash * _GOLDEN + frame_digest) & _MASK64
    x = ((x ^ (x >> 30)) * _MIX1) & _MASK64
    x = ((x ^ (x >> 27)) * _MIX2) & _MASK64
    return (x ^ (x >> 31)) & _HASH_MASK


def frame_keys(functions: Sequence[str], files: Sequence[str], lines: Sequence[int]) -> List[int]:
    """Each frame's 64-bit lookup key in this process: the hash of its (function, file, line), from
    the strings' hashes (keyed afresh in each process, so not foreseeable from outside).

    Two different frames share a key with a chance of about one in 2^64 per pair, the same trust
    the stored path hashes already take; keys are never stored or compared across processes.
    """
    return list(map(hash, zip(functions, files, lines)))


def _path_hashes(parent_hashes: np.ndarray, frame_digests: np.ndarray) -> np.ndarray:
    """:func:`_path_hash` over arrays (uint64 arithmetic wraps as the masks above do)."""
    x = parent_hashes.astype(np.uint64) * np.uint64(_GOLDEN) + frame_digests.astype(np.uint64)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(_MIX1)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(_MIX2)
    return ((x ^ (x >> np.uint64(31))) & np.uint64(_HASH_MASK)).astype(np.int64)


class GroupIndexes:
    """Each group's :class:`PathIndex` in this process, shared by everything that folds its profiles."""

    def __init__(self) -> None:
        self._indexes: Dict[str, PathIndex] = {}
        self._lock = threading.Lock()

    def get(self, group: str, max_paths: int = MAX_INDEX_PATHS) -> PathIndex:
        """The group's index, replaced by an empty one once it holds more than ``max_paths`` paths
        or label sets."""
        with self._lock:
            index = self._indexes.get(group)
            if index is None or len(index) > max_paths or len(index.label_sets) > max_paths:
                index = self._indexes[group] = PathIndex()
            return index


@dataclass(frozen=True)
class PathArrays:
    """A snapshot of an index's first ``size`` paths as numpy arrays (index growth leaves it valid)."""

    size: int
    parents: np.ndarray
    frames: np.ndarray
    levels: Tuple[np.ndarray, ...]  # path ids by depth, deepest first (the root excluded)
    name_rank: np.ndarray  # per frame id: its rank by (function, file, line)


class LabelSets:
    """The distinct label sets of one index's samples, each with a small id (0: no labels);
    call with the index's lock held."""

    def __init__(self) -> None:
        self._ids: Dict[FrozenSet[Tuple[str, str]], int] = {frozenset(): 0}
        #: By id, the labels as a dict.
        self.dicts: List[Dict[str, str]] = [{}]

    def __len__(self) -> int:
        return len(self.dicts)

    def ids(self, labels: Sequence[Dict[str, str]]) -> List[int]:
        """The id of each of ``labels`` (sets seen first are added), looked up in C loops."""
        keys = list(map(frozenset, map(dict.items, labels)))
        found = list(map(self._ids.get, keys, repeat(-1, len(keys))))
        if -1 in found:
            for n, known in enumerate(found):
                if known == -1:
                    found[n] = self._add(keys[n], labels[n])
        return found

    def _add(self, key: FrozenSet[Tuple[str, str]], labels: Mapping[str, str]) -> int:
        known = self._ids.get(key)
        if known is None:
            known = self._ids[key] = len(self.dicts)
            self.dicts.append(dict(labels))
        return known


class PathIndex:
    """One group's frames and call paths, each interned once (append-only, thread-safe)."""

    def __init__(self) -> None:
        self.epoch = next(_epochs)
        self.frames: List[Frame] = []
        self._frame_ids: Dict[Frame, int] = {}
        self._frame_digests: List[int] = []
        #: Each frame's id by its :func:`frame_keys` key.
        self._frames_by_key: Dict[int, int] = {}
        #: Whole stacks (tuples of frame ids) already interned: one lookup per sample.
        self._leaves: Dict[Tuple[int, ...], int] = {}
        #: The same, keyed by the stack's ids as int32 bytes (:meth:`leaves`).
        self._leaf_bytes: Dict[bytes, int] = {}
        self.parents: List[int] = [-1]
        self.path_frames: List[int] = [-1]
        self.frame_objects: List[Frame] = [ROOT_FRAME]
        self.depths: List[int] = [0]
        self.hashes: List[int] = [0]
        self._children: Dict[Tuple[int, int], int] = {}
        self._stacks: Dict[int, Tuple[int, ...]] = {ROOT: ()}
        self._arrays: Optional[PathArrays] = None
        self._sorted: Optional[Tuple[np.ndarray, np.ndarray]] = None
        self._columns: Tuple[np.ndarray, np.ndarray] = (np.empty(0, np.int64), np.empty(0, np.int64))
        #: The label sets of the samples folded with their labels (:mod:`.labelled`).
        self.label_sets = LabelSets()
        self.lock = threading.RLock()

    def __len__(self) -> int:
        return len(self.parents)

    def frame_id(self, frame: Frame) -> int:
        """The id of ``frame``, interned if new (call with :attr:`lock` held)."""
        index = self._frame_ids.get(frame)
        if index is None:
            index = self._intern(frame, frame_keys([frame.function], [frame.file], [frame.line])[0])
        return index

    def _intern(self, frame: Frame, key: int) -> int:
        index = self._frame_ids.get(frame)
        if index is None:
            index = self._frame_ids[frame] = len(self.frames)
            self.frames.append(frame)
            self._frame_digests.append(_frame_digest(frame))
            self._frames_by_key[key] = index
        return index

    def frame_ids(self, frames: FrameColumns) -> List[int]:
        """The ids of a document's frames, interned if new (call with :attr:`lock` held).

        Frames are looked up by :func:`frame_keys` (integers) in C loops, the interpreter lock held
        throughout: a known frame costs its two string hashes and one lookup, no Python object kept.
        """
        keys = frame_keys(frames.functions, frames.files, frames.lines.tolist())
        ids = list(map(self._frames_by_key.get, keys, repeat(-1, len(keys))))
        if -1 in ids:
            for n, found in enumerate(ids):
                if found == -1:
                    frame = Frame(frames.functions[n], frames.files[n], int(frames.lines[n]))
                    ids[n] = self._intern(frame, keys[n])
        return ids

    def child(self, parent: int, frame_id: int) -> int:
        """The path ``parent`` + frame ``frame_id``, interned if new (call with :attr:`lock` held)."""
        key = (parent, frame_id)
        path = self._children.get(key)
        if path is None:
            path_hash = _path_hash(self.hashes[parent], self._frame_digests[frame_id])
            path = self._add(key, path_hash)
        return path

    def leaf(self, stack: Tuple[int, ...]) -> int:
        """The path of a whole stack of frame ids, root first (call with :attr:`lock` held).

        A stack seen before costs one lookup; a new one walks its prefixes once.
        """
        path = self._leaves.get(stack)
        if path is None:
            path = ROOT
            child = self.child
            for frame_id in stack:
                path = child(path, frame_id)
            self._leaves[stack] = path
        return path

    def leaves(self, frame_ids: Union[Sequence[int], np.ndarray], depths: np.ndarray, stacks: np.ndarray) -> List[int]:
        """The path of each whole stack, given end to end in ``stacks`` (each ``depths[i]`` long) in
        another frame table's numbers that ``frame_ids`` maps to this index's ids (call with
        :attr:`lock` held).

        The stacks are mapped in one numpy step and each is looked up by its ids' bytes, all in C
        loops; only a stack not seen before walks its prefixes (:meth:`leaf`).
        """
        if not len(depths):
            return []
        mapped = np.asarray(frame_ids, dtype=np.int32)[stacks].tobytes()
        ends = np.cumsum(depths) * 4
        keys = list(map(mapped.__getitem__, map(slice, (ends - depths * 4).tolist(), ends.tolist())))
        found = list(map(self._leaf_bytes.get, keys, repeat(-1, len(keys))))
        if -1 in found:
            for n, path in enumerate(found):
                if path == -1:
                    stack = tuple(np.frombuffer(keys[n], dtype=np.int32).tolist())
                    found[n] = self._leaf_bytes[keys[n]] = self.leaf(stack)
        return found

    def _add(self, key: Tuple[int, int], path_hash: int) -> int:
        parent, frame_id = key
        path = self._children[key] = len(self.parents)
        self.parents.append(parent)
        self.path_frames.append(frame_id)
        self.frame_objects.append(self.frames[frame_id])
        self.depths.append(self.depths[parent] + 1)
        self.hashes.append(path_hash)
        return path

    def stack(self, path: int) -> Tuple[int, ...]:
        """The frame ids of ``path``, root first (memoised for the paths asked for, not their prefixes)."""
        missing = []
        while path not in self._stacks:  # iterative: stacks may be thousands of frames deep
            missing.append(path)
            path = self.parents[path]
        if not missing:
            return self._stacks[path]
        frames = self.path_frames
        found = self._stacks[missing[0]] = self._stacks[path] + tuple(frames[step] for step in reversed(missing))
        return found

    def columns(self) -> Tuple[np.ndarray, np.ndarray]:
        """Every path's parent and frame id as numpy arrays (the root's are -1), extended by the
        paths added since the last call rather than rebuilt."""
        with self.lock:
            parents, frames = self._columns
            done, size = len(parents), len(self.parents)
            if done < size:
                parents = np.concatenate([parents, np.asarray(self.parents[done:size], dtype=np.int64)])
                frames = np.concatenate([frames, np.asarray(self.path_frames[done:size], dtype=np.int64)])
                self._columns = (parents, frames)
            return parents, frames

    def stack_frames(self, paths: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """The frames of the stacks ending at ``paths``, as (position in ``paths``, frame id) pairs,
        level by level up to the root."""
        parents, frames = self.columns()
        rows = np.arange(len(paths), dtype=np.int64)
        current = np.asarray(paths, dtype=np.int64)
        found_rows, found_frames = [], []
        while True:
            alive = current > ROOT
            rows, current = rows[alive], current[alive]
            if not current.size:
                break
            found_rows.append(rows)
            found_frames.append(frames[current])
            current = parents[current]
        if not found_rows:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        return np.concatenate(found_rows), np.concatenate(found_frames)

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """The ids of paths with these content hashes, -1 for unknown ones (vectorised).

        A sorted snapshot of the hashes answers. It is not rebuilt on every growth: only when
        it misses a hash while paths were added since, and then by merging them into it (a
        cold read interns thousands of paths, then looks up hundreds of buckets' stacks).
        """
        keys, order, size = self._snapshot(extend=False)
        found = _search(keys, order, hashes)
        if size > len(keys):
            misses = np.flatnonzero(found < 0)
            if misses.size:
                keys, order, size = self._snapshot(extend=True)
                found[misses] = _search(keys, order, hashes[misses])
        return found

    def _snapshot(self, extend: bool) -> Tuple[np.ndarray, np.ndarray, int]:
        """The sorted hashes and their path ids (made on first use; with ``extend``, the paths
        added since merged in), and the number of paths now."""
        with self.lock:
            size = len(self.hashes)
            if self._sorted is None:
                known = np.asarray(self.hashes, dtype=np.int64)
                order = np.argsort(known, kind="stable")
                self._sorted = (known[order], order)
            elif extend and size > len(self._sorted[0]):
                keys, order = self._sorted
                added = np.asarray(self.hashes[len(keys) : size], dtype=np.int64)
                known = np.concatenate([keys, added])
                ids = np.concatenate([order, np.arange(len(keys), size, dtype=order.dtype)])
                merged = np.argsort(known, kind="stable")  # two runs: the sorted keys, then the added
                self._sorted = (known[merged], ids[merged])
            keys, order = self._sorted
            return keys, order, size

    def add_stored(self, hashes: np.ndarray, parents: np.ndarray, frame_ids: np.ndarray) -> np.ndarray:
        """Append paths read from storage (parents as ids of this index, or as -2 - k for the
        k-th path of this same call); returns their ids. Call with :attr:`lock` held."""
        first = len(self.parents)
        ids = np.arange(first, first + len(hashes), dtype=np.int64)
        parents = np.where(parents <= -2, first + (-2 - parents), parents)
        parent_list, frame_list = parents.tolist(), frame_ids.tolist()
        depths = self.depths
        for parent in parent_list:  # parents come first, so their depth is known
            depths.append(depths[parent] + 1)
        self.parents.extend(parent_list)
        self.path_frames.extend(frame_list)
        self.frame_objects.extend([self.frames[f] for f in frame_list])
        self.hashes.extend(hashes.tolist())
        self._children.update(zip(zip(parent_list, frame_list), ids.tolist()))
        return ids

    def arrays(self) -> PathArrays:
        """The numpy view of the index as it is now (rebuilt only after it grew)."""
        with self.lock:
            cached = self._arrays
            if cached is not None and cached.size == len(self.parents):
                return cached
            parents = np.asarray(self.parents, dtype=np.int64)
            depths = np.asarray(self.depths, dtype=np.int64)
            by_depth = np.argsort(-depths, kind="stable")
            edges = np.flatnonzero(np.diff(depths[by_depth])) + 1
            levels = tuple(level for level in np.split(by_depth, edges) if level.size and level[0] != ROOT)
            ranked = sorted(range(len(self.frames)), key=lambda f: _frame_key(self.frames[f]))
            name_rank = np.empty(len(self.frames) + 1, dtype=np.int64)
            name_rank[np.asarray(ranked, dtype=np.int64)] = np.arange(len(ranked))
            name_rank[-1] = -1  # the root's frame id is -1
            frames = np.asarray(self.path_frames, dtype=np.int64)
            self._arrays = PathArrays(len(parents), parents, frames, levels, name_rank)
            return self._arrays


def _search(keys: np.ndarray, ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """``ids[k]`` for each hash of ``wanted`` equal to ``keys[k]`` (``keys`` sorted), else -1."""
    if not len(keys):
        return np.full(len(wanted), -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where(keys[at] == wanted, ids[at], -1)


def _frame_key(frame: Frame) -> Tuple[str, str, int]:
    return (frame.function, frame.file, frame.line)


@dataclass
class PathCounts:
    """One bucket: ``values[k]`` (one column per type) for the stack ending at path ``ids[k]``.

    ``ids`` are unique ids of one :class:`PathIndex`; ``capped`` counts the distinct stacks
    that the bucket's cap folded into the :data:`CAPPED_FRAME` path.
    """

    types: Tuple[SampleType, ...]
    ids: np.ndarray
    values: np.ndarray
    start_ns: int = 0
    end_ns: int = 0
    capped: int = 0
    #: The ids of the profiles summed, when known (stored buckets say which profiles they hold).
    members: Optional[AbstractSet[str]] = None

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays (for byte-bounded caches)."""
        return int(self.ids.nbytes + self.values.nbytes) + 200


def fold_profile(
    index: PathIndex, profile: Profile, max_paths: int = MAX_BUCKET_PATHS, frame_ids: Optional[List[int]] = None
) -> PathCounts:
    """``profile`` as a bucket of ``index`` (labels dropped, equal stacks added up, capped);
    ``frame_ids``: the index's ids of ``profile.frames`` when known."""
    width = len(profile.sample_types)
    acc: Dict[int, List[int]] = {}
    with index.lock:
        to_id = frame_ids if frame_ids is not None else [index.frame_id(frame) for frame in profile.frames]
        leaf = index.leaf
        for sample in profile.samples:
            path = leaf(tuple([to_id[frame] for frame in sample.stack]))
            into = acc.get(path)
            if into is None:
                acc[path] = list(sample.values[:width])
            else:
                for column in range(width):
                    into[column] += sample.values[column]
    ids = np.fromiter(acc.keys(), dtype=np.int64, count=len(acc))
    values = np.asarray(list(acc.values()), dtype=np.int64).reshape(len(acc), width)
    end = profile.start_time_unix_ns + profile.duration_ns
    counts = PathCounts(tuple(profile.sample_types), ids, values, profile.start_time_unix_ns, end)
    return cap(index, counts, max_paths)


def fold_document(index: PathIndex, summary: DocumentSummary, max_paths: int = MAX_BUCKET_PATHS) -> PathCounts:
    """:func:`fold_profile` of a checked wire-format document, from its columns: no object per
    sample or frame (each stack is one lookup in the index, equal stacks summed with numpy)."""
    paths, values = document_columns(index, summary)
    return fold_columns(index, summary, paths, values, max_paths)


def document_columns(index: PathIndex, summary: DocumentSummary) -> Tuple[np.ndarray, np.ndarray]:
    """Each sample's path in ``index`` and its values (one row per sample, one column per type)."""
    columns = summary.columns()
    fields = summary.frames()
    with index.lock:
        leaves = index.leaves(index.frame_ids(fields), columns.depths, columns.stacks)
    return np.asarray(leaves, dtype=np.int64), columns.values


def fold_columns(
    index: PathIndex, summary: DocumentSummary, paths: np.ndarray, values: np.ndarray, max_paths: int
) -> PathCounts:
    """The document's samples (``paths``, ``values``: one row each, in any number) as a bucket, capped."""
    ids, summed = summed_by_path(paths, values)
    types = tuple(SampleType(t.name, t.unit) for t in summary.wire().sample_types)
    end = summary.start_time_unix_ns + summary.duration_ns
    return cap(index, PathCounts(types, ids, summed, summary.start_time_unix_ns, end), max_paths)


def summed_by_path(paths: np.ndarray, values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The distinct ``paths`` in increasing order, and the ``values`` rows of each summed."""
    ids, summed, _ = sum_by_key(paths, values)
    return ids, summed


def sum_by_key(keys: np.ndarray, values: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct ``keys`` in increasing order, the ``values`` rows of each summed, and the
    position of each key's first row."""
    if not len(keys):
        return keys, values, np.empty(0, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    return ordered[starts], np.add.reduceat(values[order], starts, axis=0), order[starts]


def cap(index: PathIndex, counts: PathCounts, max_paths: int) -> PathCounts:
    """``counts`` with at most ``max_paths`` stacks: the smallest go into one ``other`` path.

    Stacks are ranked by the sum of their values; the number folded is added to ``capped``.
    """
    if len(counts.ids) <= max_paths:
        return counts
    if max_paths < 2:
        raise ValueError(f"max_paths must be at least 2, got {max_paths}")
    with index.lock:
        other = index.child(ROOT, index.frame_id(CAPPED_FRAME))
    order = np.argsort(-counts.values.sum(axis=1), kind="stable")
    keep = order[: max_paths - 1]
    keep = keep[counts.ids[keep] != other]
    rest = np.setdiff1d(np.arange(len(counts.ids)), keep, assume_unique=True)
    folded = int(np.count_nonzero(counts.ids[rest] != other))
    ids = np.append(counts.ids[keep], other)
    values = np.vstack([counts.values[keep], counts.values[rest].sum(axis=0, keepdims=True)])
    return PathCounts(counts.types, ids, values, counts.start_ns, counts.end_ns, counts.capped + folded, counts.members)


def merge_counts(index: PathIndex, parts: Sequence[PathCounts]) -> PathCounts:
    """The sum of ``parts`` (sample types matched by name; a missing type counts zero).

    Summed over a dense array as long as the index when the parts are large beside it (a range of
    many buckets), else by sorting their ids (a profile into its bucket: the cost follows the
    parts, not the index's size).
    """
    types: List[SampleType] = []
    for part in parts:
        for sample_type in part.types:
            if all(t.name != sample_type.name for t in types):
                types.append(sample_type)
    names = [t.name for t in types]
    size = max((int(part.ids.max()) + 1 for part in parts if len(part.ids)), default=1)
    summed = sum(len(part.ids) for part in parts)
    sums = _sparse_sum if summed * _SPARSE_FACTOR < size else _dense_sum
    ids, values = sums(parts, names, size)
    starts = [p.start_ns for p in parts if p.start_ns]
    return PathCounts(
        tuple(types),
        ids,
        values,
        min(starts) if starts else 0,
        max((p.end_ns for p in parts if p.start_ns), default=0),
        sum(p.capped for p in parts),
    )


#: Sorting wins while the parts hold fewer ids than the index's size over this factor.
_SPARSE_FACTOR = 4


def column_positions(types: Sequence[SampleType], names: Sequence[str]) -> List[int]:
    """Where each of ``types`` goes among the sample type ``names`` (each type is among them)."""
    return [names.index(t.name) for t in types]


def _dense_sum(parts: Sequence[PathCounts], names: Sequence[str], size: int) -> Tuple[np.ndarray, np.ndarray]:
    acc = np.zeros((size, len(names)), dtype=np.int64)
    for part in parts:
        columns = column_positions(part.types, names)
        if columns == list(range(len(names))):
            acc[part.ids] += part.values  # ids are unique within a part
        else:
            acc[np.ix_(part.ids, np.asarray(columns, dtype=np.int64))] += part.values
    ids = np.flatnonzero(acc.any(axis=1))
    return ids, acc[ids]


def _sparse_sum(parts: Sequence[PathCounts], names: Sequence[str], _size: int) -> Tuple[np.ndarray, np.ndarray]:
    ids = np.concatenate([part.ids for part in parts] or [np.zeros(0)]).astype(np.int64, copy=False)
    values = np.zeros((len(ids), len(names)), dtype=np.int64)
    row = 0
    for part in parts:
        values[row : row + len(part.ids), column_positions(part.types, names)] = part.values
        row += len(part.ids)
    distinct, summed, _ = sum_by_key(ids, values)
    kept = summed.any(axis=1)
    return distinct[kept], summed[kept]


# -- the tree of a range ----------------------------------------------------------


def path_tree(index: PathIndex, counts: PathCounts, sample_type: str) -> PathTree:
    """The call tree of one sample type of ``counts``, as flat lists for :func:`prune_paths`."""
    arrays = index.arrays()
    column = [t.name for t in counts.types].index(sample_type)
    self_values = np.zeros(arrays.size, dtype=np.int64)
    self_values[counts.ids] = counts.values[:, column]
    totals = self_values.copy()
    for level in arrays.levels:
        live = level[totals[level] > 0]
        if live.size:
            np.add.at(totals, arrays.parents[live], totals[live])
    nodes = (totals > 0).astype(np.int64)
    for level in arrays.levels:
        live = level[nodes[level] > 0]
        if live.size:
            np.add.at(nodes, arrays.parents[live], nodes[live])
    return PathTree(
        index.frame_objects,
        index.parents,
        self_values.tolist(),
        totals.tolist(),
        nodes.tolist(),
        *_children(arrays, totals),
    )


def _children(arrays: PathArrays, totals: np.ndarray) -> Tuple[List[int], List[int]]:
    """Children with a non-zero total, in :meth:`Node.sorted_children` order, as (ids, bounds)."""
    live = np.flatnonzero(totals > 0)
    live = live[live != ROOT]
    parents = arrays.parents[live]
    order = np.lexsort((arrays.name_rank[arrays.frames[live]], -totals[live], parents))
    ordered, ordered_parents = live[order], parents[order]
    bounds = np.searchsorted(ordered_parents, np.arange(arrays.size + 1))
    return ordered.tolist(), bounds.tolist()


# -- stored form --------------------------------------------------------------------


def encode(index: PathIndex, counts: PathCounts, level: int = 6) -> bytes:
    """The stored form of ``counts``, standing alone: the hashes of its stacks (raw), and
    compressed, the tree of their prefixes (parent and frame of each), the frames, the stacks'
    places in that tree and their values. ``level``: the tree's zlib level (1 for a bucket
    written again each minute while it fills: about 6 times faster, 10% larger)."""
    arrays = index.arrays()
    used = _closure(arrays.parents, counts.ids)
    local = np.full(arrays.size, -1, dtype=np.int64)
    local[used] = np.arange(len(used))
    frame_ids = arrays.frames[used[1:]]
    frames_used, frame_local = np.unique(frame_ids, return_inverse=True)
    with index.lock:
        frames = [list(_frame_key(index.frames[f])) for f in frames_used.tolist()]
        hashes = np.asarray([index.hashes[p] for p in counts.ids.tolist()], dtype=np.int64)
    frames_packed = zlib.compress(json.dumps(frames, separators=(",", ":")).encode("utf-8"), 1)
    # A path's parent is usually just before it: store the distance, a small number.
    distances = np.arange(1, len(used)) - local[arrays.parents[used[1:]]]
    tree = b"".join(
        (
            distances.astype(np.int32).tobytes(),
            frame_local.astype(np.int32).tobytes(),
            local[counts.ids].astype(np.int32).tobytes(),
            counts.values.astype(np.int64).tobytes(),
        )
    )
    tree_packed = zlib.compress(tree, level)
    header: Dict[str, Any] = {
        "members": sorted(counts.members) if counts.members is not None else None,
        "types": [[t.name, t.unit] for t in counts.types],
        "frames_bytes": len(frames_packed),
        "tree_bytes": len(tree_packed),
        "paths": len(used),
        "stacks": len(counts.ids),
        "window": [counts.start_ns, counts.end_ns],
        "capped": counts.capped,
    }
    head = zlib.compress(json.dumps(header, separators=(",", ":")).encode("utf-8"), 1)
    body = frames_packed + tree_packed + hashes.tobytes()
    return MAGIC + len(head).to_bytes(4, "little") + head + body


def _closure(parents: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``ids`` and every ancestor, the root first, sorted (so parents come before children)."""
    mark = np.zeros(len(parents), dtype=bool)
    mark[ROOT] = True
    current = ids
    while current.size:
        current = current[~mark[current]]
        mark[current] = True
        current = np.unique(parents[current])
        current = current[current >= 0]
    return np.flatnonzero(mark)


class StoredFormatError(ValueError):
    """A stored bucket cannot be read (another version, or damaged): rebuild it."""


def decode(index: PathIndex, data: bytes) -> PathCounts:
    """Read what :func:`encode` wrote into ``index``; StoredFormatError if it cannot."""
    if not data.startswith(MAGIC):
        raise StoredFormatError("not a stored bucket of this format version")
    try:
        at = len(MAGIC) + 4
        size = int.from_bytes(data[len(MAGIC) : at], "little")
        header = json.loads(zlib.decompress(data[at : at + size]))
        at += size
        frames_packed = data[at : at + int(header["frames_bytes"])]
        at += len(frames_packed)
        tree_packed = data[at : at + int(header["tree_bytes"])]
        at += len(tree_packed)
        stacks, paths = int(header["stacks"]), int(header["paths"])
        hashes = np.frombuffer(data, dtype=np.int64, count=stacks, offset=at)
        if at + hashes.nbytes != len(data) or paths < 1:
            raise ValueError("the sizes in its header do not match its length")
        return _decode(index, header, frames_packed, zlib.decompress(tree_packed), hashes)
    except (ValueError, KeyError, IndexError, TypeError, zlib.error) as error:
        raise StoredFormatError(f"unreadable stored bucket: {error}") from None


def _decode(
    index: PathIndex, header: Dict[str, Any], frames_packed: bytes, tree: bytes, hashes: np.ndarray
) -> PathCounts:
    types = tuple(SampleType(str(name), str(unit)) for name, unit in header["types"])
    start, end = header["window"]
    stacks, inner = int(header["stacks"]), int(header["paths"]) - 1
    distances = np.frombuffer(tree, dtype=np.int32, count=inner)
    frames = np.frombuffer(tree, dtype=np.int32, count=inner, offset=4 * inner)
    places = np.frombuffer(tree, dtype=np.int32, count=stacks, offset=8 * inner)
    values = np.frombuffer(tree, dtype=np.int64, count=stacks * len(types), offset=8 * inner + 4 * stacks)
    if len(tree) != 8 * inner + 4 * stacks + 8 * stacks * len(types):
        raise ValueError("its tree is not the size its header says")
    ids = index.lookup(hashes)
    if (ids < 0).any():
        parents = np.arange(1, inner + 1, dtype=np.int64) - distances
        ids = _intern_stored(index, frames_packed, parents, frames.astype(np.int64))[places]
        if not np.array_equal(index.lookup(hashes), ids):
            raise ValueError("its stacks' hashes do not match its tree")
    shaped = values.astype(np.int64).reshape(stacks, len(types))
    members = header.get("members")
    held = frozenset(str(m) for m in members) if members is not None else None
    return PathCounts(types, ids, shaped, int(start), int(end), int(header["capped"]), held)


def _intern_stored(index: PathIndex, frames_packed: bytes, parents: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """The ids in ``index`` of every stored path (local path k > 0: parent ``parents[k - 1]``,
    frame ``frames[k - 1]``), adding the ones it lacks; their hashes are computed level by level."""
    count_paths = len(parents) + 1
    if ((parents < 0) | (parents >= np.arange(1, count_paths))).any():
        raise ValueError("a stored path comes before its parent")
    stored = [Frame(str(f), str(file), int(line)) for f, file, line in json.loads(zlib.decompress(frames_packed))]
    digests = np.asarray([_frame_digest(frame) for frame in stored] or [0], dtype=np.uint64)
    hashes = np.zeros(count_paths, dtype=np.int64)
    known = np.zeros(count_paths, dtype=bool)
    known[ROOT] = True
    todo = np.arange(1, count_paths)
    while todo.size:  # one level of the tree per round: a path is hashed once its parent is
        ready = todo[known[parents[todo - 1]]]
        hashes[ready] = _path_hashes(hashes[parents[ready - 1]], digests[frames[ready - 1]])
        known[ready] = True
        todo = todo[~known[todo]]
    dense = index.lookup(hashes)
    dense[0] = ROOT
    if (dense < 0).any():
        with index.lock:
            # Another thread (the start-up warm-up, another request) may have added some of them
            # since: look again under the lock, or they would be added twice (then a reader's ids
            # and the index's answers differ, and the bucket is rebuilt from its profiles).
            dense = index.lookup(hashes)
            dense[0] = ROOT
            missing = np.flatnonzero(dense < 0)
            to_id = np.asarray([index.frame_id(frame) for frame in stored] or [0], dtype=np.int64)
            # Parents come first, so a missing parent is an earlier missing path of this call:
            # number it -2 - rank (see PathIndex.add_stored).
            rank = np.full(count_paths, -1, dtype=np.int64)
            rank[missing] = np.arange(missing.size)
            local_parents = parents[missing - 1]
            linked = np.where(dense[local_parents] >= 0, dense[local_parents], -2 - rank[local_parents])
            dense[missing] = index.add_stored(hashes[missing], linked, to_id[frames[missing - 1]])
    return dense


# -- as a Profile -----------------------------------------------------------------


class PathsProfile(Profile):
    """A label-less merged :class:`Profile` computed from bucket sums, its samples built lazily.

    Flame graph views read :attr:`counts` through :meth:`path_tree` (no per-sample work);
    any other reader of :attr:`samples` gets them made from the counts on first access.
    """

    def __init__(self, index: PathIndex, counts: PathCounts, group: str) -> None:
        self._lazy: Optional[Tuple[PathIndex, PathCounts]] = None
        with index.lock:
            frames = list(index.frames)
        super().__init__(
            sample_types=list(counts.types),
            frames=frames,
            group=group,
            start_time_unix_ns=counts.start_ns,
            duration_ns=max(counts.end_ns - counts.start_ns, 0),
        )
        self.index = index
        self.counts = counts
        self._lazy = (index, counts)

    def __post_init__(self) -> None:
        self._frame_index = {frame: i for i, frame in enumerate(self.frames)}
        self._sample_index = {}  # filled with the samples, when they are made

    @property
    def samples(self) -> List[Sample]:
        """The samples (one per stack), made from the counts on first access."""
        if self._lazy is not None:
            index, counts = self._lazy
            self._lazy = None
            with index.lock:
                stack = index.stack
                rows = zip(counts.ids.tolist(), counts.values.tolist())
                self._samples = [Sample(stack(path), row) for path, row in rows]
            self._sample_index = {(sample.stack, ()): n for n, sample in enumerate(self._samples)}
        return self._samples

    @samples.setter
    def samples(self, value: List[Sample]) -> None:
        self._lazy = None
        self._samples = value

    def total(self, name: Optional[str] = None) -> int:
        """Sum of one sample type (from the counts, without making the samples)."""
        column = 0 if name is None else self.value_index(name)
        return int(self.counts.values[:, column].sum()) if len(self.counts.ids) else 0

    def path_tree(self, sample_type: str) -> PathTree:
        """The tree of ``sample_type`` over :attr:`counts`."""
        return path_tree(self.index, self.counts, sample_type)


def as_profile(index: PathIndex, counts: PathCounts, group: str) -> PathsProfile:
    """``counts`` as a :class:`PathsProfile` (frame indices are the index's frame ids)."""
    return PathsProfile(index, counts, group)
