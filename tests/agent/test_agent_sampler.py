"""The thread sampler on real threads: what it sees, CPU versus wall, bounds."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable, Dict, List, Tuple

import pytest
from support.gc_watch import collections_inside

from greenflame.agent import labels
from greenflame.agent.aggregator import Aggregator
from greenflame.agent.cpuprobe import ProcStatProbe, ThreadClockProbe, select_probe
from greenflame.agent.drops import DropCounter
from greenflame.agent.idle import IdleClassifier
from greenflame.agent.sampler import StackReader, ThreadSampler


def spin(seconds: float) -> int:
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


def spin_short() -> None:
    spin(0.01)


def spin_long() -> None:
    spin(0.03)


def nap(stop: threading.Event) -> None:
    while not stop.is_set():
        time.sleep(0.005)


def deep(n: int, stop: threading.Event) -> None:
    if n:
        deep(n - 1, stop)
    else:
        stop.wait(10)


def run_sampled(body: Callable[[], object], **options: Any) -> Tuple[Dict[str, Any], Dict[str, int]]:
    """Run ``body`` on this thread while a sampler runs; the drained report and the drop counts."""
    drops = DropCounter()
    aggregator = Aggregator(options.pop("max_stacks", 10_000), drops)
    options.setdefault("auto_labels", False)
    sampler = ThreadSampler(aggregator, drops, select_probe(), rate_hz=options.pop("rate_hz", 200), **options)
    sampler.start()
    try:
        body()
    finally:
        sampler.stop(5)
    return aggregator.drain("test", 5_000_000, {}), drops.take()


def function_totals(report: Dict[str, Any], column: int = 0) -> Dict[str, int]:
    """Inclusive value per function name."""
    totals: Dict[str, int] = {}
    for sample in report["samples"]:
        for name in {report["frames"][i]["function"] for i in sample["stack"]}:
            totals[name] = totals.get(name, 0) + sample["values"][column]
    return totals


def stacks_with(report: Dict[str, Any], function: str) -> List[Dict[str, Any]]:
    return [s for s in report["samples"] if any(report["frames"][i]["function"] == function for i in s["stack"])]


def test_a_busy_function_shows_up_with_its_caller_root_first() -> None:
    report, _ = run_sampled(lambda: spin(0.5))
    samples = stacks_with(report, "spin")
    assert sum(s["values"][0] for s in samples) >= 20
    names = [report["frames"][i]["function"] for i in samples[0]["stack"]]
    assert names.index("test_a_busy_function_shows_up_with_its_caller_root_first.<locals>.<lambda>") < names.index(
        "spin"
    )
    frame = next(report["frames"][i] for i in samples[0]["stack"] if report["frames"][i]["function"] == "spin")
    assert frame["file"] == __file__
    assert frame["line"] == spin.__code__.co_firstlineno


def test_the_split_between_two_functions_is_roughly_right() -> None:
    def alternate() -> None:
        for _ in range(25):
            spin_short()
            spin_long()

    report, _ = run_sampled(alternate)
    totals = function_totals(report)
    short, long = totals.get("spin_short", 0), totals.get("spin_long", 0)
    assert short + long >= 50
    # spin_long runs three times as long as spin_short: 75% of their samples expected.
    assert 0.6 <= long / (short + long) <= 0.9


def test_a_sleeping_thread_counts_wall_time_but_no_cpu() -> None:
    stop = threading.Event()
    sleeper = threading.Thread(target=nap, args=(stop,), daemon=True)
    sleeper.start()
    used: Dict[str, float] = {}

    def measured_spin() -> None:
        cpu, wall = time.thread_time(), time.perf_counter()
        spin(0.6)
        used["cpu_share"] = (time.thread_time() - cpu) / (time.perf_counter() - wall)

    try:
        report, _ = run_sampled(measured_spin)
    finally:
        stop.set()
        sleeper.join(5)
    nap_wall, nap_cpu = (sum(s["values"][i] for s in stacks_with(report, "nap")) for i in (0, 1))
    busy_wall, busy_cpu = (sum(s["values"][i] for s in stacks_with(report, "spin")) for i in (0, 1))
    assert nap_wall >= 20 and busy_wall >= 20
    assert nap_cpu <= 0.1 * nap_wall
    # The busy thread's CPU samples follow the CPU time it really got (less on a loaded machine).
    expected = used["cpu_share"] * busy_wall
    assert 0.6 * expected - 3 <= busy_cpu <= 1.4 * expected + 3, (busy_cpu, busy_wall, used)


def test_the_sampler_does_not_sample_itself() -> None:
    report, _ = run_sampled(lambda: spin(0.2))
    assert not stacks_with(report, "PeriodicWorker._run")
    assert not stacks_with(report, "ThreadSampler.sample")


def test_a_sampler_stopped_during_its_tick_still_leaves_its_own_thread_out() -> None:
    # stop() lets go of the thread at once and then waits for it; a tick it is in the middle of
    # refreshes the thread table and samples all threads, and must still know which one is its own.
    drops = DropCounter()
    aggregator = Aggregator(10_000, drops)
    sampler = ThreadSampler(aggregator, drops, select_probe(), rate_hz=200, auto_labels=False)
    sampler.start()
    own = sampler.ident
    time.sleep(0.05)
    sampler._tick_lock.acquire()  # its next tick waits inside the sample for the lock
    stopping = threading.Thread(target=sampler.stop, args=(5,))
    try:
        time.sleep(0.05)
        stopping.start()
        while sampler.ident is not None:
            time.sleep(0.001)
        assert own in sampler._worker.idents()  # asked to stop, still finishing its tick
        sampler._table.invalidate()  # the waiting sample looks at the threads anew
    finally:
        sampler._tick_lock.release()
    stopping.join(5)
    assert not sampler.is_alive() and not sampler._worker.idents()
    report = aggregator.drain("test", 5_000_000, {})
    assert report["samples"] and not stacks_with(report, "PeriodicWorker._run")


class _Cycle:
    """Garbage only the collector frees."""

    def __init__(self) -> None:
        self.me = self


def _make_garbage(stop: threading.Event) -> None:
    while not stop.is_set():
        _Cycle()
        time.sleep(0.0005)


#: The agent's functions that read other threads' frames.
FRAME_READERS = {"_read_threads", "_look_at_threads", "_record_locked", "_refresh", "_refresh_if_due"}


@pytest.mark.skipif(sys.version_info < (3, 11), reason="frame objects are made on demand since CPython 3.11")
@pytest.mark.parametrize("other_thread", [True, False], ids=["threads", "main-alone"])
def test_no_collection_runs_while_the_sampler_reads_other_threads_frames(other_thread: bool) -> None:
    # A collection inside the making of another thread's frame object can run finalizers that let
    # that thread return from the frame: the object then points at freed memory (a crash seen in
    # Lambda on 3.11; see greenflame.agent.frame_guard). The collector runs at nearly every
    # allocation here, so it would run inside the sampler's reads many times without the guard.
    stop = threading.Event()
    worker = threading.Thread(target=_make_garbage, args=(stop,), daemon=True)
    with collections_inside(FRAME_READERS) as seen:
        if other_thread:
            worker.start()
        try:
            report, _ = run_sampled(lambda: spin(0.5), rate_hz=200)
        finally:
            stop.set()
            if other_thread:
                worker.join(5)
    assert seen.total >= 100 and report["samples"]
    assert seen.inside == []


def test_deep_stacks_keep_the_root_side_and_are_marked() -> None:
    stop = threading.Event()
    thread = threading.Thread(target=deep, args=(200, stop), daemon=True)
    thread.start()
    try:
        report, _ = run_sampled(lambda: spin(0.2), max_depth=20)
    finally:
        stop.set()
        thread.join(5)
    truncated = [s for s in stacks_with(report, "[truncated]") if s in stacks_with(report, "deep")]
    assert truncated
    for sample in truncated:
        names = [report["frames"][i]["function"] for i in sample["stack"]]
        assert len(names) == 20
        assert names[0] == "Thread._bootstrap" and names[-1] == "[truncated]"
    assert all(len(s["stack"]) <= 20 for s in report["samples"])


def test_at_most_max_threads_per_tick_and_the_rest_counted() -> None:
    stop = threading.Event()
    threads = [threading.Thread(target=nap, args=(stop,), daemon=True) for _ in range(6)]
    for thread in threads:
        thread.start()
    try:
        report, drops = run_sampled(lambda: spin(0.3), max_threads=3)
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
    ticks = sum(s["values"][0] for s in report["samples"]) / 3
    assert drops["max_threads"] >= 4 * ticks - 1  # 7 threads sampled, 3 kept per tick
    assert stacks_with(report, "nap")  # rotation: the sleeping threads are not starved


def test_labels_go_on_the_samples_of_their_thread_only() -> None:
    stop = threading.Event()
    other = threading.Thread(target=nap, args=(stop,), daemon=True)
    other.start()

    def labelled() -> None:
        with labels(endpoint="/pay", attempt=2):
            spin(0.3)

    try:
        report, _ = run_sampled(labelled)
    finally:
        stop.set()
        other.join(5)
    assert all(s.get("labels") == {"endpoint": "/pay", "attempt": "2"} for s in stacks_with(report, "spin"))
    assert all("labels" not in s for s in stacks_with(report, "nap"))


def test_automatic_labels_name_the_thread() -> None:
    stop = threading.Event()
    other = threading.Thread(target=nap, args=(stop,), name="napper", daemon=True)
    other.start()
    try:
        report, _ = run_sampled(lambda: spin(0.2), auto_labels=True)
    finally:
        stop.set()
        other.join(5)
    assert {s["labels"]["thread"] for s in stacks_with(report, "nap")} == {"napper"}
    assert {s["labels"]["thread"] for s in stacks_with(report, "spin")} == {"MainThread"}


def test_cpu_probes_tell_a_busy_thread_from_a_sleeping_one() -> None:
    stop = threading.Event()
    sleeper = threading.Thread(target=stop.wait, args=(10,), daemon=True)
    busy = threading.Thread(target=lambda: spin(4.0), daemon=True)
    sleeper.start()
    busy.start()
    probes = [probe() for probe in (ThreadClockProbe, ProcStatProbe) if probe.available()]
    counts = {(p.name, who): 0 for p in probes for who in ("busy", "sleeper")}
    ticks = 0
    try:
        # Until every probe saw the busy thread on CPU 12 times: on a loaded machine the busy
        # thread is itself descheduled often, so the number of ticks this takes varies.
        while ticks < 300 and any(counts[p.name, "busy"] < 12 for p in probes):
            ticks += 1
            now = time.monotonic_ns()
            for probe in probes:
                counts[probe.name, "busy"] += probe.on_cpu(busy.native_id, now)
                counts[probe.name, "sleeper"] += probe.on_cpu(sleeper.native_id, now)
            time.sleep(0.01)
    finally:
        stop.set()
        sleeper.join(5)
        busy.join(5)
        for probe in probes:
            probe.close()
    assert probes, "no CPU probe available on this platform"
    for probe in probes:
        assert counts[probe.name, "busy"] >= 12, (ticks, counts)
        assert counts[probe.name, "sleeper"] <= max(4, ticks // 10), (ticks, counts)


def test_an_unchanged_stack_is_the_same_tuple_and_a_changed_one_is_read_again() -> None:
    stop = threading.Event()
    parked = threading.Thread(target=deep, args=(30, stop), daemon=True)
    parked.start()
    reader = StackReader(max_depth=128)
    try:
        time.sleep(0.05)
        first = reader.read(sys._current_frames()[parked.ident], parked.ident)  # type: ignore[index]
        second = reader.read(sys._current_frames()[parked.ident], parked.ident)  # type: ignore[index]
        assert second is first
        assert sum(1 for frame in first if frame[0].endswith("deep")) == 31
        here = reader.read(sys._current_frames()[threading.get_ident()], parked.ident)
        assert here != first and here[-1][0].endswith(
            "test_an_unchanged_stack_is_the_same_tuple_and_a_changed_one_is_read_again"
        )
    finally:
        stop.set()
        parked.join(5)


def test_idle_verdicts_are_cached_per_call_site() -> None:
    stop = threading.Event()
    sleeper = threading.Thread(target=deep, args=(0, stop), daemon=True)  # waits in Condition.wait
    sleeper.start()
    classifier = IdleClassifier()
    try:
        time.sleep(0.05)
        frame = sys._current_frames()[sleeper.ident]  # type: ignore[index]
        assert classifier.is_idle(frame) and classifier.is_idle(frame)
        assert not classifier.is_idle(sys._current_frames()[threading.get_ident()])
    finally:
        stop.set()
        sleeper.join(5)


def _nap() -> None:
    time.sleep(0.001)  # a hot call site: Python 3.11 specialises it (the call runs in PRECALL)


def _nap_often(stop: threading.Event) -> None:
    while not stop.is_set():
        _nap()  # calls warm the function up: then its call sites are specialised


def test_a_hot_call_site_to_a_builtin_is_still_idle() -> None:
    stop = threading.Event()
    napper = threading.Thread(target=_nap_often, args=(stop,), daemon=True)
    napper.start()
    classifier = IdleClassifier()
    offsets = set()
    try:
        time.sleep(0.2)  # a hundred calls and more: specialised by now
        for _ in range(20):
            frame = sys._current_frames()[napper.ident]  # type: ignore[index]
            if frame.f_code is _nap.__code__:
                offsets.add(frame.f_lasti)
                assert classifier.is_idle(frame), (frame.f_lasti, offsets)
            time.sleep(0.003)
    finally:
        stop.set()
        napper.join(5)
    assert offsets  # the thread was seen in the sleep at least once
