"""The analysis pipeline's parts: finding states, leases, anomaly ids, the scheduler, channels, the spec merge."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from support.builders import finding as build_finding
from support.builders import lambda_profile

from greenflame.analyzer.anomalies import Anomaly
from greenflame.analyzer.finding_state import ResolvePolicy
from greenflame.analyzer.rules.finding import Finding
from greenflame.analyzer.timeseries import TOTAL
from greenflame.server.pipeline import Pipeline, PipelineConfig, anomaly_subject
from greenflame.server.pipeline_channels import public_channels, validate_channels
from greenflame.server.pipeline_findings import changed_to, next_states
from greenflame.server.pipeline_openapi import merge_into
from greenflame.server.pipeline_store import PipelineStore
from greenflame.server.pipeline_worker import Scheduler
from greenflame.server.storage import Storage
from greenflame.server.tickets.config import ChannelConfigError
from greenflame.server.tickets.models import fingerprint_key
from greenflame.server.tickets.store import TicketStore
from greenflame.server.tickets.subject import TicketSubject

GROUP = "orders"


@pytest.fixture()
def storage(tmp_path: Path) -> Storage:
    opened = Storage.open(f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "blobs"))
    opened.create_group(GROUP)
    return opened


def finding(fingerprint: str, cost: float = 1.0) -> Finding:
    return build_finding(fingerprint, rule="r", cost=cost, title=f"finding {fingerprint}")


# -- finding states --------------------------------------------------------------


def test_states_go_new_ongoing_resolved_reopened() -> None:
    quick = ResolvePolicy(min_missed=1, min_quiet_s=0)
    first = next_states(GROUP, [], [finding("a")], 100, policy=quick)
    assert [(s.state, s.first_seen_unix_ns, s.last_seen_unix_ns) for s in first] == [("new", 100 * 10**9, 100 * 10**9)]
    assert first[0].key == fingerprint_key(GROUP, "a") and first[0].title == "finding a"
    second = next_states(GROUP, first, [finding("a", 2.0), finding("b")], 200, policy=quick)
    assert {s.fingerprint: s.state for s in second} == {"a": "ongoing", "b": "new"}
    assert second[0].first_seen_unix_ns == 100 * 10**9 and second[0].finding.cost_usd_per_month == 2.0
    assert changed_to(first, second, ("new",)) == 1
    third = next_states(GROUP, second, [finding("b")], 300, policy=quick)
    assert {s.fingerprint: (s.state, s.resolved_unix_ns) for s in third} == {
        "a": ("resolved", 300 * 10**9),
        "b": ("ongoing", None),
    }
    assert third[0].finding.cost_usd_per_month == 2.0  # the last numbers stay with a resolved finding
    back = next_states(GROUP, third, [finding("a"), finding("b")], 400, policy=quick)
    assert {s.fingerprint: s.state for s in back} == {"a": "reopened", "b": "ongoing"}
    assert back[0].first_seen_unix_ns == 100 * 10**9 and back[0].resolved_unix_ns is None


def test_by_default_one_quiet_analysis_does_not_resolve() -> None:
    states = next_states(GROUP, [], [finding("a")], 0)
    for minutes in (10, 30, 61):
        states = next_states(GROUP, states, [], minutes * 60.0)
        assert [s.state for s in states] == ["resolved" if minutes == 61 else "ongoing"]


def test_findings_without_fingerprint_are_ignored() -> None:
    assert next_states(GROUP, [], [finding("")], 1) == []
    (kept,) = next_states(GROUP, [], [finding(""), finding("a")], 1)
    assert kept.fingerprint == "a"


# -- leases -------------------------------------------------------------------------


def test_one_lease_per_group_and_generations(storage: Storage) -> None:
    store = PipelineStore(storage.engine)
    lease = store.acquire(GROUP, "a", 60)
    assert lease is not None and store.acquire(GROUP, "b", 60) is None
    assert store.acquire("other", "b", 60) is not None  # groups are independent
    assert lease.is_current(store.generation(GROUP))  # no profiles, nothing analysed: current
    storage.add_profile(GROUP, lambda_profile(), None)
    generation = store.generation(GROUP)
    assert generation.count == 1 and not lease.is_current(generation)
    assert GROUP in store.stale_groups()
    assert store.release(lease, analysed_count=generation.count, analysed_received_ns=generation.received_ns)
    assert not store.release(lease)  # the token is spent
    again = store.acquire(GROUP, "b", 60)
    assert again is not None and again.is_current(store.generation(GROUP))
    assert GROUP not in store.stale_groups()
    store.invalidate(GROUP)  # a forced run is pending even without new data
    store.release(again)
    forced = store.acquire(GROUP, "c", 60)
    assert forced is not None and not forced.is_current(store.generation(GROUP))


def test_an_expired_lease_can_be_taken_over(storage: Storage) -> None:
    store = PipelineStore(storage.engine)
    stale = store.acquire(GROUP, "crashed", 0.0)
    assert stale is not None
    time.sleep(0.01)  # lets the zero-length lease expire; the assertion does not depend on duration
    taken = store.acquire(GROUP, "b", 60)
    assert taken is not None and not store.extend(stale, 60) and not store.release(stale)


# -- anomalies keep their ids -------------------------------------------------------


def anomaly(frame: str, start: int, end: Optional[int] = None) -> Anomaly:
    return Anomaly(GROUP, frame, "inclusive_share", start, end, start, 9.0, "up", 0.1, 0.3, f"{frame} moved", ["lib.x"])


def test_anomaly_ids_survive_reruns_and_votes_are_kept(storage: Storage) -> None:
    store = PipelineStore(storage.engine)
    (first,) = store.replace_anomalies(GROUP, [anomaly("app.parse", 1000)])
    (again,) = store.replace_anomalies(GROUP, [anomaly("app.parse", 1010, 2000)])
    assert again.id == first.id and again.anomaly.end_unix_s == 2000
    assert again.anomaly == anomaly("app.parse", 1010, 2000)  # the typed anomaly back from its row
    store.add_vote(again, useful=False)
    (other,) = store.replace_anomalies(GROUP, [anomaly("app.query", 5000)])
    assert other.id != first.id
    assert [a.id for a in store.anomalies(GROUP)] == [other.id]
    old = store.anomaly(first.id)
    assert old is not None and not old.current
    (vote,) = store.votes(GROUP)
    assert (vote.frame, vote.related_frames, vote.useful) == ("app.parse", ("lib.x",), False)
    assert store.vote_counts(GROUP) == {first.id: {"useful": 0, "not_useful": 1}}


def test_an_anomaly_makes_the_ticket_its_finding_shaped_json_made(storage: Storage) -> None:
    """The typed anomaly subject equals what the ticket sync read from the anomaly's finding-shaped dict."""
    store = PipelineStore(storage.engine)
    total = Anomaly(GROUP, TOTAL, "cpu_samples", 1000, None, 1300, 7.0, "up", 90, 300, "more samples")
    both = store.replace_anomalies(GROUP, [anomaly("app.parse", 1000), total])
    assert len(both) == 2
    for stored in both:
        found = stored.anomaly
        on_share = found.metric == "inclusive_share"
        shaped = {
            "rule": "anomaly",
            "title": f"{found.frame} regressed ({found.metric.replace('_', ' ')})",
            "summary": found.reason,
            "fix": "Compare the two time ranges in the flame graph to see what changed at the start of the anomaly.",
            "frames": [{"function": found.frame}],
            "share": found.observed if on_share else None,
            "expected_share": found.baseline if on_share else None,
            "cost_usd_per_month": None,
            "co2e_kg_per_month": None,
            "anomaly": found.to_dict(),
            "fingerprint": f"anomaly/{found.metric}/{found.frame}/{stored.id}",
        }
        subject = anomaly_subject(stored)
        assert subject == TicketSubject.from_mapping(shaped)
        assert (subject.share, subject.expected_share) == ((0.3, 0.1) if on_share else (None, None))


# -- the run ----------------------------------------------------------------------


def test_a_run_happens_only_for_new_data(storage: Storage) -> None:
    store = PipelineStore(storage.engine)
    pipeline = Pipeline(storage, store, TicketStore(storage.engine), PipelineConfig(), environ={})
    assert pipeline.run_group(GROUP) is None  # no profiles yet
    storage.add_profile(GROUP, lambda_profile(), None)
    summary = pipeline.run_group(GROUP)
    assert summary is not None and summary["error"] is None
    assert (summary["findings"], summary["new"], summary["profiles"]) == (1, 1, 1)
    assert [s.state for s in store.finding_states(GROUP)] == ["new"]
    assert pipeline.run_group(GROUP) is None
    assert len(store.runs(GROUP)) == 1
    for hours in (2, 3, 4):  # three quiet analyses, over an hour after it was last seen: resolved
        clean = lambda_profile(client_in_handler=False)
        clean.start_time_unix_ns += hours * 3600 * 10**9  # outside the one-hour window of the first
        storage.add_profile(GROUP, clean, None)
        assert pipeline.run_group(GROUP) is not None
        assert [s.state for s in store.finding_states(GROUP)] == ["resolved" if hours == 4 else "ongoing"]


def test_a_failing_run_is_recorded_and_releases_the_lease(storage: Storage, tmp_path: Path) -> None:
    store = PipelineStore(storage.engine)
    pipeline = Pipeline(storage, store, TicketStore(storage.engine), PipelineConfig(), environ={})
    storage.add_profile(GROUP, lambda_profile(), None)
    for blob in (tmp_path / "blobs").rglob("*.json.gz"):
        blob.write_bytes(b"not gzip")
    summary = pipeline.run_group(GROUP)
    assert summary is not None and "BadGzipFile" in summary["error"]
    state = store.state(GROUP)
    assert state is not None and state["last_error"] == summary["error"] and state["lease_owner"] is None


# -- the scheduler ------------------------------------------------------------------


class Recorder:
    def __init__(self, fail_on: str = "") -> None:
        self.groups: List[str] = []
        self.started = threading.Semaphore(0)
        self.ran = threading.Semaphore(0)
        self.gate = threading.Event()
        self.fail_on = fail_on

    def __call__(self, group: str) -> None:
        self.started.release()
        self.gate.wait(10)
        self.groups.append(group)
        self.ran.release()
        if group == self.fail_on:
            raise RuntimeError("boom")


def test_scheduler_coalesces_a_burst_and_survives_a_failing_run() -> None:
    recorder = Recorder(fail_on="bad")
    scheduler = Scheduler(recorder, delay_s=0.0)
    try:
        assert scheduler.notify("bad")
        assert recorder.started.acquire(timeout=10)  # "bad" runs, held at the gate
        for _ in range(5):
            scheduler.notify("a")  # while "bad" runs: one pending entry for "a"
        assert scheduler.pending == 1
        recorder.gate.set()
        assert recorder.ran.acquire(timeout=10) and recorder.ran.acquire(timeout=10)
        assert recorder.groups == ["bad", "a"]
    finally:
        scheduler.stop()


def test_scheduler_is_bounded() -> None:
    recorder = Recorder()
    scheduler = Scheduler(recorder, delay_s=3600.0, max_pending=2)
    try:
        assert scheduler.notify("a") and scheduler.notify("b") and scheduler.notify("a")
        assert not scheduler.notify("c")
        assert scheduler.dropped == 1 and scheduler.pending == 2
    finally:
        scheduler.stop()
    assert recorder.groups == []


def test_scheduler_runs_a_busy_group_once_per_interval_unless_asked_at_once() -> None:
    recorder = Recorder()
    recorder.gate.set()
    scheduler = Scheduler(recorder, delay_s=0.0, interval_s=3600.0)
    try:
        assert scheduler.notify("busy")
        assert recorder.ran.acquire(timeout=10)
        for _ in range(5):
            assert scheduler.notify("busy")  # more reports: one run, an interval after the last start
        assert scheduler.pending == 1
        assert not recorder.ran.acquire(timeout=0.2)
        assert scheduler.notify("quiet")  # another group is not held by the first one's interval
        assert recorder.ran.acquire(timeout=10) and recorder.groups == ["busy", "quiet"]
        assert scheduler.notify("busy", urgent=True)  # a vote: the delay only
        assert recorder.ran.acquire(timeout=10) and recorder.groups == ["busy", "quiet", "busy"]
        assert scheduler.pending == 0
    finally:
        scheduler.stop()


def test_scheduler_sweep_schedules_stale_groups() -> None:
    recorder = Recorder()
    recorder.gate.set()
    scheduler = Scheduler(recorder, delay_s=0.0, sweep=lambda: ["x", "y"], sweep_s=3600.0)
    try:
        scheduler.start()
        assert recorder.ran.acquire(timeout=10) and recorder.ran.acquire(timeout=10)
        assert sorted(recorder.groups) == ["x", "y"]
    finally:
        scheduler.stop()


# -- channels and the spec merge ------------------------------------------------------


def test_channels_are_checked_and_never_shown_with_their_token() -> None:
    body = {"channels": [{"to": "github:acme/shop", "token": "ghp_secret", "labels": ["perf"], "min_usd_per_month": 5}]}
    channels = validate_channels(body, environ={})
    assert channels[0]["token"] == "ghp_secret" and channels[0]["max_attempts"] == 5
    (shown,) = public_channels(channels, environ={})
    assert shown["token"] == "stored" and shown["channel"] == "github:acme/shop"
    assert "ghp_secret" not in repr(shown)
    from_env = public_channels(
        validate_channels({"channels": [{"to": "gitlab:1"}]}, environ={"GREENFLAME_GITLAB_TOKEN": "t"}),
        environ={"GREENFLAME_GITLAB_TOKEN": "t"},
    )
    assert from_env[0]["token"] == "environment"
    bad = [
        None,
        {"channels": "github:a/b"},
        {"channels": [{"to": "github:acme"}]},
        {"channels": [{"to": "github:a/b", "token": "t", "colour": "red"}]},
        {"channels": [{"to": "github:a/b", "token": "t", "min_usd_per_month": -1}]},
        {"channels": [{"to": "github:a/b", "token": "t", "max_attempts": 0}]},
        {"channels": [{"to": "github:a/b"}]},  # no credentials anywhere
        {"channels": [{"to": "github:a/b", "token": "t"}, {"to": "github:a/b", "token": "u"}]},
    ]
    for document in bad:
        with pytest.raises(ChannelConfigError):
            validate_channels(document, environ={})


def test_spec_merge_refuses_a_clash() -> None:
    spec: Dict[str, Any] = {"paths": {"/a": {}}, "components": {"schemas": {"X": {}}}}
    merge_into(spec, {"paths": {"/b": {}}, "components": {"schemas": {"Y": {}}}})
    assert set(spec["paths"]) == {"/a", "/b"} and set(spec["components"]["schemas"]) == {"X", "Y"}
    with pytest.raises(ValueError, match="X"):
        merge_into(spec, {"components": {"schemas": {"X": {}}}})


def _anomaly_at(frame: str, start: int, end: Optional[int], score: float) -> Anomaly:
    return Anomaly("g", frame, "inclusive_share", start, end, start + 300, score, "up", 0.05, 0.09, "")


def test_a_run_scoring_recent_points_keeps_earlier_anomalies_and_continues_open_ones() -> None:
    from greenflame.server.pipeline import _carried
    from greenflame.server.pipeline_store import StoredAnomaly

    score_from = 1_800_000_000
    ended = StoredAnomaly("a", "g", _anomaly_at("app.old", score_from - 7200, score_from - 3600, 9.0), True, 0, 0)
    ongoing = StoredAnomaly("b", "g", _anomaly_at("app.parse", score_from - 1800, None, 12.0), True, 0, 0)
    rescored = StoredAnomaly("c", "g", _anomaly_at("app.gone", score_from + 600, None, 7.0), True, 0, 0)
    found = [_anomaly_at("app.parse", score_from, None, 8.0), _anomaly_at("app.new", score_from + 900, None, 6.0)]
    out = _carried([ended, ongoing, rescored], found, score_from)
    assert [(a.frame, a.start_unix_s) for a in out] == [
        ("app.old", score_from - 7200),
        ("app.parse", score_from - 1800),  # continued: its start, detection and larger peak kept
        ("app.new", score_from + 900),
    ]
    assert out[1].score == 12.0 and out[1].end_unix_s is None and out[1].detected_unix_s == score_from - 1500
