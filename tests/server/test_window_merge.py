"""Window merges from kept slot merges equal the merge of every profile of the window, run after
run as reports arrive (late ones too) and the window moves; a run after one new report decodes
that report alone; traffic and structure are those of the reports themselves."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Iterator, List, Sequence

import pytest

from greenflame.analyzer.formats.wire_summary import DocumentSummary, WireDocument
from greenflame.analyzer.model import Profile, merge
from greenflame.analyzer.report import observed_traffic
from greenflame.analyzer.series_counts import BucketCounts, add_structure
from greenflame.server.callpaths import GroupIndexes, PathIndex
from greenflame.server.decoded import DecodedProfiles
from greenflame.server.labelled import LabelledProfiles, labelled_for, labelled_rows
from greenflame.server.rollups import Rollups
from greenflame.server.series import frame_key, is_library_file
from greenflame.server.storage import Storage, StoredProfile
from greenflame.server.window_merge import SLOT_NS, WindowMerges, combine, merges_for, runs, single
from tests.support.generated_profiles import assert_same_merge, random_profile
from tests.support.local_storage import local_storage

GROUP = "g"
START_NS = 1_700_000_000 * 10**9
MINUTE_NS = 60 * 10**9


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    yield from local_storage(tmp_path, GROUP)


def store(storage: Storage, profile: Profile) -> None:
    profile.group = GROUP
    storage.add_profile(GROUP, profile, None)


def window_rows(storage: Storage, span_ns: int) -> List[StoredProfile]:
    """The group's profiles ending in the last ``span_ns`` before its latest end, as the pipeline picks them."""
    rows = storage.find_profiles(GROUP)
    latest = max(row.start_time_unix_ns + row.duration_ns for row in rows)
    return [row for row in rows if row.start_time_unix_ns + row.duration_ns >= latest - span_ns]


def new_merges(storage: Storage, capacity_bytes: int = 1 << 30) -> WindowMerges:
    """Window merges of their own (``capacity_bytes`` for the reports and the parts each)."""
    reports = LabelledProfiles(storage, capacity_bytes=capacity_bytes)
    return WindowMerges(reports, GroupIndexes(), DecodedProfiles(storage), capacity_bytes=capacity_bytes)


def check(merges: WindowMerges, storage: Storage, rows: Sequence[StoredProfile]) -> None:
    profiles = [storage.load_profile(row) for row in rows]
    window = merges.window(GROUP, rows)
    assert_same_merge(window.profile, merge(profiles, GROUP))
    assert window.observed_traffic() == observed_traffic(profiles)
    assert structure(merges.structure_profiles(window, rows)) == structure(profiles)


def structure(profiles: Sequence[Profile]) -> tuple:
    counts = BucketCounts()
    for profile in profiles:
        add_structure(counts, profile, frame_key, is_library_file)
    return counts.ancestors, counts.library


@pytest.mark.parametrize("seed", range(4))
def test_window_after_window_equals_the_merge_of_its_profiles(storage: Storage, seed: int) -> None:
    rng = random.Random(seed)
    merges = new_merges(storage)
    for n in range(40):  # about 3 reports a minute over 13 minutes
        store(storage, random_profile(rng, n // 3, START_NS, zero_start=0, local_runner=0.02, malformed=False))
    for step in range(30):
        late = rng.random() < 0.2  # a report that starts within an earlier slot
        minute = rng.randint(0, 13 + step) if late else 13 + step
        store(storage, random_profile(rng, minute, START_NS, zero_start=0, malformed=False))
        check(merges, storage, window_rows(storage, rng.choice([10, 20, 60]) * MINUTE_NS))


def test_a_run_after_one_new_report_reads_it_alone_and_merges_few_parts(storage: Storage) -> None:
    rng = random.Random(7)
    for n in range(60):
        store(storage, random_profile(rng, n, START_NS, zero_start=0, malformed=False))
    merges = new_merges(storage)
    first = window_rows(storage, 60 * MINUTE_NS)
    merges.window(GROUP, first)
    assert merges.reports.read == len(first)
    for n in range(60, 66):
        store(storage, random_profile(rng, n, START_NS, zero_start=0, malformed=False))
        before = (merges.reports.read, merges.merged)
        check(merges, storage, window_rows(storage, 30 * MINUTE_NS))
        # the new report; the slot it extends, the first slot (and its changed minute), maybe the span
        assert merges.reports.read - before[0] <= 2
        assert merges.merged - before[1] <= 6


def test_evicted_parts_and_profiles_are_merged_again(storage: Storage) -> None:
    rng = random.Random(3)
    for n in range(25):
        store(storage, random_profile(rng, n, START_NS, zero_start=0, malformed=False))
    merges = new_merges(storage, capacity_bytes=1)  # nothing is kept
    for span_minutes in (25, 12, 25):
        check(merges, storage, window_rows(storage, span_minutes * MINUTE_NS))
    assert merges.reports.read >= 25 + 12 + 25


def test_runs_follow_the_order_given_even_when_a_slot_comes_back(storage: Storage) -> None:
    rng = random.Random(5)
    for n in (0, 1, 7, 8, 2):
        store(storage, random_profile(rng, n, START_NS, zero_start=0, malformed=False))
    rows = storage.find_profiles(GROUP)
    shuffled = [rows[0], rows[3], rows[1], rows[4], rows[2]]  # slots 0, 1, 0, 1, 0
    assert [number for number, _ in runs(shuffled, SLOT_NS)] == [row.start_time_unix_ns // SLOT_NS for row in shuffled]
    merges = merges_for(storage)
    for order in (shuffled, rows, shuffled):
        check(merges, storage, order)


@pytest.mark.parametrize("seed", range(20))
def test_traffic_of_parts_is_that_of_their_reports(seed: int) -> None:
    rng = random.Random(seed)
    profiles = [random_profile(rng, n, START_NS, zero_start=0.2, local_runner=0.1) for n in range(rng.randint(1, 12))]
    index = PathIndex()
    parts = [single(str(n), labelled_rows(index, summary_of(profile))) for n, profile in enumerate(profiles)]
    cut = rng.randint(0, len(parts))
    merged = combine(GROUP, [combine(GROUP, parts[:cut]), combine(GROUP, parts[cut:])])
    assert merged.traffic.observed() == observed_traffic(profiles)


def test_rollups_full_merge_is_the_merge_of_the_range(storage: Storage) -> None:
    rng = random.Random(11)
    for n in range(30):
        store(storage, random_profile(rng, n, START_NS, zero_start=0, malformed=False))
    rows = storage.find_profiles(GROUP)
    rollups = Rollups(storage)
    for part in (rows, rows[7:], rows[7:23]):
        expected = merge([storage.load_profile(row) for row in part], GROUP)
        assert_same_merge(rollups.merged(GROUP, part), expected)
    assert labelled_for(storage).read == 30  # each profile read once across the three ranges


def summary_of(profile: Profile) -> DocumentSummary:
    """``profile`` as ingest's checked document."""
    return DocumentSummary.of(profile, WireDocument.of(profile))
