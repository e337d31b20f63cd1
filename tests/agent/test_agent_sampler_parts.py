"""The thread engine's parts on their own, with fakes: the thread table, the label merge, the handler
buffer, the SIGPROF handler's work (called directly: no signal) and the engines."""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from types import FrameType
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
from support.gc_watch import collections_inside

from greenflame.agent import own_threads
from greenflame.agent.aggregator import Aggregator
from greenflame.agent.cpuprobe import CpuProbe
from greenflame.agent.drops import DropCounter
from greenflame.agent.engines import CallEngine, ThreadEngine
from greenflame.agent.handler_buffer import PENDING_LIMIT, HandlerBuffer
from greenflame.agent.idle import IdleClassifier
from greenflame.agent.label_merge import LabelMerger
from greenflame.agent.signal_handler import ThreadCapture, build_handler
from greenflame.agent.stacks import StackReader
from greenflame.agent.thread_table import ThreadTable, active_count
from greenflame.agent.trigger_policy import TriggerPolicy

MAIN = threading.main_thread().ident or 0
HERE = sys._getframe()


def frames_of(*idents: int) -> Dict[int, FrameType]:
    return {ident: HERE for ident in idents}


# -- the thread table ------------------------------------------------------------------------


#: A table's cap above any thread count a test run reaches: threads other tests left alive (an
#: in-process server's workers) must not crowd out the thread a test is about.
EVERY_THREAD = 100_000


def table(max_threads: int = 8, excluded: Optional[set] = None) -> Tuple[ThreadTable, Dict[str, int]]:
    dropped: Dict[str, int] = {}

    def count_drop(reason: str, count: int) -> None:
        dropped[reason] = dropped.get(reason, 0) + count

    return ThreadTable(max_threads, lambda: set(excluded or ()), count_drop), dropped


def test_an_agent_thread_started_after_a_refresh_is_never_selected_and_the_table_looks_again() -> None:
    threads, _ = table()
    threads.refresh(sys._current_frames(), 0, active=active_count(), own=set())
    seen: List[Optional[FrameType]] = []
    release = threading.Event()

    def body() -> None:
        # Its first step: the thread must already count as the agent's (a sample may come now).
        seen.append(sys._current_frames().get(threading.get_ident()))
        selected.extend(ident for ident, _ in threads.select(sys._current_frames()))
        release.wait(5)

    selected: List[int] = []
    worker = threading.Thread(target=body, name="greenflame-test-own")
    own_threads.start(worker)
    try:
        assert threads.due(sys._current_frames(), 0)  # the table refreshes at its next look
        assert worker.ident not in [ident for ident, _ in threads.select(sys._current_frames())]
    finally:
        release.set()
        worker.join(5)
    assert seen and worker.ident not in selected


def test_the_main_thread_is_alone_when_every_other_thread_is_the_agents() -> None:
    threads, _ = table(excluded={101})
    threads.refresh(frames_of(MAIN, 101, 102), 0, active=3, own={102})
    assert threads.solo_active == 3 and threads.main_ident == MAIN and threads.count == 3
    threads.refresh(frames_of(MAIN, 101, 102, 103), 0, active=4, own={102})
    assert threads.solo_active == -1  # 103 is the program's
    threads.refresh(frames_of(MAIN), 0, active=-1, own=set())
    assert threads.solo_active == -1  # no threading table to watch: never alone


def test_the_table_is_refreshed_when_asked_each_second_or_when_the_count_changes() -> None:
    threads, _ = table()
    assert threads.due(frames_of(MAIN), 0)  # never refreshed
    threads.refresh(frames_of(MAIN), 5_000_000_000, active=1, own=set())
    assert not threads.due(frames_of(MAIN), 5_999_999_999)
    assert threads.due(frames_of(MAIN), 6_000_000_000)
    assert threads.due(frames_of(MAIN, 7), 5_000_000_001)
    threads.refresh_wanted = True
    assert threads.due(frames_of(MAIN), 5_000_000_001)
    threads.refresh(frames_of(MAIN), 5_000_000_001, active=1, own=set())
    assert not threads.refresh_wanted
    threads.invalidate()
    assert threads.count == -1 and threads.due(frames_of(MAIN), 5_000_000_002)


def test_select_skips_the_agents_threads_and_rotates_over_the_rest() -> None:
    threads, dropped = table(max_threads=2, excluded={9})
    threads.refresh(frames_of(1, 2, 3, 9), 0, active=4, own=set())
    firsts = set()
    for _ in range(3):
        chosen = [ident for ident, _ in threads.select(frames_of(1, 2, 3, 9))]
        assert len(chosen) == 2 and 9 not in chosen
        firsts.add(chosen[0])
    assert firsts == {1, 2, 3}  # none starved
    assert dropped == {"max_threads": 3}
    assert [ident for ident, _ in threads.select(frames_of(1, 9))] == [1]


def test_active_count_is_threadings_table_length() -> None:
    assert active_count() == len(threading._active)  # type: ignore[attr-defined]


# -- the label merge ---------------------------------------------------------------------------


class FakeTask:
    def __init__(self, name: str) -> None:
        self._name = name

    def get_name(self) -> str:
        return self._name


def test_automatic_labels_are_added_unless_the_program_set_them() -> None:
    merger = LabelMerger(auto_labels=True)
    merger.rename({1: "worker-1"})
    assert merger.labels_of(1, (), None) == (("thread", "worker-1"),)
    assert merger.labels_of(1, (("thread", "mine"),), None) == (("thread", "mine"),)
    assert merger.labels_of(2, (("a", "b"),), None) == (("a", "b"),)  # no name known
    task = merger.labels_of(1, (("a", "b"),), FakeTask("fetch"))
    assert task == (("a", "b"), ("asyncio_task", "fetch"), ("thread", "worker-1"))
    assert LabelMerger(auto_labels=False).labels_of(1, (("a", "b"),), FakeTask("fetch")) == (("a", "b"),)


def test_a_threads_merged_labels_are_cached_until_its_set_or_name_changes() -> None:
    merger = LabelMerger(auto_labels=True)
    merger.rename({1: "one"})
    raw = (("a", "b"),)
    first = merger.labels_of(1, raw, None)
    assert merger.labels_of(1, raw, None) is first
    assert merger.labels_of(1, (("a", "c"),), None) == (("a", "c"), ("thread", "one"))
    merger.rename({1: "uno"})
    assert merger.labels_of(1, raw, None) == (("a", "b"), ("thread", "uno"))


# -- the handler buffer -------------------------------------------------------------------------


def code_list() -> List[Any]:
    """Code objects of this call, leaf first, as the handler records them."""
    codes = []
    frame: Optional[FrameType] = sys._getframe()
    while frame is not None:
        codes.append(frame.f_code)
        frame = frame.f_back
    return codes


def buffer() -> Tuple[HandlerBuffer, Aggregator, DropCounter]:
    drops = DropCounter()
    aggregator = Aggregator(100, drops)
    merger = LabelMerger(auto_labels=False)
    return HandlerBuffer(aggregator, StackReader(64), merger, IdleClassifier(), threading.Lock()), aggregator, drops


def test_the_handlers_samples_are_aggregated_in_a_batch_in_the_order_taken() -> None:
    handler_buffer, aggregator, _ = buffer()
    codes = code_list()
    record = (MAIN, codes, 1, codes[0], 0, (("k", "v"),), None)
    handler_buffer.pending.extend([(1.0, [record], 1), (2.0, [record], 1), (3.0, [record, record], 1)])
    seen: List[Tuple[float, int]] = []
    assert handler_buffer.samples() == 3
    handler_buffer.process(lambda taken_at, weight: seen.append((taken_at, weight)))
    assert seen == [(1.0, 1), (2.0, 1), (3.0, 1)] and handler_buffer.taken == 3 and not handler_buffer.pending
    report = aggregator.drain("g", 10_000_000, {})
    assert [s["values"] for s in report["samples"]] == [[4, 4, 0]]  # one stack, counted once per thread
    assert report["samples"][0]["labels"] == {"k": "v"}
    names = [report["frames"][i]["function"] for i in report["samples"][0]["stack"]]
    assert names[-1] == "code_list"  # root first


def test_a_late_wall_clock_sample_counts_for_every_due_time_it_stands_for() -> None:
    handler_buffer, aggregator, _ = buffer()
    codes = code_list()
    record = (MAIN, codes, 1, codes[0], 0, (), None)
    handler_buffer.pending.extend([(1.0, [record], 3), (2.0, [record], 0)])  # the handler's, the thread's
    assert handler_buffer.samples() == 3
    seen: List[Tuple[float, int]] = []
    handler_buffer.process(lambda taken_at, weight: seen.append((taken_at, weight)))
    assert seen == [(1.0, 3)] and handler_buffer.taken == 3
    assert [s["values"] for s in aggregator.drain("g", 10_000_000, {})["samples"]] == [[4, 4, 0]]


def _sleep_site() -> Tuple[Any, int]:
    """The code object and instruction offset of a thread caught inside ``time.sleep``."""
    stop = threading.Event()

    def nap_often() -> None:
        while not stop.is_set():
            time.sleep(0.002)

    napper = threading.Thread(target=nap_often, daemon=True)
    napper.start()
    try:
        for _ in range(500):
            frame = sys._current_frames().get(napper.ident or 0)
            if frame is not None and frame.f_code is nap_often.__code__:
                return frame.f_code, frame.f_lasti
            time.sleep(0.001)
    finally:
        stop.set()
        napper.join(5)
    raise AssertionError("the napping thread was never seen in its loop")


def test_a_record_on_an_idle_call_is_idle_never_cpu_and_the_threads_own_are_not_the_handlers() -> None:
    handler_buffer, aggregator, _ = buffer()
    leaf, offset = _sleep_site()
    # The thread's CPU clock moved since its previous sample (cpu 1): CPU used before the sleep.
    record = (MAIN, [leaf], 1, leaf, offset, (), None)
    handler_buffer.pending.extend([(1.0, [record], False), (2.0, [record], False)])
    seen: List[float] = []
    assert handler_buffer.samples() == 0
    handler_buffer.process(seen.append)
    assert seen == [] and handler_buffer.taken == 0 and not handler_buffer.pending
    report = aggregator.drain("g", 10_000_000, {})
    assert [s["values"] for s in report["samples"]] == [[2, 0, 2]]  # wall, cpu, idle


def test_drops_are_counted_without_a_lock_and_moved_to_the_counter_at_the_look() -> None:
    handler_buffer, _, drops = buffer()
    handler_buffer.count_drop("signal_backlog", 1)
    handler_buffer.count_drop("signal_backlog", 2)
    handler_buffer.count_drop("max_threads", 0)
    handler_buffer.flush_drops(drops)
    assert drops.take() == {"signal_backlog": 3}
    handler_buffer.flush_drops(drops)
    assert drops.take() == {}


# -- the SIGPROF handler's work, called directly -------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def handler_parts(solo: bool = True) -> Tuple[Any, TriggerPolicy, ThreadTable, HandlerBuffer, List[Any], Clock]:
    clock = Clock()
    policy = TriggerPolicy(0.01, lambda: 0.5)
    policy.start(clock())
    threads, _ = table()
    threads.refresh(frames_of(threading.get_ident()), 0, active=active_count(), own=set())
    if not solo:
        threads.solo_active = -1
    handler_buffer, _, _ = buffer()
    captured: List[Any] = []

    def capture(now: float, frame: Optional[FrameType]) -> None:
        captured.append((now, frame))

    handler = build_handler(policy, threads, handler_buffer, capture, clock)
    return handler, policy, threads, handler_buffer, captured, clock


def test_the_handler_waits_for_the_due_time_and_the_thread_table() -> None:
    handler, policy, threads, handler_buffer, captured, clock = handler_parts()
    # Outside the signal mode the handler looks again every handler_step, for samples the thread owes it.
    assert handler(sys._getframe()) == pytest.approx(min(policy.due - clock(), policy.handler_step))
    threads.invalidate()
    clock.now = policy.due
    assert handler(sys._getframe()) == 0.0
    assert not handler_buffer.pending and not captured


def test_the_handler_samples_a_lone_main_thread_itself_and_schedules_the_next() -> None:
    handler, policy, _, handler_buffer, captured, clock = handler_parts()
    clock.now = due = policy.due
    delay = handler(sys._getframe())
    assert policy.due == pytest.approx(due + 0.01) and delay == pytest.approx(min(0.01, policy.handler_step))
    assert not captured
    [(taken_at, [record], by_handler)] = list(handler_buffer.pending)
    assert by_handler
    assert taken_at == due and record[0] == threading.get_ident() and record[2] == 1
    assert record[1][0] is sys._getframe().f_code  # leaf first


def test_a_full_buffer_drops_the_sample_but_keeps_the_schedule() -> None:
    handler, policy, _, handler_buffer, _, clock = handler_parts()
    handler_buffer.pending.extend([(0.0, [], True)] * PENDING_LIMIT)
    clock.now = due = policy.due
    handler(sys._getframe())
    drops = DropCounter()
    handler_buffer.flush_drops(drops)
    assert drops.take() == {"signal_backlog": 1} and len(handler_buffer.pending) == PENDING_LIMIT
    assert policy.due == pytest.approx(due + 0.01)


def test_other_threads_or_no_frame_leave_the_sample_to_capture() -> None:
    handler, policy, _, handler_buffer, captured, clock = handler_parts(solo=False)
    clock.now = policy.due
    handler(sys._getframe())
    handler, policy, _, handler_buffer, captured_alone, clock = handler_parts(solo=True)
    clock.now = policy.due
    handler(None)
    assert [now for now, _ in captured] == [clock()] and captured_alone == [(clock(), None)]
    assert not handler_buffer.pending


@contextmanager
def capture_beside_a_waiting_thread(
    lock: threading.Lock,
) -> Iterator[Tuple[ThreadCapture, TriggerPolicy, HandlerBuffer, int]]:
    """A handler's capture (its policy started at 100 s, its thread table refreshed) while another
    thread waits; yields the capture, its policy and buffer, and the other thread's identifier."""
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, args=(10,), daemon=True)
    other.start()
    try:
        policy = TriggerPolicy(0.01, lambda: 0.5)
        policy.start(100.0)
        threads, _ = table(max_threads=EVERY_THREAD)
        threads.refresh(sys._current_frames(), 0, active=active_count(), own=set())
        handler_buffer, _, _ = buffer()
        capture = ThreadCapture(policy, threads, handler_buffer, CpuProbe(), lock)
        assert other.ident is not None
        yield capture, policy, handler_buffer, other.ident
    finally:
        stop.set()
        other.join(5)


def test_the_capture_records_every_thread_but_the_agents_unless_the_sampler_holds_the_lock() -> None:
    lock = threading.Lock()
    with capture_beside_a_waiting_thread(lock) as (capture, policy, handler_buffer, other):
        with lock:
            capture.record(policy.due, sys._getframe())
        assert not handler_buffer.pending and policy.due == pytest.approx(100.01)  # the sampler is busy
        capture.record(policy.due, sys._getframe())
    [(taken_at, records, by_handler)] = list(handler_buffer.pending)
    assert by_handler
    assert taken_at == pytest.approx(100.01) and policy.due == pytest.approx(100.02)
    by_ident = {record[0]: record for record in records}
    assert other in by_ident and by_ident[threading.get_ident()][2] == 1  # the handler's thread runs
    assert by_ident[threading.get_ident()][1][0] is sys._getframe().f_code


class Garbage:
    """An object the collector counts (lists and dicts come from free lists, which it does not count)."""


@pytest.mark.skipif(sys.version_info < (3, 11), reason="frame objects are made on demand since CPython 3.11")
def test_no_collection_runs_while_the_handler_reads_other_threads_frames() -> None:
    # See greenflame.agent.frame_guard: the handler reads the other threads' frames with the collector paused.
    kept: List[Garbage] = []
    waiting = capture_beside_a_waiting_thread(threading.Lock())
    with waiting as (capture, policy, handler_buffer, _), collections_inside({"_record_locked"}) as seen:
        for _ in range(200):
            capture.record(policy.due, sys._getframe())
            handler_buffer.pending.clear()
            kept.append(Garbage())  # the collector runs between records (a freed object uncounts itself)
    assert seen.total >= 20 and seen.inside == []


# -- the engines ---------------------------------------------------------------------------------


class FakeSampler:
    def __init__(self) -> None:
        self.taken = 0
        self.native_id = 42
        self.probe = type("Probe", (), {"name": "fake-probe"})()

        self.clock: Optional[str] = None
        self.late = 0.0

    def signal_stats(self) -> Dict[str, int]:
        return {"calls": self.taken, "cpu_ns": 0, "samples": self.taken}

    def take_signal_clock(self) -> Optional[str]:
        return self.clock

    def wake_cost(self) -> Tuple[int, int]:
        return 31_000, 7

    def take_lateness(self) -> float:
        late, self.late = self.late, 0.0
        return late


def test_the_thread_engine_reports_the_handlers_samples_since_the_last_report() -> None:
    sampler = FakeSampler()
    engine = ThreadEngine(sampler)  # type: ignore[arg-type]
    assert engine.name == "thread" and engine.cpu_source == "fake-probe" and engine.call_profiler is None
    sampler.taken = 5
    assert engine.report_metadata() == {"signal_samples": 5}
    sampler.taken, sampler.clock = 12, "wall"
    wall = {"signal_samples": 7, "signal_clock": "wall", "signal_wake_ns": 31_000, "signal_wakes_measured": 7}
    assert engine.report_metadata() == wall
    assert engine.native_ids() == [42]
    sampler.late = 41.2345
    assert engine.report_metadata()["skipped_hz"] == 41.234
    assert "skipped_hz" not in engine.report_metadata()


def test_the_call_engine_has_no_thread_and_reports_its_rate_and_share() -> None:
    calls = type("Calls", (), {"rate_hz": 250.0, "share": 0.1})()
    engine = CallEngine(calls)
    assert engine.name == "pyinstrument" and engine.cpu_source == "call-cputime"
    assert not engine.is_alive()
    engine.start()
    assert engine.is_alive()
    engine.stop(1.0)
    assert not engine.is_alive()
    assert engine.report_metadata() == {"sample_rate_hz": 250.0, "call_share": 0.1}
    assert engine.signal_stats() == {"calls": 0, "cpu_ns": 0, "samples": 0} and engine.native_ids() == []


def test_an_agent_thread_that_ended_leaves_its_identifier_to_the_programs_next_thread() -> None:
    # Thread identifiers are reused: a program thread that gets an ended agent thread's must be sampled.
    finished = threading.Thread(target=lambda: None, name="greenflame-test-own")
    own_threads.start(finished)
    finished.join(5)
    assert finished.ident not in own_threads.registered()
    release = threading.Event()
    program = threading.Thread(target=release.wait, args=(5,))
    program.start()
    try:
        threads, _ = table(max_threads=EVERY_THREAD, excluded=own_threads.idents())
        threads.refresh(sys._current_frames(), 0, active=active_count(), own=own_threads.registered())
        assert program.ident in [ident for ident, _ in threads.select(sys._current_frames())]
    finally:
        release.set()
        program.join(5)
