"""Starts the agent inside a program launched by ``greenflame run``, before the program's own code.

``greenflame run`` writes a one-line ``sitecustomize.py`` into a temporary directory put first on
``PYTHONPATH``; Python's ``site`` module imports it at start-up and it calls :func:`bootstrap`.
Only the first Python process to start consumes the bootstrap: it removes its marker variable
and restores ``PYTHONPATH``, so Python subprocesses the program starts are not profiled into
the same output. Then it runs any ``sitecustomize`` module that was there before, so the
program behaves as it would without greenflame.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import signal
import sys

#: The bootstrap directory of the process to profile (set by the runner, removed here).
MARKER = "GREENFLAME_RUN_BOOTSTRAP"
#: ``PYTHONPATH`` before the runner changed it; absent when it was unset.
SAVED_PYTHONPATH = "GREENFLAME_RUN_PYTHONPATH"

SITECUSTOMIZE = """\
# Written by `greenflame run`: starts the greenflame agent, then chains to any other sitecustomize.
try:
    from greenflame.agent.bootstrap import bootstrap
except ImportError as error:
    import sys
    sys.stderr.write(f"greenflame: this Python cannot import greenflame.agent ({error}); not profiling\\n")
else:
    bootstrap(__file__)
"""


def bootstrap(sitecustomize_path: str) -> None:
    """Start the agent from ``GREENFLAME_*`` variables if this process is the one to profile; chain."""
    directory = os.path.dirname(os.path.abspath(sitecustomize_path))
    if os.environ.get(MARKER) == directory:
        _consume_marker()
        _start_agent()
    _chain(directory)


def _consume_marker() -> None:
    os.environ.pop(MARKER, None)
    saved = os.environ.pop(SAVED_PYTHONPATH, None)
    if saved is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = saved


def _start_agent() -> None:
    from . import start

    if start() is not None:
        _exit_cleanly_on_sigterm()


def _exit_cleanly_on_sigterm() -> None:
    """Turn SIGTERM into ``SystemExit(143)`` so that the last report is flushed at exit.

    Only when the program has not chosen a handler; a handler it installs later replaces this one.
    """
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def terminate(signum: int, frame: object) -> None:
        sys.exit(128 + signum)

    try:
        signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread
        pass


def _chain(directory: str) -> None:
    """Run the ``sitecustomize`` that the program would have imported without greenflame."""
    path = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != directory]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    # Its errors propagate to ``site``, which reports them as it would have without greenflame.
    spec.loader.exec_module(module)
