"""``greenflame run``: profile an unmodified program, run as a child process with the agent inside.

How the agent gets inside: a temporary directory holding a ``sitecustomize.py`` is put first on
the child's ``PYTHONPATH`` (see :mod:`greenflame.agent.bootstrap`). This was chosen over a
``python -m greenflame...`` wrapper because it works for any command that ends up running
Python (``python app.py``, ``python -m pkg``, console scripts such as ``gunicorn`` or
``pytest``, shell scripts) without rewriting the command line, so ``sys.argv``, ``__main__`` and
the interpreter's own options stay exactly as the user wrote them. Interpreters started with
``-S``, ``-I`` or ``-E`` skip ``sitecustomize`` or ``PYTHONPATH``; the runner then reports that no
profile was written.

The child's exit status is returned (128 + N when signal N ended it); SIGINT and SIGTERM sent to
the runner are forwarded to the child. The profile is flushed when the program exits.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Mapping, Optional

from . import bootstrap
from .config import Config, ConfigError
from .exporters import FileExporter

_PYTHON = re.compile(r"^(python|pypy)(\d+(\.\d+)?)?$")
_OPTIONS_WITH_VALUE = frozenset({"-W", "-X", "-Q"})


class CommandNotFoundError(ConfigError):
    """The command to profile does not exist; shown as one line by the CLI."""


def run_command(
    command: List[str],
    group: Optional[str] = None,
    rate_hz: Optional[float] = None,
    out: Optional[str] = None,
    server: Optional[str] = None,
) -> int:
    """Run ``command`` with the agent started inside it; return its exit status.

    Reports go to ``out`` or ``server`` (the ingest key from ``GREENFLAME_INGEST_KEY``), else to
    the ``GREENFLAME_OUT``/``GREENFLAME_SERVER`` variables, else to
    ``./greenflame-<group>-<timestamp>.json.gz``. Written files are listed on standard error.
    """
    if not command:
        raise CommandNotFoundError("nothing to run: give a command after '--'")
    executable = _resolve(command[0])
    env = child_environment(os.environ, command, group=group, rate_hz=rate_hz, out=out, server=server)
    Config.from_env(env)  # a bad GREENFLAME_* value is reported here, before the program starts
    with tempfile.TemporaryDirectory(prefix="greenflame-run-") as directory:
        _write_bootstrap(directory, env)
        status = _run_forwarding_signals([executable, *command[1:]], env)
    output = env.get("GREENFLAME_OUT")
    if output:
        _announce(output)
    return status


def default_group(command: List[str]) -> str:
    """The profiling group for ``command``: its script's or module's name, else the program's."""
    program = os.path.basename(command[0])
    if _PYTHON.match(program):
        args = command[1:]
        i = 0
        while i < len(args):
            arg = args[i]
            if arg == "-m" and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith("-m") and len(arg) > 2:
                return arg[2:]
            if arg == "-c":
                break
            if arg in _OPTIONS_WITH_VALUE:
                i += 2
                continue
            if not arg.startswith("-") or arg == "-":
                return _stem(arg) if arg != "-" else program
            i += 1
    return _stem(program)


def child_environment(
    environ: Mapping[str, str],
    command: List[str],
    group: Optional[str] = None,
    rate_hz: Optional[float] = None,
    out: Optional[str] = None,
    server: Optional[str] = None,
) -> Dict[str, str]:
    """The child's environment: ``environ`` plus the agent's settings (bootstrap paths excluded)."""
    env = dict(environ)
    env["GREENFLAME_GROUP"] = group or env.get("GREENFLAME_GROUP") or default_group(command)
    if rate_hz is not None:
        env["GREENFLAME_RATE_HZ"] = repr(float(rate_hz))
    if out or server:
        env.pop("GREENFLAME_OUT", None)
        env.pop("GREENFLAME_SERVER", None)
        if out:
            env["GREENFLAME_OUT"] = os.path.abspath(out)
        if server:
            env["GREENFLAME_SERVER"] = server
    elif env.get("GREENFLAME_OUT"):
        env["GREENFLAME_OUT"] = os.path.abspath(env["GREENFLAME_OUT"])
    elif not env.get("GREENFLAME_SERVER"):
        env["GREENFLAME_OUT"] = os.path.abspath(default_output(env["GREENFLAME_GROUP"]))
    return env


def default_output(group: str) -> str:
    """``greenflame-<group>-<timestamp>.json.gz`` in the current directory."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", group).strip("._") or "profile"
    return f"greenflame-{safe}-{time.strftime('%Y%m%d-%H%M%S')}.json.gz"


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0] or path


def _resolve(program: str) -> str:
    if os.sep in program:
        if not os.path.isfile(program):
            raise CommandNotFoundError(f"command not found: {program}")
        return program
    found = shutil.which(program)
    if found is None:
        raise CommandNotFoundError(f"command not found: {program}")
    return found


def _write_bootstrap(directory: str, env: Dict[str, str]) -> None:
    with open(os.path.join(directory, "sitecustomize.py"), "w", encoding="utf-8") as handle:
        handle.write(bootstrap.SITECUSTOMIZE)
    previous = env.get("PYTHONPATH")
    if previous is not None:
        env[bootstrap.SAVED_PYTHONPATH] = previous
    env["PYTHONPATH"] = directory if not previous else directory + os.pathsep + previous
    env[bootstrap.MARKER] = os.path.abspath(directory)


def _run_forwarding_signals(argv: List[str], env: Dict[str, str]) -> int:
    try:
        child = subprocess.Popen(argv, env=env)
    except PermissionError as error:
        raise CommandNotFoundError(f"cannot run {argv[0]}: {error.strerror}") from None
    except FileNotFoundError:
        raise CommandNotFoundError(f"command not found: {argv[0]}") from None

    def forward(signum: int, frame: object) -> None:
        try:
            child.send_signal(signum)
        except OSError:
            pass

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[signum] = signal.signal(signum, forward)
        except ValueError:  # not the main thread: the signals stay with their handlers
            break
    try:
        status = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 - status if status < 0 else status


def _announce(output: str) -> None:
    files = FileExporter(output).existing()
    if not files:
        print(
            "greenflame: no profile was written (was the command a Python program that could import greenflame?)",
            file=sys.stderr,
        )
        return
    for path in files:
        print(f"greenflame: profile written to {path}", file=sys.stderr)
