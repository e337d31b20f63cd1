"""The wall-clock SIGPROF timer (``agent/wall_timer.py``) and the Lambda invocations it samples, in real
processes: signals and POSIX timers belong to the process, and the programs must own their main thread.

Every program ends by printing what the agent's guard swallowed, which must be nothing.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any, Dict

import pytest
from support.signal_programs import run_program

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX timers to a thread: Linux")


def run(tmp_path: Path, body: str, **env: str) -> Dict[str, Any]:
    """Run the program with the wall timer at hand (see support.signal_programs)."""
    return run_program(tmp_path, "from greenflame.agent.wall_timer import WallTimer\n" + textwrap.dedent(body), **env)


def counts_in(report: Dict[str, Any], function: str) -> Dict[str, int]:
    """Wall, CPU and idle samples whose stack holds ``function``."""
    frames, totals = report["frames"], {"wall": 0, "cpu": 0, "idle": 0}
    for sample in report["samples"]:
        if any(frames[i]["function"] == function for i in sample["stack"]):
            for column, value in zip(("wall", "cpu", "idle"), sample["values"]):
                totals[column] += value
    return totals


def answering_peer(delay_s: float) -> str:
    """Program text: ``mine``, a blocking socket whose forked peer (``pid``) answers each byte it gets
    after ``delay_s`` seconds, until ``mine`` is closed."""
    return textwrap.dedent(
        f"""
        import socket
        mine, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            mine.close()
            while theirs.recv(1):
                time.sleep({delay_s})
                theirs.sendall(b"!")
            os._exit(0)
        theirs.close()
        """
    )


# -- the timer ------------------------------------------------------------------------------

#: A timer that signals the main thread, and the times its signals came (``fired``).
TIMER = """
import ctypes
fired = []
signal.signal(signal.SIGPROF, lambda signum, frame: fired.append(time.monotonic()))
timer = WallTimer.create(threading.get_native_id())
"""


def timer_program(body: str) -> str:
    """:data:`TIMER` then ``body``."""
    return TIMER + textwrap.dedent(body)


def test_the_timer_signals_the_thread_it_names_and_no_other(tmp_path: Path) -> None:
    printed = run(
        tmp_path,
        """
        import ctypes
        got = {}
        ready = threading.Event()
        def worker(timeout):
            signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGPROF])  # it waits for the signal itself
            got["tid"] = threading.get_native_id()
            ready.set()
            info = signal.sigtimedwait([signal.SIGPROF], timeout)
            got.setdefault("received", []).append(info is not None)
        signal.signal(signal.SIGPROF, lambda signum, frame: got.__setitem__("main", got.get("main", 0) + 1))
        thread = threading.Thread(target=worker, args=(5.0,))
        thread.start()
        ready.wait()
        to_worker = WallTimer.create(got["tid"])
        to_worker.set(0.05)
        thread.join()
        ready.clear()
        thread = threading.Thread(target=worker, args=(0.5,))
        thread.start()
        ready.wait()
        to_main = WallTimer.create(threading.get_native_id())
        to_main.set(0.05)
        thread.join()
        time.sleep(0.1)
        to_worker.close(); to_main.close()
        finish(received=got["received"], main=got.get("main", 0))
        """,
    )
    assert printed["received"] == [True, False]  # the first timer named the worker, the second main
    assert printed["main"] == 1


def test_a_timer_fires_once_when_set_never_when_stopped_and_the_last_setting_wins(tmp_path: Path) -> None:
    printed = run(
        tmp_path,
        timer_program(
            """
        timer.set(0.02); time.sleep(0.3)
        once = len(fired)
        timer.set(0.05); timer.stop(); time.sleep(0.3)
        stopped = len(fired) - once
        start = time.monotonic()
        timer.set(30.0); timer.set(0.02); time.sleep(0.3)  # replaced: fires after 20 ms, not 30 s
        replaced = [round(t - start, 3) for t in fired[once:]]
        # An absolute due time: 1.05 s after an instant 1 s ago fires before a timer set for 1 s from now.
        timer.set_after(1.05, time.perf_counter_ns() - 1_000_000_000)
        time.sleep(0.5)
        absolute = len(fired) - once - len(replaced)
        timer.close(); timer.close()
        finish(once=once, stopped=stopped, replaced=replaced, absolute=absolute)
        """
        ),
    )
    assert printed["once"] == 1 and printed["stopped"] == 0 and printed["absolute"] == 1
    assert len(printed["replaced"]) == 1 and printed["replaced"][0] < 1.0


def test_a_closed_timer_never_fires_and_closing_waits_for_a_call_in_progress(tmp_path: Path) -> None:
    printed = run(
        tmp_path,
        timer_program(
            """
        timer._busy.acquire()  # as the main thread's handler holds it while it sets the timer
        closing = threading.Thread(target=timer.close)
        closing.start()
        closing.join(0.2)
        waited = closing.is_alive()
        timer._busy.release()
        closing.join()
        timer.set(0.01); timer.set_after(0.01, time.perf_counter_ns()); timer.stop()
        time.sleep(0.2)
        finish(waited=waited, fired=len(fired))
        """
        ),
    )
    assert printed["waited"] is True and printed["fired"] == 0


def test_the_handlers_setting_counts_from_its_start_to_a_step_or_exactly_beyond_the_presets(tmp_path: Path) -> None:
    """``set_after`` as the handler calls it: the time left, read back from the kernel, is the delay from
    ``since`` up to the next preset step (0.1 ms) within 20 ms, and exact beyond."""
    printed = run(
        tmp_path,
        timer_program(
            """
        from greenflame.agent import wall_timer
        library = wall_timer._library(ctypes)
        def left_s():
            spec = wall_timer._types()[2]()
            library.timer_gettime(timer._id, ctypes.byref(spec))
            return spec.it_value.tv_sec + spec.it_value.tv_nsec / 1e9
        since = time.perf_counter_ns() - 3_000_000  # the handler started 3 ms ago
        timer.set_after(0.01234, since)
        preset = left_s()
        timer.set_after(0.5, time.perf_counter_ns())
        exact = left_s()
        timer.set_after(0.002, since)  # due already: as soon as possible
        time.sleep(0.05)
        made = sum(1 for preset in timer._presets if preset is not None)
        timer.close()
        finish(preset=preset, exact=exact, fired=len(fired), made=made)
        """
        ),
    )
    assert 0.008 <= printed["preset"] <= 0.0094, printed  # 9.34 ms left then (to the next step, 9.4), not 12.34
    assert 0.49 <= printed["exact"] <= 0.5, printed
    assert printed["fired"] == 1, printed
    assert printed["made"] == 2, printed  # the settings used, made when first needed (not all 200 at once)


def test_a_setting_made_while_another_thread_sets_the_timer_waits_for_it_and_counts(tmp_path: Path) -> None:
    printed = run(
        tmp_path,
        timer_program(
            """
        held, release = threading.Event(), threading.Event()
        def other():
            with timer._busy:  # as the sampler thread holds it while its call sets the timer
                held.set()
                release.wait()
        thread = threading.Thread(target=other)
        thread.start()
        held.wait()
        threading.Timer(0.1, release.set).start()
        timer.set(0.02)  # as the main thread's handler re-arms meanwhile: after the other's call, not never
        time.sleep(0.3)
        thread.join()
        timer.close()
        finish(fired=len(fired))
        """
        ),
    )
    assert printed["fired"] == 1


def test_a_handler_run_again_inside_itself_keeps_the_timer_going_and_sees_the_programs_frame(
    tmp_path: Path,
) -> None:
    # Due times 20 us apart: the signal of the timer the handler just set comes while it still runs.
    printed = run(
        tmp_path,
        """
        import ctypes
        from greenflame.agent.sigprof import ProfSignalTrigger
        seen = set()
        watching = [True]  # while user_code runs: trigger.close() below is the program's own call
        def on_signal(frame):
            if watching[0]:
                seen.add(frame.f_code.co_name)
            return 0.000001
        trigger = ProfSignalTrigger(0.001, on_signal)
        assert trigger.arm()
        trigger.use_wall_clock(WallTimer.create(threading.get_native_id()))
        trigger.restart(0.001)
        def user_code():
            spin(0.5)
        user_code()
        watching[0] = False
        calls = trigger.calls
        trigger.close()
        finish(calls=calls, seen=sorted(seen))
        """,
    )
    assert printed["calls"] >= 1000, printed  # a timer left unset by a nested call stops after a few
    assert set(printed["seen"]) <= {"spin", "user_code"}, printed


def test_a_forked_child_closing_its_copy_leaves_the_parents_timer_alone(tmp_path: Path) -> None:
    printed = run(
        tmp_path,
        timer_program(
            """
        pid = os.fork()
        if pid == 0:
            timer.close()  # the child has no POSIX timer: its copy must not delete the parent's
            os._exit(0)
        os.waitpid(pid, 0)
        timer.set(0.02); time.sleep(0.3)
        timer.close()
        finish(fired=len(fired))
        """
        ),
    )
    assert printed["fired"] == 1


# -- Lambda invocations on the wall clock -------------------------------------------------------

LAMBDA = """
import ctypes  # as a Lambda runtime's sampler thread does first (or the program itself)
from greenflame.agent.aws_lambda import profile_handler

class Context:
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:f"
    aws_request_id = "r"

def crunch():
    spin(0.01)

def nap():
    time.sleep(0.01)

truth = {"crunch": 0.0, "nap": 0.0}

@profile_handler
def handler(event, context):
    started = time.perf_counter()
    crunch()
    middle = time.perf_counter()
    nap()
    truth["crunch"] += middle - started
    truth["nap"] += time.perf_counter() - middle
    return {}

def sampler():
    return agent.current()._engine.sampler
"""


def lambda_program(body: str, ctypes: bool = True) -> str:
    """:data:`LAMBDA` then ``body``; without ``ctypes``, a program where it cannot be imported."""
    blocked = 'sys.modules["ctypes"] = None  # a Python built without it: importing it fails'
    return (LAMBDA if ctypes else LAMBDA.replace("import ctypes", blocked)) + textwrap.dedent(body)


def test_a_half_waiting_handler_samples_its_own_waits_as_idle_and_never_between_invocations(tmp_path: Path) -> None:
    printed = run(
        tmp_path,
        lambda_program(
            """
        for _ in range(150):
            handler({}, Context())
            time.sleep(0.002)  # the runtime's wait for the next event
        clock = sampler().signal_clock()
        calls = agent.current().signal_stats()["calls"]
        time.sleep(0.5)  # between invocations: parked, no signal wakes the process
        calls_between = agent.current().signal_stats()["calls"] - calls
        finish(clock=clock, calls_between=calls_between, truth=truth)
        """
        ),
        AWS_LAMBDA_FUNCTION_NAME="f",
    )
    report = printed["report"]
    assert printed["clock"] == "wall" and report["metadata"]["signal_clock"] == "wall"
    assert printed["calls_between"] == 0
    nap, crunch = counts_in(report, "nap"), counts_in(report, "crunch")
    # 1.5 s of naps and 1.5 s of crunching at 100 Hz: about 150 samples each, sampling noise aside.
    assert nap["wall"] >= 100 and crunch["wall"] >= 100, (nap, crunch)
    assert nap["idle"] >= 0.95 * nap["wall"] and nap["cpu"] <= 0.03 * nap["wall"], nap  # never CPU while asleep
    assert crunch["cpu"] >= 0.95 * crunch["wall"] and crunch["idle"] == 0, crunch
    nap_share = printed["truth"]["nap"] / (printed["truth"]["nap"] + printed["truth"]["crunch"])
    assert abs(nap["wall"] / (nap["wall"] + crunch["wall"]) - nap_share) <= 0.1  # 3 sd of 300 samples
    # The main thread took the samples of its waits itself: the sampler thread hardly any.
    assert report["metadata"]["signal_samples"] >= 0.9 * (nap["wall"] + crunch["wall"]), report["metadata"]


def test_invocations_shorter_than_a_millisecond_keep_getting_their_samples(tmp_path: Path) -> None:
    # A sample due when an invocation starts fires at once: with a floor of 1 ms on the timer, the
    # first sample due at an invocation's end left every later one without a sample.
    printed = run(
        tmp_path,
        lambda_program(
            """
        @profile_handler
        def quick(event, context):
            spin(0.0003)
        started = time.perf_counter()
        for _ in range(2000):
            quick({}, Context())
        finish(seconds=2000 * 0.0003)
        """
        ),
        AWS_LAMBDA_FUNCTION_NAME="f",
    )
    samples = counts_in(printed["report"], "quick")["wall"]
    assert samples >= 0.4 * 100 * printed["seconds"], samples  # 60 expected at 100 Hz


def test_a_program_that_takes_sigprof_over_in_an_invocation_keeps_it_and_the_wall_timer_stops(
    tmp_path: Path,
) -> None:
    printed = run(
        tmp_path,
        lambda_program(
            """
        for _ in range(30):
            handler({}, Context())
        assert sampler().signal_clock() == "wall"
        mine = []
        signal.signal(signal.SIGPROF, lambda signum, frame: mine.append(1))
        deadline = time.monotonic() + 2.0  # the sampler thread's next look retires the trigger
        while time.monotonic() < deadline and sampler().signal_clock() is not None:
            handler({}, Context())
        retired = sampler().signal_clock() is None
        before = len(mine)
        for _ in range(30):
            handler({}, Context())
        finish(retired=retired, after=len(mine) - before, installed=signal.getsignal(signal.SIGPROF) is not None)
        """
        ),
        AWS_LAMBDA_FUNCTION_NAME="f",
    )
    assert printed["retired"] and printed["after"] == 0


def test_without_ctypes_the_timer_keeps_counting_cpu_time(tmp_path: Path) -> None:
    printed = run(
        tmp_path,
        lambda_program(
            """
        for _ in range(20):
            handler({}, Context())
        finish(clock=sampler().signal_clock())
        """,
            ctypes=False,
        ),
        AWS_LAMBDA_FUNCTION_NAME="f",
    )
    assert printed["clock"] == "cpu"


# -- outside Lambda: the wall clock while the main thread is alone ---------------------------------


def test_a_lone_main_thread_samples_on_the_wall_clock_until_another_thread_runs(tmp_path: Path) -> None:
    printed = run(
        tmp_path,
        """
        agent.start()
        trigger = lambda: agent.current()._engine.sampler._trigger
        spin(1.5)  # a few windows: the main thread is alone
        alone = trigger().wall_clock
        stop = threading.Event()
        worker = threading.Thread(target=stop.wait)
        worker.start()
        spin(1.5)
        with_worker = trigger().wall_clock
        stop.set()
        worker.join()
        finish(alone=alone, with_worker=with_worker)
        """,
    )
    assert printed["alone"] is True and printed["with_worker"] is False


def test_a_blocking_recv_on_the_wall_clock_counts_every_due_time_of_its_wait(tmp_path: Path) -> None:
    # recv on a blocking socket is restarted after the signal (SA_RESTART): the handler runs once the
    # reply came, 25 ms later, and its one sample stands for the two or three due times of the wait.
    printed = run(
        tmp_path,
        answering_peer(0.025)
        + textwrap.dedent(
            """
        truth = {"crunch": 0.0, "await_reply": 0.0}
        def crunch():
            spin(0.005)
        def await_reply():
            mine.sendall(b"?")
            mine.recv(1)
        agent.start()
        spin(1.0)  # the first windows: the timer moves to the wall clock
        started = time.perf_counter()
        while time.perf_counter() - started < 3.0:
            for step in (crunch, await_reply):
                began = time.perf_counter()
                step()
                truth[step.__name__] += time.perf_counter() - began
        wall = agent.current()._engine.sampler._trigger.wall_clock
        mine.close()
        os.waitpid(pid, 0)
        finish(truth=truth, wall=wall)
        """
        ),
    )
    assert printed["wall"] is True
    report, truth = printed["report"], printed["truth"]
    waits, work = counts_in(report, "await_reply"), counts_in(report, "crunch")
    assert waits["wall"] + work["wall"] >= 200, (waits, work)
    true_share = truth["await_reply"] / (truth["await_reply"] + truth["crunch"])  # about 0.83
    # One sample per wait, as before, would show about 0.67.
    assert abs(waits["wall"] / (waits["wall"] + work["wall"]) - true_share) <= 0.08, (waits, work, truth)
    assert waits["idle"] >= 0.95 * waits["wall"], waits
    # ... taken by the main thread itself: no sampler thread waking up for the waits.
    assert report["metadata"]["signal_samples"] >= 0.9 * (waits["wall"] + work["wall"]), report["metadata"]


def test_waits_shorter_than_any_sampling_interval_get_their_wake_ups_measured(tmp_path: Path) -> None:
    # 3 ms sleeps: the next due time is at least half a period (5 ms) after a sample, so two samples
    # never find the same wait; the wake meter's probes measure the wake-ups instead of the default.
    printed = run(
        tmp_path,
        """
        agent.start()
        spin(1.0)  # the first windows: the timer moves to the wall clock
        started = time.perf_counter()
        while time.perf_counter() - started < 3.0:
            spin(0.003)
            time.sleep(0.003)
        trigger = agent.current()._engine.sampler._trigger
        finish(wall=trigger.wall_clock, probes=trigger._wakes.probes)
        """,
    )
    assert printed["wall"] is True
    metadata = printed["report"]["metadata"]
    assert metadata["signal_wakes_measured"] >= 5, (metadata, printed["probes"])
    assert metadata["signal_wake_ns"] < 120_000 and 0 < printed["probes"] <= 64


def test_a_blocking_recv_gets_what_the_signals_cost_it_measured_not_the_default(tmp_path: Path) -> None:
    # The kernel restarts a blocking recv after the signal and the handler runs only once it returns:
    # no two calls find the thread at the wait, so the sampler thread measures the restart itself.
    printed = run(
        tmp_path,
        answering_peer(0.01)
        + textwrap.dedent(
            """
        agent.start()
        started = time.perf_counter()
        while time.perf_counter() - started < 8.0:  # 4 restarts measured in 5 s once, on a loaded CI run
            spin(0.01)
            mine.sendall(b"?")
            mine.recv(1)
        trigger = agent.current()._engine.sampler._trigger
        restarts = list(trigger._wakes._restarts)
        mine.close()
        os.waitpid(pid, 0)
        finish(wall=trigger.wall_clock, restarts=restarts)
        """
        ),
    )
    assert printed["wall"] is True
    metadata = printed["report"]["metadata"]
    assert metadata["signal_wakes_measured"] >= 5, (metadata, printed["restarts"])
    assert metadata["signal_wake_ns"] < 120_000 and len(printed["restarts"]) >= 5
