"""The collector pause around the agent's reads of other threads' frames (greenflame.agent.frame_guard)."""

from __future__ import annotations

import gc
import os
import sys

import pytest

from greenflame.agent import frame_guard

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="frame objects are made on demand since CPython 3.11"
)


def test_a_pause_stops_a_running_collector_and_the_resume_restarts_it() -> None:
    assert gc.isenabled()
    paused = frame_guard.pause()
    try:
        assert paused and not gc.isenabled()
    finally:
        frame_guard.resume(paused)
    assert gc.isenabled()


def test_a_collector_the_program_stopped_stays_stopped() -> None:
    gc.disable()
    try:
        paused = frame_guard.pause()
        frame_guard.resume(paused)
        assert not paused and not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX")
def test_a_process_forked_during_a_pause_starts_with_the_collector_running() -> None:
    paused = frame_guard.pause()
    try:
        pid = os.fork()
        if pid == 0:  # the child: report through the exit status only
            os._exit(0 if gc.isenabled() else 1)
    finally:
        frame_guard.resume(paused)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
