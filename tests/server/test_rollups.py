"""Call-path rollups: a range's tree from summed bucket arrays equals the tree of the merged raw
profiles; stored buckets round-trip into another index; the per-bucket cap; incremental ingest."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, Iterator, List, Sequence, Tuple

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from greenflame.analyzer.formats import greenflame_json
from greenflame.analyzer.model import CPU, WALL, Frame, Profile, merge
from greenflame.analyzer.series_counts import BucketCounts
from greenflame.analyzer.tree import build_tree, prune, prune_paths, to_dict
from greenflame.server import callpaths
from greenflame.server import ingest as ingest_module
from greenflame.server import rollups as rollups_module
from greenflame.server.app import create_app, shut_down
from greenflame.server.callpaths import (
    CAPPED_FRAME,
    PathIndex,
    StoredFormatError,
    cap,
    decode,
    encode,
    fold_profile,
    merge_counts,
    path_tree,
)
from greenflame.server.context import SETTINGS_KEY
from greenflame.server.labelled import labelled_for
from greenflame.server.rollups import HOUR_NS, Worker, get_rollups
from greenflame.server.series import profile_counts, row_bucket, series_for
from greenflame.server.storage import Storage, get_storage
from greenflame.server.views import flamegraph_view
from greenflame.server.window_merge import merges_for
from tests.support.generated_profiles import assert_same_merge

FRAMES = [Frame(name, file, line) for name in ("a", "b", "other", "c") for file, line in (("x.py", 1), ("", 0))]
Stack = Tuple[int, ...]
stacks = st.lists(st.integers(0, len(FRAMES) - 1), max_size=6).map(tuple)
samples = st.lists(st.tuples(stacks, st.integers(0, 50), st.integers(0, 50)), max_size=25)


def build(rows: Sequence[Tuple[Stack, int, int]], start_ns: int = 0) -> Profile:
    """A profile of ``(stack of FRAMES indices, wall, cpu)`` rows, each with a label."""
    profile = Profile(group="g", start_time_unix_ns=start_ns, duration_ns=300 * 10**9)
    for n, (stack, wall, cpu) in enumerate(rows):
        profile.add([FRAMES[i] for i in stack], [wall, cpu], {"n": str(n % 3)})
    return profile


def rolled_up(index: PathIndex, profiles: List[Profile]) -> callpaths.PathCounts:
    return merge_counts(index, [fold_profile(index, profile) for profile in profiles])


@settings(max_examples=150, deadline=None)
@given(st.lists(samples, min_size=1, max_size=5), st.integers(2, 40), st.sampled_from([CPU, WALL]))
def test_rolled_up_tree_equals_tree_of_merged_raw_profiles(
    parts: List[List[Tuple[Stack, int, int]]], max_nodes: int, sample_type: str
) -> None:
    profiles = [build(rows) for rows in parts]
    expected = build_tree(merge(profiles, "g"), sample_type)
    index = PathIndex()
    tree = path_tree(index, rolled_up(index, profiles), sample_type)
    assert prune_paths(tree, 10**6) == expected
    pruned = prune_paths(tree, max_nodes)
    assert pruned == prune(expected, max_nodes)
    assert to_dict(pruned, ordered=True) == to_dict(pruned)  # children come in display order


@settings(max_examples=60, deadline=None)
@given(st.lists(samples, min_size=1, max_size=4), samples, st.sampled_from([1, 6]))
def test_stored_buckets_read_back_into_another_index(
    parts: List[List[Tuple[Stack, int, int]]], more: list, level: int
) -> None:
    writer = PathIndex()
    counts = rolled_up(writer, [build(rows) for rows in parts])
    counts.capped = 3
    reader = PathIndex()
    fold_profile(reader, build(more))  # the reader already knows some paths, under other ids
    back = decode(reader, encode(writer, counts, level))
    assert (back.types, back.start_ns, back.end_ns, back.capped) == (counts.types, counts.start_ns, counts.end_ns, 3)
    for sample_type in (CPU, WALL):
        expected = prune_paths(path_tree(writer, counts, sample_type), 10**6)
        assert prune_paths(path_tree(reader, back, sample_type), 10**6) == expected


@settings(max_examples=150, deadline=None)
@given(st.lists(samples, min_size=1, max_size=5), st.lists(st.booleans(), min_size=5, max_size=5))
def test_sorted_and_dense_sums_of_buckets_agree(parts: List[List[Tuple[Stack, int, int]]], swap: List[bool]) -> None:
    """merge_counts picks a dense or a sorted sum by size: both give the same ids and values,
    with sample types in another order or missing, and stacks whose values are all zero dropped."""
    index = PathIndex()
    folds = []
    for rows, swapped in zip(parts, swap):
        fold = fold_profile(index, build(rows))
        if swapped:  # the same sums with the columns the other way round, or one type only
            fold = callpaths.PathCounts(fold.types[::-1], fold.ids, fold.values[:, ::-1].copy())
        folds.append(fold)
    folds.append(callpaths.PathCounts(folds[0].types[:1], folds[0].ids, folds[0].values[:, :1].copy()))
    names = [WALL, CPU]
    size = max((int(fold.ids.max()) + 1 for fold in folds if len(fold.ids)), default=1)
    dense_ids, dense_values = callpaths._dense_sum(folds, names, size)
    sparse_ids, sparse_values = callpaths._sparse_sum(folds, names, size)
    assert dense_ids.tolist() == sparse_ids.tolist()
    assert dense_values.tolist() == sparse_values.tolist()
    assert merge_counts(index, folds).ids.tolist() == dense_ids.tolist()


def test_damaged_stored_bucket_is_a_clear_error() -> None:
    with pytest.raises(StoredFormatError):
        decode(PathIndex(), b"not a bucket")


def test_cap_keeps_the_largest_stacks_and_counts_the_rest_under_other() -> None:
    rows = [((i % 8, (i + 1) % 8), 100 - i, 0) for i in range(8)] + [((0, 1, 2, 3), 1, 0), ((4, 5, 6), 2, 0)]
    profile = build(rows)
    index = PathIndex()
    full = fold_profile(index, profile)
    assert len(full.ids) == 10 and full.capped == 0
    capped = cap(index, full, 5)
    assert len(capped.ids) == 5 and capped.capped == 6
    tree = prune_paths(path_tree(index, capped, WALL), 10**6)
    assert tree.total == build_tree(profile, WALL).total
    other = tree.children[CAPPED_FRAME]
    assert other.total == other.self_value == sum(100 - i for i in range(4, 8)) + 1 + 2
    assert {child.frame for child in tree.children.values()} >= {FRAMES[0], FRAMES[1], FRAMES[2], FRAMES[3]}
    again = cap(index, merge_counts(index, [capped, fold_profile(index, profile, max_paths=5)]), 5)
    assert len(again.ids) == 5 and again.capped == 12
    assert prune_paths(path_tree(index, again, WALL), 10**6).total == 2 * tree.total


T0_NS = 1_700_000_000 * 10**9 // HOUR_NS * HOUR_NS  # an hour boundary, long past


class Service:
    """A real app on a data folder, fed through POST /api/v1/ingest as agents feed it."""

    #: Every app made by a Service in the running test (shut down after it: see ``shut_services``).
    apps: List[Flask] = []

    def __init__(self, data_dir: Path) -> None:
        self.settings = {"data_dir": str(data_dir), "admin_token": "t"}
        self.app = create_app(self.settings)
        Service.apps.append(self.app)
        created = self.app.test_client().post("/api/v1/groups", json={"name": "svc"}, headers=_auth("t"))
        self.key = created.get_json()["ingest_key"]

    def restart(self) -> Flask:
        """A new app on the same storage (as after a restart, or another server process)."""
        self.app = create_app(self.settings)
        Service.apps.append(self.app)
        return self.app

    def ingest(self, profile: Profile) -> None:
        response = self.post(profile)
        assert response.status_code == 202, response.data
        self.drain()

    def post(self, profile: Profile) -> TestResponse:
        """POST ``profile`` (into this service's group) without waiting for the rollup worker."""
        profile.group = "svc"
        body = greenflame_json.dumps(profile)
        return self.app.test_client().post(
            "/api/v1/ingest", data=body, headers=_auth(self.key), content_type="application/json"
        )

    def drain(self) -> None:
        """Wait for the rollup worker (no job outlives the test and its data folder)."""
        with self.app.app_context():
            assert get_rollups(get_storage()).worker.drain(60)

    def flamegraph(self, start_ns: int, end_ns: int, sample_type: str = CPU) -> Dict[str, Any]:
        query = {"from": str(start_ns // 10**9), "to": str(end_ns // 10**9), "type": sample_type, "max_nodes": "100000"}
        headers = {**_auth("t"), "Cache-Control": "no-cache"}  # this answer, not the last one (server/timely.py)
        response = self.app.test_client().get("/api/v1/groups/svc/flamegraph", query_string=query, headers=headers)
        assert response.status_code == 200, response.data
        self.drain()
        tree: Dict[str, Any] = response.get_json()["flamegraph"]
        return tree


@pytest.fixture(autouse=True)
def shut_services() -> Iterator[None]:
    """No app of a test analyses on after it (or at the interpreter's exit)."""
    yield
    while Service.apps:
        shut_down(Service.apps.pop(), 10)


def count_body_reads(monkeypatch: pytest.MonkeyPatch) -> List[str]:
    """The ids of the stored bodies read from here on (``Storage.load_profile`` still reads them)."""
    loaded: List[str] = []
    real_load = Storage.load_profile

    def counted(self: Storage, row: Any) -> Profile:
        loaded.append(row.id)
        return real_load(self, row)

    monkeypatch.setattr(Storage, "load_profile", counted)
    return loaded


def _blocked(worker: Worker) -> threading.Event:
    """Hold ``worker`` on a job until the returned event is set (30 s at most), one job queued behind."""
    release = threading.Event()
    threading.Timer(30, release.set).start()  # at worst: a failed test does not hold the worker
    for job, depth in ((release.wait, 0), (lambda: None, 1)):  # the first taken before the second is queued
        worker.submit(job)
        deadline = time.monotonic() + 10
        while worker.depth != depth and time.monotonic() < deadline:
            time.sleep(0.01)
    return release


def _auth(token: str) -> Dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def expected_json(profiles: List[Profile], sample_type: str = CPU) -> Dict[str, Any]:
    return flamegraph_view(merge(profiles, "svc"), sample_type, 100_000)


def random_profiles(count: int, seed: int) -> List[Profile]:
    rng = random.Random(seed)
    rows = [
        [
            (tuple(rng.randrange(len(FRAMES)) for _ in range(rng.randint(0, 6))), rng.randint(0, 9), rng.randint(0, 9))
            for _ in range(30)
        ]
        for _ in range(count)
    ]
    return [build(r, T0_NS + n * 300 * 10**9) for n, r in enumerate(rows)]


def test_ingest_folds_each_new_profile_and_the_range_tree_follows(tmp_path: Path) -> None:
    service = Service(tmp_path)
    profiles = random_profiles(14, seed=3)  # 12 in the first hour, 2 in the next
    end = T0_NS + 2 * HOUR_NS
    for n, profile in enumerate(profiles):
        service.ingest(profile)
        assert service.flamegraph(T0_NS, end) == expected_json(profiles[: n + 1])
    with service.app.app_context():
        rollups = get_rollups(get_storage())
        folded = [key for key in rollups.profiles._items]
        assert len(folded) == 14  # every profile folded once, at ingest
    assert service.flamegraph(T0_NS, end, WALL) == expected_json(profiles, WALL)


def test_after_a_restart_rollups_are_read_back_not_the_raw_profiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = Service(tmp_path)
    profiles = random_profiles(30, seed=5)  # hours 0 and 1 complete, hour 2 partial
    for profile in profiles:
        service.ingest(profile)
    stored = sorted(p.parent.name for p in (tmp_path / "profiles" / "rollups").rglob("*.bin"))
    assert stored.count("hour") == 3  # one rollup per hour, each written over as profiles arrive
    assert stored.count("5m") == 30  # one per 5-minute slot; none per profile
    assert len(stored) == 33
    service.restart()

    def no_raw_reads(self: Storage, row: object) -> Profile:
        raise AssertionError("a raw profile was read although its rollup is stored")

    monkeypatch.setattr(Storage, "load_profile", no_raw_reads)
    assert service.flamegraph(T0_NS, T0_NS + 3 * HOUR_NS) == expected_json(profiles)
    assert service.flamegraph(T0_NS + HOUR_NS // 2, T0_NS + 2 * HOUR_NS) == expected_json(
        profiles[5:24]
    )  # windows overlapping the range


def test_an_index_grown_past_its_bound_starts_afresh_and_results_stay_exact(tmp_path: Path) -> None:
    service = Service(tmp_path)
    profiles = random_profiles(4, seed=11)
    for profile in profiles[:2]:
        service.ingest(profile)
    end = T0_NS + HOUR_NS
    assert service.flamegraph(T0_NS, end) == expected_json(profiles[:2])
    with service.app.app_context():
        rollups = get_rollups(get_storage())
        rollups.max_index_paths = 5
        first = rollups.index("svc")
    for profile in profiles[2:]:
        service.ingest(profile)
    assert service.flamegraph(T0_NS, end) == expected_json(profiles)
    with service.app.app_context():
        assert get_rollups(get_storage()).index("svc") is not first


def test_a_restarted_server_reads_the_last_day_back_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recent = (time.time_ns() - 3 * HOUR_NS) // HOUR_NS * HOUR_NS
    profiles = [build(rows, recent + n * 600 * 10**9) for n, rows in enumerate([[((0, 1), 3, 2)]] * 9)]
    service = Service(tmp_path)
    for profile in profiles:
        service.ingest(profile)
    service.restart()
    service.drain()  # the start-up warm-up runs on the rollup worker
    with service.app.app_context():
        kept = get_rollups(get_storage()).buckets._items
        assert sum(width == HOUR_NS for _, width, _ in kept) == 2  # 9 ten-minute profiles: two hours

    def no_raw_reads(self: Storage, row: object) -> Profile:
        raise AssertionError("a raw profile was read although its rollup is stored")

    monkeypatch.setattr(Storage, "load_profile", no_raw_reads)
    assert service.flamegraph(recent, recent + 2 * HOUR_NS) == expected_json(profiles)


def test_a_range_cutting_a_slot_takes_the_few_profiles_off_its_sums(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Minute profiles: a range starting inside a 5-minute slot reads the slot's sums less the
    profiles before the range (folded again from their bodies), and nothing else raw."""
    rng = random.Random(7)
    rows = [
        [(tuple(rng.randrange(len(FRAMES)) for _ in range(4)), rng.randint(1, 9), rng.randint(0, 9))] for _ in range(20)
    ]
    profiles = [build(r, T0_NS + n * 60 * 10**9) for n, r in enumerate(rows)]
    for profile in profiles:
        profile.duration_ns = 60 * 10**9
    service = Service(tmp_path)
    for profile in profiles:
        service.ingest(profile)
    service.restart()
    loaded = count_body_reads(monkeypatch)
    start = T0_NS + 7 * 60 * 10**9 + 30 * 10**9  # inside slot 1 (minutes 5-9): minutes 7.5 on
    assert service.flamegraph(start, T0_NS + HOUR_NS) == expected_json(profiles[7:])
    assert len(loaded) == 2  # minutes 5 and 6, taken off slot 1's sums
    assert service.flamegraph(T0_NS, T0_NS + HOUR_NS) == expected_json(profiles)
    assert len(loaded) == 2


def test_ingest_folds_from_the_checked_document_without_reading_the_stored_body(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = Service(tmp_path)

    def no_raw_reads(self: Storage, row: object) -> Profile:
        raise AssertionError("a stored body was read back after ingest")

    monkeypatch.setattr(Storage, "load_profile", no_raw_reads)
    profiles = random_profiles(14, seed=9)
    for profile in profiles:
        service.ingest(profile)
    end = T0_NS + 2 * HOUR_NS
    assert service.flamegraph(T0_NS, end) == expected_json(profiles)
    assert service.flamegraph(T0_NS + HOUR_NS // 3, end, WALL) == expected_json(
        profiles[3:], WALL
    )  # the window ending at 20 min touches it
    with service.app.app_context():
        series = series_for(get_storage())
        rows = get_storage().find_profiles("svc")
        assert sum(bucket.profiles for bucket in series.buckets("svc", rows).values()) == 14


def test_a_queued_fold_is_used_though_the_fold_cache_let_it_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rollup queue deeper than the fold cache must not send each job back to the stored body."""
    monkeypatch.setattr(rollups_module, "PROFILE_CACHE_BYTES", 1)  # no fold is kept in the cache
    service = Service(tmp_path)
    loaded = count_body_reads(monkeypatch)
    profiles = random_profiles(14, seed=21)
    for profile in profiles:
        service.ingest(profile)
    with service.app.app_context():
        assert not get_rollups(get_storage()).profiles._items
    assert loaded == []  # the worker's jobs folded from what the requests handed them
    assert service.flamegraph(T0_NS, T0_NS + 2 * HOUR_NS) == expected_json(profiles)


def test_ingest_keeps_each_report_as_labelled_rows_for_the_window_merges(tmp_path: Path) -> None:
    service = Service(tmp_path)
    profiles = random_profiles(6, seed=13)
    for n, profile in enumerate(profiles):
        for sample in profile.samples:
            sample.labels = {"route": f"r{n % 2}"} if sample.values[0] % 2 else {}
        service.ingest(profile)
    with service.app.app_context():
        storage = get_storage()
        window = merges_for(storage).window("svc", storage.find_profiles("svc"))
        assert_same_merge(window.profile, merge(profiles, "svc"))
        assert labelled_for(storage).read == 0


def test_a_stopped_worker_runs_what_was_queued_and_its_thread_ends() -> None:
    ran: List[int] = []
    ticks: List[bool] = []
    worker = Worker("test-worker", tick=ticks.append, tick_s=0.05)
    for number in range(3):
        worker.submit(lambda number=number: ran.append(number))
    thread = next(t for t in threading.enumerate() if t.name == "test-worker")
    assert worker.stop(10)
    assert ran == [0, 1, 2] and True in ticks  # the forced tick of the drain ran too
    assert not thread.is_alive()
    count = len(ticks)
    time.sleep(0.2)
    assert len(ticks) == count  # no tick after the stop
    worker.submit(lambda: ran.append(3))  # a job after the stop starts the thread again
    assert worker.stop(10) and ran[-1] == 3


def test_wait_for_room_returns_once_the_worker_takes_jobs() -> None:
    worker = Worker("test-room")
    release = _blocked(worker)
    assert worker.wait_for_room(2, 0.0)  # one queued: room below two
    started = time.monotonic()
    assert not worker.wait_for_room(1, 0.2)
    assert time.monotonic() - started >= 0.2
    threading.Timer(0.1, release.set).start()
    assert worker.wait_for_room(1, 10)
    assert worker.stop(10)


def test_ingest_answers_503_and_stores_nothing_while_the_rollups_are_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_module, "ROOM_WAIT_S", 0.2)
    service = Service(tmp_path)
    service.app.config[SETTINGS_KEY] = replace(service.app.config[SETTINGS_KEY], rollup_queue_limit=1)
    with service.app.app_context():
        worker = get_rollups(get_storage()).worker
    release = _blocked(worker)  # one job waits behind the one running: the queue is at its limit
    profile = random_profiles(1, seed=4)[0]
    response = service.post(profile)
    assert response.status_code == 503, response.data
    assert response.get_json()["error"]["code"] == "behind"
    assert response.headers["Retry-After"] == str(ingest_module.RETRY_AFTER_S)
    with service.app.app_context():
        assert get_storage().find_profiles("svc") == []
    release.set()
    response = service.post(profile)
    assert response.status_code == 202, response.data
    service.drain()


def test_series_read_while_the_worker_is_behind_use_the_requests_folds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An analysis reading a bucket whose newest profiles the rollup worker has not added yet takes
    their folds from ingest instead of decoding their bodies, and the worker then adds none twice."""
    service = Service(tmp_path)
    with service.app.app_context():
        storage = get_storage()
        worker = get_rollups(storage).worker
    release = _blocked(worker)  # the worker is behind from here on
    profiles = random_profiles(3, seed=8)
    for profile in profiles:
        response = service.post(profile)
        assert response.status_code == 202, response.data
    rows = storage.find_profiles("svc")
    sums: Dict[int, BucketCounts] = {}
    for row in rows:  # what the bodies give, counted by hand
        sums.setdefault(row_bucket(row), BucketCounts()).add(profile_counts(storage.load_profile(row)))
    expected = {start: counts.to_dict() for start, counts in sums.items()}
    loaded = count_body_reads(monkeypatch)
    read = series_for(storage).buckets("svc", rows)
    assert loaded == [] and {start: counts.to_dict() for start, counts in read.items()} == expected
    release.set()
    service.drain()
    again = series_for(storage).buckets("svc", rows)
    assert {start: counts.to_dict() for start, counts in again.items()} == expected
    assert sum(counts.profiles for counts in again.values()) == 3 and loaded == []


def test_a_bucket_holding_newer_profiles_than_the_range_is_counted_from_folds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fleet keeps adding to the current bucket while an analysis reads the profiles it listed a
    moment before: that bucket is counted from the listed profiles' ingest folds, not their bodies."""
    service = Service(tmp_path)
    profiles = random_profiles(4, seed=12)
    recent_ns = time.time_ns() // HOUR_NS * HOUR_NS - HOUR_NS  # within the raw span: retention leaves it
    for n, profile in enumerate(profiles):  # all four in one 5-minute bucket
        profile.start_time_unix_ns, profile.duration_ns = recent_ns + n * 10**9, 60 * 10**9
        service.ingest(profile)
    with service.app.app_context():
        storage = get_storage()
    rows = sorted(storage.find_profiles("svc"), key=lambda row: row.start_time_unix_ns)[:3]
    expected = BucketCounts()
    for row in rows:
        expected.add(profile_counts(storage.load_profile(row)))
    loaded = count_body_reads(monkeypatch)
    [read] = series_for(storage).buckets("svc", rows).values()
    assert read.to_dict() == expected.to_dict() and read.profiles == 3
    # An analysis of the group up to now takes that last bucket as it stands, the newer profile in.
    [as_stored] = series_for(storage).buckets("svc", rows, open_end=True).values()
    assert as_stored.profiles == 4
    assert loaded == []


def test_profiles_arriving_while_the_worker_is_busy_are_summed_once_per_bucket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that fell behind adds everything that arrived meanwhile in one sum per bucket."""
    service = Service(tmp_path)
    with service.app.app_context():
        worker = get_rollups(get_storage()).worker
    release = _blocked(worker)
    profiles = random_profiles(6, seed=31)
    for n, profile in enumerate(profiles):  # all six in one 5-minute slot
        profile.start_time_unix_ns = T0_NS + n * 10**9
        assert service.post(profile).status_code == 202
    sums: List[int] = []
    real_merge = rollups_module.merge_counts

    def counted(index: PathIndex, parts: Sequence[callpaths.PathCounts]) -> callpaths.PathCounts:
        sums.append(len(parts))
        return real_merge(index, parts)

    monkeypatch.setattr(rollups_module, "merge_counts", counted)
    release.set()
    service.drain()
    assert sums == [6, 6]  # the 5-minute slot and the hour, each once
    assert service.flamegraph(T0_NS, T0_NS + HOUR_NS) == expected_json(profiles)


def test_a_profile_the_full_queue_drops_is_summed_when_read(tmp_path: Path) -> None:
    service = Service(tmp_path)
    with service.app.app_context():
        rollups = get_rollups(get_storage())
    assert rollups.worker.stop(10)
    rollups.worker = Worker("test-full", capacity=1, tick=rollups.seal_due)
    release = _blocked(rollups.worker)
    profiles = random_profiles(2, seed=32)
    for profile in profiles:
        assert service.post(profile).status_code == 202  # stored; its rollup job dropped
    assert rollups.worker.dropped == 2 and not rollups._arrivals
    release.set()
    assert service.flamegraph(T0_NS, T0_NS + HOUR_NS) == expected_json(profiles)


def test_due_writes_go_oldest_first_and_a_round_yields_to_waiting_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While reports wait for the worker, a tick writes for at most WRITE_BUDGET_S (at least one
    write); a drain writes everything. Buckets and series rows share one order: oldest change first."""
    service = Service(tmp_path)
    with service.app.app_context():
        storage = get_storage()
        rollups = get_rollups(storage)
    release = _blocked(rollups.worker)  # no tick of the worker's own meanwhile
    series = series_for(storage)
    written: List[Any] = []
    monkeypatch.setattr(rollups, "_seal", written.append)
    old = time.monotonic() - 2 * rollups_module.SEAL_DELAY_S
    series_rows = {("svc", 300): old + 1, ("svc", 600): old + 3}

    def write_row(key: Tuple[str, int]) -> None:
        written.append(key)
        del series_rows[key]

    monkeypatch.setattr(series, "write", write_row)
    monkeypatch.setattr(series, "due", lambda everything=False: [(since, key) for key, since in series_rows.items()])
    buckets = {("svc", HOUR_NS, 1): old + 2, ("svc", HOUR_NS, 0): old, ("svc", HOUR_NS, 2): time.monotonic()}
    rollups._dirty.update(buckets)
    monkeypatch.setattr(rollups_module, "WRITE_BUDGET_S", 0.0)
    rollups._seal_due(False)  # a tick's writes (retention's pass left out)
    assert written == [("svc", HOUR_NS, 0)]  # one write a tick, the oldest
    rollups._seal_due(False)
    rollups._seal_due(False)
    assert written[1:] == [("svc", 300), ("svc", HOUR_NS, 1)]
    rollups._dirty[("svc", HOUR_NS, 3)] = old + 4
    with monkeypatch.context() as idle:
        idle.setattr(rollups, "worker", SimpleNamespace(depth=0))  # no report waits: no budget
        rollups._seal_due(False)
    assert written[3:] == [("svc", 600), ("svc", HOUR_NS, 3)]  # all that is due, not the rest
    release.set()
    service.drain()  # everything, the bucket not yet due too
    assert written[5:] == [("svc", HOUR_NS, 2)] and not rollups._dirty and not series_rows


def test_a_profile_that_fails_to_add_leaves_the_others_of_its_take_added(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = Service(tmp_path)
    with service.app.app_context():
        rollups = get_rollups(get_storage())
    profiles = random_profiles(4, seed=33)
    for n, profile in enumerate(profiles):  # one 5-minute slot
        profile.start_time_unix_ns = T0_NS + n * 10**9
    service.ingest(profiles[0])  # the slot's sums exist: the next ones are added to them
    release = _blocked(rollups.worker)
    for profile in profiles[1:]:
        assert service.post(profile).status_code == 202
    failing = next(iter(rollups._arrivals))
    real_counted = rollups_module.Rollups._counted

    def counted(self: Any, index: PathIndex, arrival: Any) -> callpaths.PathCounts:
        if arrival.row.id == failing:
            raise OSError("the disk went away")
        return real_counted(self, index, arrival)

    monkeypatch.setattr(rollups_module.Rollups, "_counted", counted)
    taken = threading.Event()
    rollups.worker.submit(taken.set)
    release.set()
    assert taken.wait(30)  # not a drain: its writes would sum the slot from the database's list
    [slot] = [latest for key, latest in rollups.buckets._items.items() if key[1] != HOUR_NS]
    assert len(slot.members) == 3 and failing not in slot.members
    monkeypatch.undo()
    assert service.flamegraph(T0_NS, T0_NS + HOUR_NS) == expected_json(profiles)  # summed on read
