"""A profile's samples with their labels as rows of its group's call-path index, and their merges.

The analysis and the label-filtered reads merge every profile of a window with its labels
(:func:`analyzer.model.merge`). Building each report as a :class:`Profile` (an object per frame
and sample) and merging it sample by sample cost more than ingesting it (the figures are in
``benchmarks/server/README.md``). Here a report is the rows (path, label set) -> values of the
group's :class:`~.callpaths.PathIndex`: made from the columns the request already checked and
mapped for the rollups, and merged with numpy. Only the window's merge becomes a
:class:`Profile`, once.

A :class:`Labelled` keeps the order :func:`analyzer.model.merge` gives: rows in the order their
first sample came, frames in the order the rows first use them. Its ``shell`` is the profile
without frames or samples (types, window, period and its weight, metadata), merged by
:func:`analyzer.model.merge` itself, so the merge of merges is the merge of the reports.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from itertools import chain
from typing import Dict, FrozenSet, Sequence, Tuple

import numpy as np

from greenflame.analyzer.formats.wire_summary import DocumentSummary
from greenflame.analyzer.model import CPU, WALL, Profile, Sample, SampleType, merge

from .callpaths import (
    MAX_BUCKET_PATHS,
    GroupIndexes,
    PathCounts,
    PathIndex,
    column_positions,
    document_columns,
    fold_columns,
    sum_by_key,
    summed_by_path,
)
from .lru import LruCache
from .series import per_storage
from .storage import Storage, StoredProfile

#: Bound of the estimated bytes of the reports' rows one storage keeps (about 4,000 of the
#: benchmark's reports); an evicted report is read from its body again.
LABELLED_CACHE_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True)
class Labelled:
    """``values[k]`` (one column per type of ``shell``) of the stack ``paths[k]`` of the index of
    ``epoch`` with the label set ``labels[k]`` of that index; ``kinds``: the structure kinds of
    its reports (:func:`structure_kind`). One report's rows are its samples as they came (a pair
    of path and labels may repeat); :func:`combine` and :func:`to_profile` sum them."""

    epoch: int
    shell: Profile
    paths: np.ndarray
    labels: np.ndarray
    values: np.ndarray
    kinds: FrozenSet[str]

    @property
    def nbytes(self) -> int:
        """An estimate of the memory held (for byte-bounded caches)."""
        return int(self.paths.nbytes + self.labels.nbytes + self.values.nbytes) + 2000


def structure_kind(types: Sequence[SampleType], totals: Sequence[int]) -> FrozenSet[str]:
    """The sample type whose stacks :func:`analyzer.series_counts.add_structure` reads: CPU where
    there are CPU samples, else wall where there are wall samples, else none."""
    names = [t.name for t in types]
    found = next((kind for kind in (CPU, WALL) if kind in names and totals[names.index(kind)] > 0), None)
    return frozenset([found] if found else [])


def of_document(
    index: PathIndex, summary: DocumentSummary, max_paths: int = MAX_BUCKET_PATHS
) -> Tuple[PathCounts, Labelled]:
    """A checked report as a capped bucket of ``index`` (labels dropped) and as its labelled rows."""
    rows = labelled_rows(index, summary)
    return fold_columns(index, summary, rows.paths, rows.values, max_paths), rows


def labelled_rows(index: PathIndex, summary: DocumentSummary) -> Labelled:
    """A checked report as its labelled rows in ``index``."""
    paths, values = document_columns(index, summary)
    document = summary.wire()
    columns = summary.columns()
    with index.lock:
        set_ids = index.label_sets.ids(columns.label_sets)
    label_ids = np.asarray(set_ids, dtype=np.int64)[columns.label_ids] if set_ids else np.empty(0, dtype=np.int64)
    types = [SampleType(t.name, t.unit) for t in document.sample_types]
    shell = Profile(
        sample_types=types,
        group=summary.group,
        start_time_unix_ns=summary.start_time_unix_ns,
        duration_ns=summary.duration_ns,
        sample_period_ns=document.sample_period_ns,
        metadata=summary.metadata,
    )
    return _report(index.epoch, shell, summary.totals, paths, label_ids, values)


def _report(
    epoch: int, shell: Profile, totals: Sequence[int], paths: np.ndarray, labels: np.ndarray, values: np.ndarray
) -> Labelled:
    """One report's rows, one per sample (summed by :func:`combine`, off the request thread); its
    shell's period weight is its own."""
    names = [t.name for t in shell.sample_types]
    samples = totals[names.index(CPU)] if CPU in names else (totals[0] if totals else 0)
    shell.period_weight = (samples * shell.sample_period_ns, samples)
    return Labelled(epoch, shell, paths, labels, values, structure_kind(shell.sample_types, totals))


def _summed(paths: np.ndarray, labels: np.ndarray, values: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows with equal (path, labels) summed, in the order each one's first row came."""
    _, sums, firsts = sum_by_key((paths << 32) | labels, values)
    arrange = np.argsort(firsts, kind="stable")
    chosen = firsts[arrange]
    return paths[chosen], labels[chosen], sums[arrange]


def unlabelled(rows: Labelled) -> PathCounts:
    """``rows`` summed per stack, labels dropped (uncapped), as a bucket of their index."""
    ids, summed = summed_by_path(rows.paths, rows.values)
    shell = rows.shell
    end = shell.start_time_unix_ns + shell.duration_ns
    return PathCounts(tuple(shell.sample_types), ids, summed, shell.start_time_unix_ns, end)


def combine(epoch: int, group: str, parts: Sequence[Labelled]) -> Labelled:
    """The merge of ``parts`` (all of the index of ``epoch``, in order): as merging their reports."""
    shell = merge([part.shell for part in parts], group)
    names = [t.name for t in shell.sample_types]
    values = np.zeros((sum(len(part.paths) for part in parts), len(names)), dtype=np.int64)
    row = 0
    for part in parts:  # each part's columns where its types go among the merge's (a missing one: 0)
        values[row : row + len(part.paths), column_positions(part.shell.sample_types, names)] = part.values
        row += len(part.paths)
    paths = np.concatenate([part.paths for part in parts] or [np.empty(0, dtype=np.int64)])
    labels = np.concatenate([part.labels for part in parts] or [np.empty(0, dtype=np.int64)])
    kinds: FrozenSet[str] = frozenset().union(*(part.kinds for part in parts))
    return Labelled(epoch, shell, *_summed(paths, labels, values), kinds)


def to_profile(index: PathIndex, rows: Labelled) -> Profile:
    """``rows`` as a new :class:`Profile` (``index`` must be of their epoch)."""
    if rows.epoch != index.epoch:
        raise ValueError(f"rows of index {rows.epoch} read with index {index.epoch}")
    paths, label_ids, values = _summed(rows.paths, rows.labels, rows.values)
    with index.lock:
        stacks = [index.stack(path) for path in paths.tolist()]
        label_dicts = index.label_sets.dicts
        labels = [label_dicts[n] for n in label_ids.tolist()]
        used = list(dict.fromkeys(chain.from_iterable(stacks)))
        frames = [index.frames[n] for n in used]
    position: Dict[int, int] = {frame_id: n for n, frame_id in enumerate(used)}
    to_position = position.__getitem__
    samples = [
        Sample(tuple(map(to_position, stack)), sums, dict(found))
        for stack, sums, found in zip(stacks, values.tolist(), labels)
    ]
    shell = rows.shell
    metadata = copy.deepcopy(shell.metadata)
    return replace(shell, sample_types=list(shell.sample_types), frames=frames, samples=samples, metadata=metadata)


class LabelledProfiles:
    """One storage's reports as labelled rows by (index epoch, id): put by ingest, else read from
    their bodies when first asked for; least recently used evicted beyond ``capacity_bytes``."""

    def __init__(self, storage: Storage, capacity_bytes: int = LABELLED_CACHE_BYTES) -> None:
        self.storage = storage
        self.cache: LruCache[str, Labelled] = LruCache(capacity_bytes, cost=lambda rows: rows.nbytes)
        #: Reports read from their bodies since made (the others were kept).
        self.read = 0

    def put(self, profile_id: str, rows: Labelled) -> None:
        """Keep a report's rows (ingest made them from the request's columns)."""
        self.cache.put(f"{rows.epoch}/{profile_id}", rows)

    def load(self, index: PathIndex, row: StoredProfile) -> Labelled:
        """The rows of ``row`` in ``index``: kept, or read from its body now (and kept)."""
        key = f"{index.epoch}/{row.id}"
        found = self.cache.get(key)
        if found is None:
            found = labelled_rows(index, self.storage.load_summary(row))
            self.read += 1
            self.cache.put(key, found)
        return found


def labelled_for(storage: Storage) -> LabelledProfiles:
    """The labelled reports of ``storage`` in this process (one cache per storage)."""
    return per_storage(storage, LabelledProfiles, lambda: LabelledProfiles(storage))


def indexes_for(storage: Storage) -> GroupIndexes:
    """The groups' call-path indexes of ``storage`` in this process, shared by its rollups (which
    fold each new report into them) and its window merges (which read the labelled rows)."""
    return per_storage(storage, GroupIndexes, GroupIndexes)
