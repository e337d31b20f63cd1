"""Programs that exercise the agent's signals in a fresh interpreter (signal handlers and timers belong
to the process, and the program must own its main thread).

:data:`PRELUDE` gives each program ``spin(seconds)`` (CPU time, not wall time: on a loaded machine
the work stays the same) and ``finish(**extra)``, which stops the agent and prints one JSON line with
``extra``, the ``ITIMER_PROF`` setting left behind and what the agent's guard swallowed.
:func:`run_program` runs one and checks that the guard swallowed nothing.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any, Dict

from support.agent import run_python

PRELUDE = """
import json, os, signal, sys, threading, time
import greenflame.agent as agent
from greenflame.agent import guard

def spin(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass

def finish(**extra):
    agent.stop()
    extra["itimer"] = signal.getitimer(signal.ITIMER_PROF)
    extra["swallowed"] = [f"{r.where}: {r.error!r}" for r in guard.swallowed()]
    print(json.dumps(extra))
"""


def run_program(tmp_path: Path, body: str, **env: str) -> Dict[str, Any]:
    """Run :data:`PRELUDE` + ``body`` (dedented) with the agent writing to a file (no report before
    ``finish()``, no budget); the JSON line ``finish()`` printed, plus the report, if any, as ``report``."""
    out = tmp_path / "p.json"
    variables = {"GREENFLAME_OUT": str(out), "GREENFLAME_REPORT_INTERVAL_S": "3600", "GREENFLAME_CPU_BUDGET": "1"}
    variables.update(env)
    result = run_python(PRELUDE + textwrap.dedent(body), variables)
    assert result.returncode == 0, result.stderr
    printed: Dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    assert printed["swallowed"] == [], printed["swallowed"]
    if out.exists():
        printed["report"] = json.loads(out.read_text())
    return printed
