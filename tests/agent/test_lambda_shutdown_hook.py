"""The agent's shutdown hook, in-process: where it does nothing, and when a flushed SIGTERM ends the process."""

from __future__ import annotations

import signal
import threading
from typing import List

from greenflame.agent.lambda_shutdown import _Shutdown, install


def test_outside_lambda_nothing_is_installed() -> None:
    before = signal.getsignal(signal.SIGTERM)
    assert install(lambda budget: None, env={}) is False
    assert signal.getsignal(signal.SIGTERM) is before


def test_not_from_another_thread() -> None:
    done: List[bool] = []
    thread = threading.Thread(
        target=lambda: done.append(install(lambda budget: None, env={"AWS_LAMBDA_RUNTIME_API": "x:1"}))
    )
    thread.start()
    thread.join()
    assert done == [False]


def test_the_flush_runs_once_whoever_sees_the_signal_first() -> None:
    budgets: List[float] = []
    shutdown = _Shutdown(budgets.append, signal.SIG_DFL)
    shutdown.run_once()
    shutdown.run_once()
    assert len(budgets) == 1 and 0 < budgets[0] <= 0.5


def test_a_handler_set_by_the_function_keeps_the_process_alive_for_it() -> None:
    def theirs(signum: int, frame: object) -> None:
        pass

    default = _Shutdown(lambda budget: None, signal.SIG_DFL)
    assert default._ends_process(default.on_signal)
    assert not default._ends_process(theirs)  # set after ours: it runs on the main thread
    chained = _Shutdown(lambda budget: None, theirs)
    assert not chained._ends_process(chained.on_signal)  # set before ours: on_signal calls it
