"""Timely reads: fresh when quick, the last answer (with its age) when late, never older than allowed."""

from __future__ import annotations

import gzip
import threading
from typing import Callable, List, Tuple

import pytest
from support.clocks import ManualClock

from greenflame.server.timely import Answer, TimelyReads, age_header

#: Real seconds a request waits in these tests before it takes a stale answer.
DEADLINE_S = 0.05


class Gate:
    """A computation that blocks until the test opens it, counting its runs."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.opened = threading.Event()
        self.started = threading.Event()
        self.runs = 0

    def __call__(self) -> bytes:
        self.runs += 1
        self.started.set()
        assert self.opened.wait(10), "the test never opened the gate"
        return self.body


def got(result: Tuple[Answer, float]) -> Tuple[bytes, float]:
    """The body and age of an answer."""
    answer, age = result
    return answer.body, age


@pytest.fixture()
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture()
def reads(clock: ManualClock) -> TimelyReads:
    made = TimelyReads(DEADLINE_S, max_stale_s=10, clock=clock)
    yield made
    made.close(wait=True)  # every gate is opened by its test: nothing runs on after it


def test_a_quick_answer_is_fresh(reads: TimelyReads) -> None:
    assert got(reads.answer("q", lambda: b"one")) == (b"one", 0.0)
    assert got(reads.answer("q", lambda: b"two")) == (b"two", 0.0)
    assert reads.stale_served == 0


def test_a_late_answer_gives_the_last_one_with_its_age(reads: TimelyReads, clock: ManualClock) -> None:
    reads.answer("q", lambda: b"old")
    clock.now += 3
    slow = Gate(b"new")
    body, age = got(reads.answer("q", slow))
    assert (body, age) == (b"old", 3.0) and reads.stale_served == 1
    assert age_header(age) == "3"
    # The computation goes on and its answer replaces the old one; a later request shares it.
    joined = got(reads.answer("q", lambda: b"never run"))
    assert joined[0] == b"old" and slow.runs == 1
    slow.opened.set()
    _wait_until(lambda: got(reads.answer("q", lambda: b"newer"))[0] != b"old")
    assert slow.runs == 1


def test_an_answer_older_than_allowed_is_never_served(reads: TimelyReads, clock: ManualClock) -> None:
    reads.answer("q", lambda: b"old")
    clock.now += 10.5
    slow = Gate(b"new")
    threading.Timer(3 * DEADLINE_S, slow.opened.set).start()
    assert got(reads.answer("q", slow))[0] == b"new"
    assert reads.stale_served == 0


def test_after_two_late_answers_the_request_does_not_wait(clock: ManualClock) -> None:
    reads = TimelyReads(deadline_s=3600, max_stale_s=10_000, clock=clock)  # waiting would outlast the gates

    def late(body: bytes) -> Callable[[], bytes]:
        def compute() -> bytes:
            clock.now += 4000  # this computation takes longer than the deadline
            return body

        return compute

    try:
        assert got(reads.answer("q", late(b"cold"))) == (b"cold", 0.0)  # nothing to serve instead: waited
        assert got(reads.answer("q", lambda: b"warm")) == (b"warm", 0.0)  # one late answer: still waits
        assert got(reads.answer("q", late(b"late 1")))[0] == b"late 1"
        assert got(reads.answer("q", late(b"late 2")))[0] == b"late 2"  # still waits: one late in a row
        slow = Gate(b"new")
        assert got(reads.answer("q", slow)) == (b"late 2", 4000.0)  # two in a row: at once, the gate closed
        slow.opened.set()
        _wait_until(lambda: not reads._running)  # "new" took no time on the test's clock
        assert got(reads.answer("q", lambda: b"quick")) == (b"quick", 0.0)  # the last was quick: waits again
    finally:
        reads.close(wait=True)


def test_under_sustained_load_a_question_is_computed_again_once_per_refresh(clock: ManualClock) -> None:
    reads = TimelyReads(DEADLINE_S, max_stale_s=10, refresh_s=4, clock=clock)
    runs: List[bytes] = []

    def late(body: bytes) -> Callable[[], bytes]:
        def compute() -> bytes:
            runs.append(body)
            clock.now += 1  # longer than the deadline, on the test's clock
            return body

        return compute

    try:
        assert got(reads.answer("q", late(b"one")))[0] == b"one"  # nothing to serve instead: waited
        assert got(reads.answer("q", late(b"two")))[0] == b"two"  # one late answer: still waits
        # Two late in a row: "two" (started at 1 s, now 2 s) is served and nothing is computed.
        assert got(reads.answer("q", late(b"three"))) == (b"two", 1.0)
        clock.now += 2
        assert got(reads.answer("q", late(b"four"))) == (b"two", 3.0)
        assert runs == [b"one", b"two"] and reads.stale_served == 2
        clock.now += 1  # "two" is now 4 s old: the next request starts a computation (and takes "two")
        assert got(reads.answer("q", late(b"five"))) == (b"two", 4.0)
        _wait_until(lambda: runs == [b"one", b"two", b"five"] and not reads._running)
        assert got(reads.answer("q", late(b"six")))[0] == b"five"
        assert runs == [b"one", b"two", b"five"]
    finally:
        reads.close(wait=True)


def test_the_refresh_is_never_longer_than_the_staleness_allowed(clock: ManualClock) -> None:
    reads = TimelyReads(DEADLINE_S, max_stale_s=2, refresh_s=5, clock=clock)
    try:
        assert reads.refresh_s == 2
    finally:
        reads.close(wait=True)


def test_without_a_last_answer_the_request_waits(reads: TimelyReads) -> None:
    slow = Gate(b"first")
    threading.Timer(3 * DEADLINE_S, slow.opened.set).start()
    assert got(reads.answer("q", slow)) == (b"first", 0.0)


def test_no_staleness_allowed_means_waiting(clock: ManualClock) -> None:
    reads = TimelyReads(DEADLINE_S, max_stale_s=0, clock=clock)
    try:
        reads.answer("q", lambda: b"old")
        slow = Gate(b"new")
        threading.Timer(3 * DEADLINE_S, slow.opened.set).start()
        assert got(reads.answer("q", slow))[0] == b"new"
    finally:
        reads.close(wait=True)


def test_fresh_runs_now_even_while_a_shared_one_is_running(reads: TimelyReads, clock: ManualClock) -> None:
    reads.answer("q", lambda: b"old")
    slow = Gate(b"slow")
    assert got(reads.answer("q", slow))[0] == b"old"
    assert slow.started.wait(5)
    clock.now += 1
    assert got(reads.answer("q", lambda: b"fresh", fresh=True)) == (b"fresh", 0.0)
    slow.opened.set()  # it started earlier, so it does not replace the fresh answer
    _wait_until(lambda: not reads._running)
    clock.now += 1
    late = Gate(b"late")
    assert got(reads.answer("q", late)) == (b"fresh", 1.0)
    late.opened.set()


def test_concurrent_requests_share_one_computation(reads: TimelyReads) -> None:
    slow = Gate(b"shared")
    results: List[object] = []
    threads = [threading.Thread(target=lambda: results.append(got(reads.answer("q", slow)))) for _ in range(4)]
    for thread in threads:
        thread.start()
    assert slow.started.wait(5)
    slow.opened.set()
    for thread in threads:
        thread.join(10)
    assert [body for body, _ in results] == [b"shared"] * 4  # type: ignore[misc]
    assert slow.runs == 1


def test_an_error_reaches_the_request_and_is_not_kept(reads: TimelyReads) -> None:
    def broken() -> bytes:
        raise ValueError("no such range")

    with pytest.raises(ValueError, match="no such range"):
        reads.answer("q", broken)
    assert got(reads.answer("q", lambda: b"fine")) == (b"fine", 0.0)


def test_a_large_answer_is_gzipped_once(clock: ManualClock) -> None:
    reads = TimelyReads(DEADLINE_S, max_stale_s=10, clock=clock, gzip_from_bytes=100)
    try:
        large, _ = reads.answer("large", lambda: b"[" + b"1," * 200 + b"1]")
        assert large.gzipped is not None and gzip.decompress(large.gzipped) == large.body
        assert reads.answer("small", lambda: b"[1]")[0].gzipped is None
    finally:
        reads.close(wait=True)


def test_questions_are_kept_apart(reads: TimelyReads) -> None:
    reads.answer("a", lambda: b"A")
    assert got(reads.answer("b", lambda: b"B")) == (b"B", 0.0)


def _wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    finished = threading.Event()
    deadline = threading.Timer(timeout_s, finished.set)
    deadline.start()
    try:
        while not condition():
            assert not finished.wait(0.01), "condition not met in time"
    finally:
        deadline.cancel()
