"""Reports as labelled rows of their group's call-path index: merged in any grouping they give the
merge of the reports' profiles (frames, samples and labels in the same order, window, period,
metadata); rows of one index are never read with another; label sets are one id whatever their
order; ingest's rows serve the window merges without reading a body back."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Iterator, List

import pytest

from greenflame.analyzer.formats.wire_summary import DocumentSummary, WireDocument
from greenflame.analyzer.model import Frame, Profile, Sample, merge
from greenflame.server.callpaths import GroupIndexes, LabelSets, PathIndex
from greenflame.server.labelled import Labelled, combine, labelled_for, labelled_rows, to_profile
from greenflame.server.storage import Storage
from greenflame.server.window_merge import merges_for
from tests.support.generated_profiles import assert_same_merge, random_profile
from tests.support.local_storage import local_storage

GROUP = "g"
START_NS = 1_700_000_000 * 10**9


def summary_of(profile: Profile) -> DocumentSummary:
    return DocumentSummary.of(profile, WireDocument.of(profile))


def merged_in_parts(index: PathIndex, rows: List[Labelled], rng: random.Random) -> Labelled:
    """``rows`` merged as a random tree of consecutive parts."""
    if len(rows) <= 1 or rng.random() < 0.3:
        return combine(index.epoch, GROUP, rows)
    cut = rng.randint(1, len(rows) - 1)
    return combine(
        index.epoch, GROUP, [merged_in_parts(index, rows[:cut], rng), merged_in_parts(index, rows[cut:], rng)]
    )


@pytest.mark.parametrize("seed", range(12))
def test_rows_merged_in_any_grouping_are_the_merge_of_the_profiles(seed: int) -> None:
    rng = random.Random(seed)
    profiles = [random_profile(rng, n, START_NS, zero_start=0.2, malformed=False) for n in range(rng.randint(1, 9))]
    for profile in profiles:
        profile.group = GROUP
    index = PathIndex()
    rows = [labelled_rows(index, summary_of(profile)) for profile in profiles]
    assert_same_merge(to_profile(index, merged_in_parts(index, rows, rng)), merge(profiles, GROUP))


def test_a_report_with_repeated_samples_sums_them_in_first_place() -> None:
    profile = Profile(
        frames=[Frame("a", "a.py", 1), Frame("b", "b.py", 2), Frame("a", "a.py", 1)],
        samples=[
            Sample((0, 1), [1, 1], {"route": "x"}),
            Sample((2, 1), [2, 0], {"route": "x"}),  # the same stack through a repeated frame
            Sample((0,), [4, 4], {}),
            Sample((0, 1), [8, 0], {"route": "y"}),
        ],
        group=GROUP,
        start_time_unix_ns=START_NS,
        duration_ns=10**9,
    )
    index = PathIndex()
    rows = combine(index.epoch, GROUP, [labelled_rows(index, summary_of(profile))])
    assert len(rows.paths) == 3
    assert_same_merge(to_profile(index, rows), merge([profile], GROUP))


def test_rows_are_never_read_with_another_index() -> None:
    profile = random_profile(random.Random(1), 0, START_NS, malformed=False)
    rows = labelled_rows(PathIndex(), summary_of(profile))
    with pytest.raises(ValueError, match="read with index"):
        to_profile(PathIndex(), rows)


def test_label_sets_are_one_id_whatever_their_order() -> None:
    sets = LabelSets()
    first = sets.ids([{}, {"a": "1", "b": "2"}, {"b": "2", "a": "1"}, {"a": "1"}, {"a": "2"}])
    assert first == [0, 1, 1, 2, 3]
    assert sets.ids([{"a": "2"}, {"b": "2", "a": "1"}]) == [3, 1]
    assert sets.dicts[1] == {"a": "1", "b": "2"}


def test_an_index_with_too_many_label_sets_starts_afresh() -> None:
    indexes = GroupIndexes()
    first = indexes.get(GROUP, max_paths=3)
    with first.lock:
        first.label_sets.ids([{"n": str(n)} for n in range(4)])
    assert indexes.get(GROUP, max_paths=3) is not first


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    yield from local_storage(tmp_path, GROUP)


def test_window_merges_after_the_index_started_afresh_merge_again_in_the_new_one(storage: Storage) -> None:
    rng = random.Random(4)
    profiles = [random_profile(rng, n, START_NS, zero_start=0, malformed=False) for n in range(12)]
    for profile in profiles:
        profile.group = GROUP
        storage.add_profile(GROUP, profile, None)
    rows = storage.find_profiles(GROUP)
    merges = merges_for(storage)
    first = merges.window(GROUP, rows)
    assert_same_merge(first.profile, merge(profiles, GROUP))
    read = merges.reports.read
    fresh = merges.indexes.get(GROUP, max_paths=0)  # the rows kept belong to the old index now
    again = merges.window(GROUP, rows)
    assert again.index is fresh and again.merged.rows.epoch == fresh.epoch
    assert_same_merge(again.profile, merge(profiles, GROUP))
    assert merges.reports.read - read == len(rows)


def test_rows_kept_by_ingest_are_read_without_the_body(storage: Storage) -> None:
    rng = random.Random(8)
    profiles = [random_profile(rng, n, START_NS, zero_start=0, malformed=False) for n in range(6)]
    index = merges_for(storage).indexes.get(GROUP)
    for profile in profiles:
        profile.group = GROUP
        profile_id, _ = storage.add_profile(GROUP, profile, None)
        labelled_for(storage).put(profile_id, labelled_rows(index, summary_of(profile)))
    window = merges_for(storage).window(GROUP, storage.find_profiles(GROUP))
    assert_same_merge(window.profile, merge(profiles, GROUP))
    assert labelled_for(storage).read == 0


def test_a_report_without_samples_merges_as_its_profile_does() -> None:
    empty = Profile(group=GROUP, start_time_unix_ns=START_NS, duration_ns=10**9, metadata={"dropped": {"full": 2}})
    other = random_profile(random.Random(2), 1, START_NS, zero_start=0, malformed=False)
    other.group = GROUP
    index = PathIndex()
    rows = [labelled_rows(index, summary_of(profile)) for profile in (empty, other, empty)]
    assert len(rows[0].paths) == 0 and rows[0].kinds == frozenset()
    assert_same_merge(to_profile(index, combine(index.epoch, GROUP, rows)), merge([empty, other, empty], GROUP))
    assert_same_merge(to_profile(index, combine(index.epoch, GROUP, rows[:1])), merge([empty], GROUP))
