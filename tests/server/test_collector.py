"""The server process's garbage collector settings (each case in a fresh interpreter: they are process-wide)."""

from __future__ import annotations

import subprocess
import sys
from typing import List

import pytest

from greenflame.analyzer.errors import UserError
from greenflame.server.settings import Settings

_PROBE = """
import gc, sys
from greenflame.server import collector
kept = [[] for _ in range(1000)]  # made "at start-up"
before = gc.get_threshold()
collector.tune(int(sys.argv[1]))
print(before[0], *gc.get_threshold(), gc.get_freeze_count() >= len(kept))
"""


def _tuned(young: int) -> List[str]:
    done = subprocess.run([sys.executable, "-c", _PROBE, str(young)], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_the_young_threshold_is_raised_and_start_up_objects_are_frozen() -> None:
    default, young, middle, old, frozen = _tuned(50_000)
    assert (young, middle, old, frozen) == ("50000", "10", "10", "True")
    assert int(default) < 50_000  # Python's own is far lower (700 on 3.9-3.12)


def test_zero_keeps_pythons_threshold_and_still_freezes() -> None:
    default, young, _, _, frozen = _tuned(0)
    assert (young, frozen) == (default, "True")


def test_a_negative_threshold_is_refused() -> None:
    with pytest.raises(UserError, match="gc_young_threshold must not be negative"):
        Settings.from_env(environ={"GREENFLAME_GC_YOUNG_THRESHOLD": "-1"})
