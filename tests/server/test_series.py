"""Stored per-frame series (server/series.py): added once per profile, read back without the profiles."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List

import pytest
from sqlalchemy import select

from greenflame.analyzer.model import Frame, Profile
from greenflame.analyzer.timeseries import GroupSeries, group_series
from greenflame.server import series as series_module
from greenflame.server.callpaths import PathIndex, fold_profile
from greenflame.server.schema import series_buckets
from greenflame.server.series import SeriesStore
from greenflame.server.storage import Storage, StoredProfile
from tests.support.local_storage import count_loads, local_storage

GROUP = "svc"
T0_NS = 1_700_000_100 * 10**9  # 100 s past a 5-minute boundary
MINUTE_NS = 60 * 10**9

HANDLER = Frame("handler", "/srv/app/handler.py", 1)
PARSE = Frame("parse", "/srv/app/parse.py", 1)
JSON = Frame("loads", "/usr/lib/python3.11/json/__init__.py", 1)


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    yield from local_storage(tmp_path, GROUP)


def profile(minute: int, parse_share: int) -> Profile:
    """A 60-second profile: parse (through json) takes ``parse_share`` of 100 CPU samples."""
    made = Profile(group=GROUP, start_time_unix_ns=T0_NS + minute * MINUTE_NS, duration_ns=MINUTE_NS)
    made.add((HANDLER, PARSE, JSON), [parse_share + 5, parse_share])
    made.add((HANDLER,), [120 - parse_share, 100 - parse_share], {"endpoint": "/a"})
    if minute % 4 == 0:
        made.metadata = {"invocations": {"count": 10, "duration_ms_sum": 250.0}}
    return made


def store_all(storage: Storage, profiles: List[Profile]) -> List[StoredProfile]:
    for made in profiles:
        storage.add_profile(GROUP, made, None)
    return storage.find_profiles(GROUP)


def stored_counts(storage: Storage) -> List[int]:
    with storage.engine.connect() as conn:
        query = select(series_buckets.c.profile_count).order_by(series_buckets.c.bucket_start_unix_s)
        return [row[0] for row in conn.execute(query)]


def assert_same_series(got: GroupSeries, expected: GroupSeries) -> None:
    """``got`` has ``expected``'s points, totals, shares and library frames (ancestors aside)."""
    assert got.times == expected.times
    assert got.denominator == expected.denominator
    assert got.totals == expected.totals
    assert got.inclusive == expected.inclusive
    assert got.self_share == expected.self_share
    assert got.library == expected.library


def add_as_folds(series: SeriesStore, rows: List[StoredProfile], profiles: List[Profile]) -> None:
    """Add as the rollup worker does (call-path folds), each twice, some as profiles, and with
    the group's call-path index renewed half-way."""
    index = PathIndex()
    for n, (row, made) in enumerate(zip(rows, profiles)):
        if n == len(rows) // 2:
            index = PathIndex()
        if n % 5 == 4:
            series.add(row, made)
        else:
            series.add_fold(row, index, fold_profile(index, made), made.metadata)
        series.add_fold(row, index, fold_profile(index, made), made.metadata)
        if n % 7 == 6:
            series.flush(everything=True)


@pytest.mark.parametrize("as_folds", [False, True])
@pytest.mark.parametrize("resolution", [300, 3600])
def test_series_from_stored_buckets_equal_the_profiles_series(
    storage: Storage, resolution: int, as_folds: bool
) -> None:
    profiles = [profile(minute, 10 + (30 if minute > 40 else 0)) for minute in range(0, 90, 2)]
    rows = store_all(storage, profiles)
    series = SeriesStore(storage)
    in_order = sorted(profiles, key=lambda p: p.start_time_unix_ns)
    if as_folds:
        add_as_folds(series, rows, in_order)
    else:
        for row, made in zip(rows, in_order):
            series.add(row, made)
    assert sum(b.profiles for b in series.buckets(GROUP, rows).values()) == len(rows)
    expected = group_series(profiles, (resolution,))[resolution]
    got = series.group_series(GROUP, rows, resolution, structure_from=profiles[-3:])
    assert_same_series(got, expected)
    assert got.ancestors == expected.ancestors  # every profile here has the same stacks


def test_adding_a_profile_twice_counts_it_once(storage: Storage) -> None:
    made = profile(0, 10)
    (row,) = store_all(storage, [made])
    series = SeriesStore(storage)
    series.add(row, made)
    series.add(row, made)
    series.flush(everything=True)
    series.add(row, made)
    series.flush(everything=True)
    assert stored_counts(storage) == [1]
    assert series.group_series(GROUP, [row], 300).totals["cpu_samples"] == [100.0]


def test_new_profiles_are_read_from_memory_and_written_once_per_interval(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = store_all(storage, [profile(minute, 10) for minute in (0, 1, 2, 6)])  # buckets 0-5 and 5-10 min
    series = SeriesStore(storage)
    made = {row.id: storage.load_profile(row) for row in rows}
    for row in rows[:3]:
        series.add(row, made[row.id])
    assert stored_counts(storage) == []  # nothing written yet
    loaded = count_loads(storage, monkeypatch)
    assert series.group_series(GROUP, rows[:3], 300).totals["cpu_samples"] == [300.0]
    assert loaded == []  # this process reads its unwritten sums
    series.flush()
    assert stored_counts(storage) == []  # not due yet
    monkeypatch.setattr(series_module, "FLUSH_DELAY_S", 0.0)
    series.add(rows[3], made[rows[3].id])
    series.flush()
    assert stored_counts(storage) == [3, 1]
    assert SeriesStore(storage).group_series(GROUP, rows, 300).totals["cpu_samples"] == [300.0, 100.0]
    assert loaded == []  # another process reads the written rows


def test_a_row_another_process_changed_since_it_was_read_gets_only_what_it_lacks(storage: Storage) -> None:
    rows = store_all(storage, [profile(minute, 10) for minute in (0, 1, 2)])
    made = {row.id: storage.load_profile(row) for row in rows}
    ours, theirs = SeriesStore(storage), SeriesStore(storage)
    ours.add(rows[0], made[rows[0].id])
    ours.add(rows[1], made[rows[1].id])
    theirs.add(rows[1], made[rows[1].id])  # the same profile, and another, written first elsewhere
    theirs.add(rows[2], made[rows[2].id])
    theirs.flush(everything=True)
    ours.flush(everything=True)
    assert stored_counts(storage) == [3]
    assert SeriesStore(storage).group_series(GROUP, rows, 300).totals["cpu_samples"] == [300.0]


def test_profiles_not_added_yet_are_added_on_read_then_never_decoded_again(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = store_all(storage, [profile(minute, 10) for minute in range(0, 20, 2)])
    loaded = count_loads(storage, monkeypatch)
    SeriesStore(storage).buckets(GROUP, rows)
    assert sorted(loaded) == sorted(row.id for row in rows)
    assert sum(stored_counts(storage)) == len(rows)
    loaded.clear()
    SeriesStore(storage).buckets(GROUP, rows)  # a new process: reads the rows, decodes nothing
    assert loaded == []


def test_a_new_profile_costs_one_decode(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = store_all(storage, [profile(minute, 10) for minute in range(0, 20, 2)])
    series = SeriesStore(storage)
    series.buckets(GROUP, rows)
    loaded = count_loads(storage, monkeypatch)
    rows = store_all(storage, [profile(21, 10)])
    series.buckets(GROUP, rows)
    assert len(loaded) == 1


def test_a_bucket_at_the_range_edge_is_computed_from_the_wanted_profiles_only(storage: Storage) -> None:
    profiles = [profile(minute, 10) for minute in (0, 1, 2)]  # one 5-minute bucket
    rows = store_all(storage, profiles)
    series = SeriesStore(storage)
    series.buckets(GROUP, rows)
    edge = series.group_series(GROUP, rows[1:], 300)
    assert edge.totals["cpu_samples"] == [200.0]
    assert stored_counts(storage) == [3]  # the stored bucket is left whole


def test_the_pipeline_detects_over_stored_series_as_over_the_profiles(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("sklearn")
    from greenflame.analyzer.anomalies import detect_profiles
    from greenflame.server.pipeline import Pipeline, PipelineConfig
    from greenflame.server.pipeline_store import PipelineStore
    from greenflame.server.tickets.store import TicketStore

    five_minutes = 5 * MINUTE_NS
    profiles = []
    for n in range(288):  # a day of 5-minute reports; parse doubles for the last 4 hours
        made = Profile(group=GROUP, start_time_unix_ns=T0_NS + n * five_minutes, duration_ns=five_minutes)
        parse = 200 + (n % 7) * 3 + (200 if n >= 240 else 0)
        made.add((HANDLER, PARSE, JSON), [parse, parse])
        made.add((HANDLER,), [2000 - parse, 2000 - parse])
        profiles.append(made)
    rows = store_all(storage, profiles)
    expected = [a.to_dict() for a in detect_profiles(profiles)]
    assert expected  # the regression is found over the profiles
    pipeline = Pipeline(storage, PipelineStore(storage.engine), TicketStore(storage.engine), PipelineConfig(), {})
    window = profiles[-12:]  # the run's last hour, decoded
    assert [a.to_dict() for a in pipeline._detect(GROUP, rows, lambda: window, {})] == expected
    loaded = count_loads(storage, monkeypatch)
    assert [a.to_dict() for a in pipeline._detect(GROUP, rows, lambda: window, {})] == expected
    assert loaded == []  # the second run reads the stored buckets only


def test_memory_for_decoded_buckets_is_bounded(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    import greenflame.server.series as series_module

    rows = store_all(storage, [profile(minute, 10) for minute in range(0, 30, 5)])  # six buckets
    series = SeriesStore(storage)
    expected = series.group_series(GROUP, rows, 300).totals
    monkeypatch.setattr(series_module, "CACHE_BYTES", 1)
    bounded = SeriesStore(storage)
    assert bounded.group_series(GROUP, rows, 300).totals == expected
    assert len(bounded._cache) == 1  # only the last bucket read is kept
