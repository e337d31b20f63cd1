"""Series finer than the stored buckets (server/fine_series.py): equal to the profiles' own series,
each profile counted once per process, from its ingest fold when there is one."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List

import pytest

from greenflame.analyzer.model import Frame, Profile
from greenflame.analyzer.timeseries import group_series
from greenflame.server.callpaths import GroupIndexes, PathIndex, fold_profile
from greenflame.server.fine_series import FineSeries
from greenflame.server.labelled import LabelledProfiles
from greenflame.server.storage import Storage, StoredProfile
from tests.server.test_series import GROUP, HANDLER, JSON, MINUTE_NS, PARSE, T0_NS, assert_same_series
from tests.support.local_storage import count_loads, local_storage

RENDER = Frame("render", "/srv/app/render.py", 1)


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    yield from local_storage(tmp_path, GROUP)


def minute_profile(minute: int, parse: int) -> Profile:
    """A one-minute profile: ``parse`` CPU samples in parse (through json), the rest of 1,000 in
    the handler or render (every third minute), invocations on even minutes."""
    made = Profile(group=GROUP, start_time_unix_ns=T0_NS + minute * MINUTE_NS, duration_ns=MINUTE_NS)
    made.add((HANDLER, PARSE, JSON), [parse + 7, parse])
    rest = (HANDLER, RENDER) if minute % 3 == 0 else (HANDLER,)
    made.add(rest, [1000 - parse, 1000 - parse], {"endpoint": "/a"})
    if minute % 2 == 0:
        made.metadata = {"invocations": {"count": 4 + minute % 5, "duration_ms_sum": 90.0 + minute}}
    return made


def stored(storage: Storage, profiles: List[Profile]) -> List[StoredProfile]:
    ids = {storage.add_profile(GROUP, made, None)[0] for made in profiles}
    return [row for row in storage.find_profiles(GROUP) if row.id in ids]


def note_folds(fine: FineSeries, rows: List[StoredProfile], profiles: List[Profile], every: int = 1) -> None:
    """Note the folds of every ``every``-th profile, the group's index renewed half-way (as ingest does)."""
    index = PathIndex()
    by_start = {made.start_time_unix_ns: made for made in profiles}
    for n, row in enumerate(rows):
        if n == len(rows) // 2:
            index = PathIndex()
        if n % every == 0:
            made = by_start[row.start_time_unix_ns]
            fine.note_fold(row.id, index, fold_profile(index, made), made.metadata)


@pytest.mark.parametrize("every", [1, 3, 0], ids=["all-folds", "some-folds", "decoded"])
@pytest.mark.parametrize("resolution", [60, 120, 600])
def test_fine_series_equal_the_profiles_series(storage: Storage, resolution: int, every: int) -> None:
    profiles = [minute_profile(minute, 100 + 3 * (minute % 7) + (150 if minute > 40 else 0)) for minute in range(55)]
    rows = stored(storage, profiles)
    fine = FineSeries(LabelledProfiles(storage), GroupIndexes())
    if every:
        note_folds(fine, rows, profiles, every)
    expected = group_series(profiles, (resolution,))[resolution]
    got = fine.group_series(GROUP, rows, resolution, structure_from=profiles[-3:])
    assert_same_series(got, expected)
    assert set(got.ancestors) == set(expected.ancestors)
    assert fine.counted_from_folds == ((len(rows) + every - 1) // every if every else 0)
    assert fine.counted_from_folds + fine.counted_from_bodies == len(rows)


def test_each_profile_is_counted_once_per_process(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    profiles = [minute_profile(minute, 120) for minute in range(20)]
    rows = stored(storage, profiles)
    fine = FineSeries(LabelledProfiles(storage), GroupIndexes())
    loaded = count_loads(storage, monkeypatch)
    first = fine.group_series(GROUP, rows, 60)
    assert sorted(loaded) == sorted(row.id for row in rows)
    loaded.clear()
    again = fine.group_series(GROUP, rows, 60)
    assert loaded == [] and again.totals == first.totals
    newer = stored(storage, [minute_profile(20, 300)])
    grown = fine.group_series(GROUP, rows + newer, 60)
    assert loaded == [newer[0].id] and fine.counted_from_bodies == len(rows) + 1
    assert grown.totals["cpu_samples"] == first.totals["cpu_samples"] + [1000.0]


def test_a_bucket_gaining_a_profile_adds_only_it(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    profiles = [minute_profile(minute, 120) for minute in (0, 2, 4, 6)]  # two per 5-minute bucket
    rows = stored(storage, profiles)
    fine = FineSeries(LabelledProfiles(storage), GroupIndexes())
    fine.group_series(GROUP, rows, 300)
    loaded = count_loads(storage, monkeypatch)
    late = stored(storage, [minute_profile(1, 500)])  # arrives late, into the first bucket
    got = fine.group_series(GROUP, rows + late, 300)
    assert loaded == [late[0].id] and fine.counted_from_bodies == len(rows) + 1
    expected = group_series([*profiles, minute_profile(1, 500)], (300,))[300]
    assert got.totals == expected.totals and got.inclusive == expected.inclusive


def test_a_bucket_that_lost_a_profile_is_counted_afresh(storage: Storage) -> None:
    profiles = [minute_profile(minute, 100 + 50 * minute) for minute in (0, 1, 2)]
    rows = stored(storage, profiles)
    fine = FineSeries(LabelledProfiles(storage), GroupIndexes())
    assert fine.group_series(GROUP, rows, 300).totals["cpu_samples"] == [3000.0]
    kept = [row for row in rows if row.start_time_unix_ns != T0_NS]  # the oldest one removed by retention
    got = fine.group_series(GROUP, kept, 300)
    expected = group_series(profiles[1:], (300,))[300]
    assert got.totals == expected.totals and got.inclusive == expected.inclusive


def test_a_capped_fold_is_not_used(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    made = minute_profile(0, 120)
    made.add((HANDLER,), [10, 10])  # a third stack
    rows = stored(storage, [made])
    index = PathIndex()
    fine = FineSeries(LabelledProfiles(storage), GroupIndexes())
    fold = fold_profile(index, made, max_paths=2)  # its three stacks capped to two
    assert fold.capped
    fine.note_fold(rows[0].id, index, fold, made.metadata)
    loaded = count_loads(storage, monkeypatch)
    got = fine.group_series(GROUP, rows, 60)
    assert loaded == [rows[0].id] and fine.counted_from_folds == 0
    assert got.inclusive == group_series([made], (60,))[60].inclusive


def test_memory_for_folds_and_buckets_is_bounded(storage: Storage) -> None:
    profiles = [minute_profile(minute, 120) for minute in range(30)]
    rows = stored(storage, profiles)
    fine = FineSeries(LabelledProfiles(storage, capacity_bytes=1), GroupIndexes(), fold_bytes=1, bucket_bytes=1)
    note_folds(fine, rows, profiles)
    assert fine.counted_from_folds == 0
    got = fine.group_series(GROUP, rows, 60)  # nothing kept: every profile decoded, the series still right
    assert fine.counted_from_bodies == len(rows) and len(got.times) == 30


def test_the_pipeline_detects_over_short_profiles_without_decoding_them_again(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("sklearn")
    from greenflame.analyzer.anomalies import detect_profiles
    from greenflame.server.fine_series import fine_series_for
    from greenflame.server.pipeline import Pipeline, PipelineConfig
    from greenflame.server.pipeline_store import PipelineStore
    from greenflame.server.tickets.store import TicketStore

    profiles = [minute_profile(minute, 200 + 3 * (minute % 7) + (200 if minute >= 45 else 0)) for minute in range(58)]
    rows = stored(storage, profiles)
    expected = [a.to_dict() for a in detect_profiles(profiles)]
    assert expected  # parse's step is found over the profiles themselves
    note_folds(fine_series_for(storage), rows[: len(rows) // 2], profiles)  # the other half: decoded
    pipeline = Pipeline(storage, PipelineStore(storage.engine), TicketStore(storage.engine), PipelineConfig(), {})
    window = profiles[-5:]
    loaded = count_loads(storage, monkeypatch)
    assert [a.to_dict() for a in pipeline._detect(GROUP, rows, lambda: window, {})] == expected
    assert len(loaded) == len(rows) - len(rows) // 2
    loaded.clear()
    assert [a.to_dict() for a in pipeline._detect(GROUP, rows, lambda: window, {})] == expected
    assert loaded == []
