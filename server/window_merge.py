"""Full merges of a group's profiles over a window, from kept merges of fixed time slots.

An analysis run merges every profile of the group's last hour, and a label-filtered flame graph
every profile of its range: hundreds to thousands of reports, nearly all of them merged by the
run before. :func:`analyzer.model.merge` is associative (merging merges of consecutive profiles
gives the merge of all of them: samples with labels, frames in order, window, mean period,
metadata counters), so a window is merged here from parts:

- the profiles are cut into runs of consecutive profiles starting in the same 5-minute slot;
- each slot's merge is kept (by group and slot) with the ids of the profiles it holds: the same
  profiles again are not merged again; more profiles after them (a slot still receiving reports)
  are merged onto the kept merge; any other set (the window's first slot, which it cuts, or a
  report that arrived late) is merged from the slot's 1-minute parts, kept the same way, of which
  only the changed ones are merged from their profiles;
- the slots between the first and the last are merged into one span, kept by its profiles' ids
  (it changes when the window moves past a slot's edge);
- the window is the merge of the first slot, the span and the last slot.

Reports and parts are labelled rows of the group's call-path index (:mod:`.labelled`), which
ingest makes from the request's columns; only the window's merge becomes a profile. Everything
kept is memory only, bounded by an estimate of its bytes: an evicted report is read from its
body, an evicted part merged again from its reports, and a part of an index since replaced is
merged again in the new one; a new process starts with nothing kept; the result is always the
merge of exactly the profiles asked for.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from greenflame.analyzer.model import Profile
from greenflame.analyzer.rules.lambda_facts import invocation_count, local_runner

from . import labelled
from .callpaths import GroupIndexes, PathIndex
from .decoded import DecodedProfiles, decoded_for
from .labelled import Labelled, LabelledProfiles, indexes_for, labelled_for, to_profile
from .lru import LruCache
from .series import per_storage
from .storage import Storage, StoredProfile

SLOT_NS = 300 * 10**9
SUB_SLOT_NS = 60 * 10**9
#: Bound of the estimated bytes of the slot, 1-minute and span merges one storage keeps.
MERGE_CACHE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Traffic:
    """What :func:`analyzer.report.observed_traffic` reads of a set of reports, summed so that
    parts combine: invocations counted (each report's count of at least 1), whether any report
    counted them or came from a local runner, first start and last end."""

    invocations: int = 0
    counted: bool = False
    local: bool = False
    start_ns: Optional[int] = None
    end_ns: Optional[int] = None

    @classmethod
    def of(cls, profile: Profile) -> Traffic:
        """One report's traffic."""
        count = invocation_count(profile)
        start = profile.start_time_unix_ns
        return cls(count or 0, count is not None, local_runner(profile) is not None, start, start + profile.duration_ns)

    def __add__(self, other: Traffic) -> Traffic:
        return Traffic(
            self.invocations + other.invocations,
            self.counted or other.counted,
            self.local or other.local,
            _extreme(min, self.start_ns, other.start_ns),
            _extreme(max, self.end_ns, other.end_ns),
        )

    def observed(self) -> Dict[str, Any]:
        """``observed_traffic`` of the reports: the keyword arguments of ``analyze_profile``."""
        if not self.counted or self.local or self.start_ns is None or self.end_ns is None:
            return {}
        if self.end_ns <= self.start_ns:
            return {}
        return {"observed_invocations": self.invocations, "observed_window_s": (self.end_ns - self.start_ns) / 1e9}


def _extreme(pick: Any, a: Optional[int], b: Optional[int]) -> Optional[int]:
    return b if a is None else a if b is None else pick(a, b)


@dataclass(frozen=True)
class Part:
    """The merge of consecutive profiles (``ids``, in order) as labelled rows of their group's index,
    with their summed traffic."""

    ids: Tuple[str, ...]
    rows: Labelled
    traffic: Traffic

    @property
    def uniform(self) -> bool:
        """Whether the merge shows which frames are above which as its reports together do (their
        reports read one structure kind at most)."""
        return len(self.rows.kinds) <= 1


def single(profile_id: str, rows: Labelled) -> Part:
    """One report as a part."""
    return Part((profile_id,), rows, Traffic.of(rows.shell))


def combine(group: str, parts: Sequence[Part]) -> Part:
    """The merge of consecutive parts (of one index): by associativity, the merge of all their reports."""
    ids: Tuple[str, ...] = ()
    traffic = Traffic()
    for part in parts:
        ids += part.ids
        traffic += part.traffic
    epoch = parts[0].rows.epoch if parts else 0
    return Part(ids, labelled.combine(epoch, group, [part.rows for part in parts]), traffic)


@dataclass(frozen=True)
class Window:
    """A window's merge, and the slot parts it was merged from, in ``index``."""

    merged: Part
    slots: Tuple[Part, ...]
    index: PathIndex

    @cached_property
    def profile(self) -> Profile:
        """The merge of every profile of the window, with labels and metadata (made once per window)."""
        return to_profile(self.index, self.merged.rows)

    def observed_traffic(self) -> Dict[str, Any]:
        """:func:`analyzer.report.observed_traffic` of the window's profiles."""
        return self.merged.traffic.observed()


def runs(rows: Sequence[StoredProfile], width_ns: int) -> Iterator[Tuple[int, List[StoredProfile]]]:
    """``rows`` cut into runs of consecutive rows starting in the same ``width_ns`` slot."""
    number: Optional[int] = None
    members: List[StoredProfile] = []
    for row in rows:
        slot = row.start_time_unix_ns // width_ns
        if slot != number and members:
            yield number or 0, members
            members = []
        number = slot
        members.append(row)
    if members:
        yield number or 0, members


def part_bytes(part: Part) -> int:
    """An estimate of the memory a kept part holds."""
    return part.rows.nbytes + 80 * len(part.ids)


class WindowMerges:
    """One storage's kept slot and span merges (thread-safe: two threads may merge the same part
    at once, and both results are right)."""

    def __init__(
        self,
        reports: LabelledProfiles,
        indexes: GroupIndexes,
        decoded: DecodedProfiles,
        capacity_bytes: int = MERGE_CACHE_BYTES,
    ) -> None:
        self.reports = reports
        self.indexes = indexes
        self.decoded = decoded
        #: By (group, width, slot number), the last merge made of the slot.
        self.parts: LruCache[Tuple[str, int, int], Part] = LruCache(capacity_bytes // 2, cost=part_bytes)
        #: By (group, index epoch, digest of the profile ids), spans of whole slots.
        self.spans: LruCache[Tuple[str, int, str], Part] = LruCache(capacity_bytes // 2, cost=part_bytes)
        #: Parts merged from their profiles or parts since made (the others were kept).
        self.merged = 0

    def window(self, group: str, rows: Sequence[StoredProfile]) -> Window:
        """The merge of ``rows`` (``group``'s profiles, in the order the storage lists them)."""
        index = self.indexes.get(group)
        slots = tuple(self.slot(index, group, SLOT_NS, number, members) for number, members in runs(rows, SLOT_NS))
        parts: Sequence[Part] = slots
        if len(slots) > 3:
            parts = [slots[0], self._span(group, slots[1:-1]), slots[-1]]
        return Window(combine(group, parts), slots, index)

    def slot(self, index: PathIndex, group: str, width_ns: int, number: int, rows: Sequence[StoredProfile]) -> Part:
        """The merge of ``rows``, profiles of one ``width_ns`` slot, from what is kept of it."""
        key = (group, width_ns, number)
        ids = tuple(row.id for row in rows)
        kept = self.parts.get(key)
        if kept is not None and kept.rows.epoch != index.epoch:  # the group's index started afresh
            kept = None
        if kept is not None and kept.ids == ids:
            return kept
        if kept is not None and ids[: len(kept.ids)] == kept.ids:  # more reports after the kept ones
            parts = [kept, *self._singles(index, rows[len(kept.ids) :])]
        elif kept is not None and width_ns > SUB_SLOT_NS:  # another set: from the kept 1-minute parts
            parts = [self.slot(index, group, SUB_SLOT_NS, sub, members) for sub, members in runs(rows, SUB_SLOT_NS)]
        else:
            parts = self._singles(index, rows)
        part = combine(group, parts)
        self.merged += 1
        self.parts.put(key, part)
        return part

    def _singles(self, index: PathIndex, rows: Sequence[StoredProfile]) -> List[Part]:
        return [single(row.id, self.reports.load(index, row)) for row in rows]

    def _span(self, group: str, slots: Sequence[Part]) -> Part:
        digest = hashlib.sha256()
        for part in slots:
            digest.update("\0".join(part.ids).encode() + b"\1")
        key = (group, slots[0].rows.epoch, digest.hexdigest())
        found = self.spans.get(key)
        if found is None:
            found = combine(group, slots)
            self.merged += 1
            self.spans.put(key, found)
        return found

    def structure_profiles(self, window: Window, rows: Sequence[StoredProfile]) -> List[Profile]:
        """Profiles showing which frames are above which as the window's ``rows`` together do: the
        window's merge when its reports read one sample type for it, else each slot's merge where
        its reports do, else that slot's reports themselves; each without labels (the structure
        is the stacks', and a stack with two label values is then one sample to walk, not two)."""
        if window.merged.uniform:
            return [without_labels(window.profile)]
        by_id = {row.id: row for row in rows}
        out: List[Profile] = []
        for part in window.slots:
            if part.uniform:
                out.append(to_profile(window.index, part.rows))
            else:
                out.extend(self.decoded.load_all([by_id[i] for i in part.ids]))
        return [without_labels(profile) for profile in out]


def without_labels(profile: Profile) -> Profile:
    """``profile``'s samples summed per stack, labels dropped (its frames and totals unchanged)."""
    result = Profile(sample_types=list(profile.sample_types), frames=list(profile.frames), group=profile.group)
    for sample in profile.samples:
        result.add_ids(sample.stack, sample.values)
    return result


def merges_for(storage: Storage) -> WindowMerges:
    """The window merges of ``storage`` in this process (one per storage, over its labelled reports)."""
    reports = labelled_for(storage)  # first: per_storage's lock is not re-entrant
    indexes = indexes_for(storage)
    decoded = decoded_for(storage)
    return per_storage(storage, WindowMerges, lambda: WindowMerges(reports, indexes, decoded))
