"""``greenflame lambda layer -o layer.zip``: the greenflame Lambda layer.

The zip holds the agent (pure Python, standard library only, so one layer serves x86_64 and arm64)
under ``python/greenflame/agent/``, which Lambda puts on ``sys.path`` as ``/opt/python``, and the
exec wrapper ``greenflame-wrapper`` (mode 0755) at the root, which Lambda unpacks to
``/opt/greenflame-wrapper``. Enabling profiling is configuration only::

    AWS_LAMBDA_EXEC_WRAPPER=/opt/greenflame-wrapper
    GREENFLAME_SERVER=https://greenflame.example.com
    GREENFLAME_INGEST_KEY=...

The layer ships bytecode, so that a cold start does not compile the agent (Lambda's /opt is
read-only: without it every cold start compiles every module, in memory, and throws the result
away). Each interpreter given (by default the building one) compiles the agent into
``__pycache__/<module>.<cache tag>.pyc`` (``cpython-311`` ...). The files are hash-based and checked
(PEP 552): valid whatever the files' dates after unzipping, and ignored if a source is edited. On a
Python version whose tag the layer does not hold, the import system finds no matching file and
compiles the source as before: slower to start, never wrong.

The zip is reproducible: entries are sorted and dated 1980-01-01, and bytecode is compiled with a
fixed hash seed and the ``/opt/python/...`` file names, so the same agent and interpreters give the
same bytes (and the same layer hash).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, Iterator, List, Sequence, Tuple

__all__ = [
    "ENV_NEXT_WRAPPER",
    "LAYER_MODULES",
    "SERVICE_ONLY_MODULES",
    "WRAPPER_NAME",
    "WRAPPER_PATH",
    "LayerBuildError",
    "build_layer",
    "compile_agent",
    "extract_layer",
    "layer_entries",
    "wrapper_script",
]

WRAPPER_NAME = "greenflame-wrapper"
#: A wrapper the function had before greenflame's: greenflame's wrapper runs it next (chaining).
ENV_NEXT_WRAPPER = "GREENFLAME_NEXT_WRAPPER"
#: Where Lambda puts the wrapper: a layer's files are unpacked under /opt.
WRAPPER_PATH = "/opt/" + WRAPPER_NAME
_AGENT_PREFIX = "python/greenflame/agent/"
#: Where Lambda unpacks the agent: the file names recorded in the bytecode (for tracebacks).
_AGENT_RUNTIME_DIR = "/opt/" + _AGENT_PREFIX
_COMPILE_TIMEOUT_S = 120

# Run by each interpreter: compile the sources named on stdin (one a line) into argv[1], as
# hash-based checked .pyc files named with the interpreter's cache tag; print the tag.
_COMPILER = """
import os, py_compile, sys
tag = sys.implementation.cache_tag
for source in sys.stdin.read().split("\\n"):
    if source:
        name = os.path.basename(source)
        py_compile.compile(
            source,
            cfile=os.path.join(sys.argv[1], name[:-3] + "." + tag + ".pyc"),
            dfile=sys.argv[2] + name,
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
        )
print(tag)
"""
_EPOCH = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o644
_EXEC_MODE = 0o755

_WRAPPER = """#!/bin/sh
# greenflame exec wrapper for AWS Lambda Python runtimes (from the greenflame layer).
# Enable profiling with no code change: AWS_LAMBDA_EXEC_WRAPPER=/opt/greenflame-wrapper, and
# GREENFLAME_SERVER (with GREENFLAME_INGEST_KEY) for where the profiles go.
# Lambda runs this script with its bootstrap command as arguments; the script hands that command
# through unchanged after pointing _HANDLER at greenflame's entry, which loads the function's own
# handler (kept in GREENFLAME_ORIGINAL_HANDLER) the way the runtime does, and profiles it.
# A wrapper the function had before (GREENFLAME_NEXT_WRAPPER, set by `greenflame lambda enable`)
# runs next, with the same arguments.
if [ -n "${GREENFLAME_NEXT_WRAPPER:-}" ]; then
  set -- "$GREENFLAME_NEXT_WRAPPER" "$@"
fi
case "${GREENFLAME_ENABLED-true}" in
  ""|0|[Ff][Aa][Ll][Ss][Ee]|[Nn][Oo]|[Oo][Ff][Ff]) exec "$@" ;;
esac
if [ -n "${_HANDLER:-}" ] && [ "$_HANDLER" != "greenflame.agent.lambda_entry.handler" ]; then
  GREENFLAME_ORIGINAL_HANDLER="$_HANDLER"
  _HANDLER="greenflame.agent.lambda_entry.handler"
  export GREENFLAME_ORIGINAL_HANDLER _HANDLER
fi
exec "$@"
"""


def wrapper_script() -> str:
    """The exec wrapper's text (a POSIX shell script)."""
    return _WRAPPER


def _agent_dir() -> Path:
    import greenflame.agent

    return Path(greenflame.agent.__file__).resolve().parent


#: The agent's modules that run in a Lambda sandbox: the layer's entry point and everything it
#: imports, eagerly or lazily. ``runner`` and ``bootstrap`` (``greenflame run``) stay out. A test
#: checks that the list is closed under import and that every other agent module is named in
#: :data:`SERVICE_ONLY_MODULES`, so a new module is a decision, not an accident.
LAYER_MODULES = (
    "__init__",
    "aggregator",
    "aws_lambda",
    "budget",
    "callprofiler",
    "columns",
    "config",
    "cpuprobe",
    "delivery",
    "delivery_policy",
    "diskqueue",
    "drops",
    "engines",
    "exporters",
    "frame_guard",
    "guard",
    "handler_buffer",
    "http_post",
    "idle",
    "invocations",
    "label_merge",
    "lambda_entry",
    "lambda_outbox",
    "lambda_secrets",
    "lambda_shutdown",
    "lifecycle",
    "own_threads",
    "profiler",
    "sampler",
    "scheduler",
    "signal_handler",
    "sigprof",
    "spool",
    "stacks",
    "thread_imports",
    "thread_table",
    "threadlabels",
    "trigger_policy",
    "wake_meter",
    "wall_timer",
    "worker",
)
#: The agent's modules that only ``greenflame run`` uses.
SERVICE_ONLY_MODULES = ("bootstrap", "runner")


def _agent_files(agent_dir: Path) -> Iterator[Path]:
    for module in sorted(LAYER_MODULES):
        yield agent_dir / f"{module}.py"
    yield agent_dir / "py.typed"


class LayerBuildError(Exception):
    """An interpreter could not compile the agent; the message is one line."""


def compile_agent(python: str, sources: Sequence[Path]) -> Tuple[str, Dict[str, bytes]]:
    """Compile ``sources`` with the interpreter ``python``: (its cache tag, {.pyc name: bytes})."""
    # Sets are marshalled in hash order: a fixed seed (so no -I or -E, which would ignore it).
    env = dict(os.environ, PYTHONHASHSEED="0")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory(prefix="greenflame-layer-") as out:
        try:
            done = subprocess.run(
                [python, "-S", "-c", _COMPILER, out, _AGENT_RUNTIME_DIR],
                input="\n".join(str(path) for path in sources),
                env=env,
                capture_output=True,
                text=True,
                timeout=_COMPILE_TIMEOUT_S,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise LayerBuildError(f"cannot run {python} to compile the agent: {error}") from None
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise LayerBuildError(f"{python} could not compile the agent: {last}")
        tag = done.stdout.strip().splitlines()[-1]
        return tag, {name: (Path(out) / name).read_bytes() for name in sorted(os.listdir(out))}


def layer_entries(pythons: Sequence[str] = ()) -> List[Tuple[str, bytes, int]]:
    """(name in the zip, content, mode) of every file of the layer, in zip order.

    The agent's bytecode is compiled by the building interpreter and by each of ``pythons``.
    """
    entries = [(WRAPPER_NAME, wrapper_script().encode("utf-8"), _EXEC_MODE)]
    sources = list(_agent_files(_agent_dir()))
    for path in sources:
        entries.append((_AGENT_PREFIX + path.name, path.read_bytes(), _FILE_MODE))
    compiled: Dict[str, bytes] = {}
    for python in dict.fromkeys([sys.executable, *pythons]):
        compiled.update(compile_agent(python, [p for p in sources if p.suffix == ".py"])[1])
    for name, data in sorted(compiled.items()):
        entries.append((_AGENT_PREFIX + "__pycache__/" + name, data, _FILE_MODE))
    return entries


def _zip_info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, so that unzip (and Lambda) honour the mode bits below
    info.external_attr = (stat.S_IFREG | mode) << 16
    return info


def write_layer(output: Path, pythons: Sequence[str] = ()) -> int:
    """Write the layer zip to ``output`` atomically; the number of files in it.

    ``pythons``: more interpreters (paths or names on PATH) whose bytecode the layer should hold.
    Raises :class:`LayerBuildError` when one cannot compile the agent.
    """
    entries = layer_entries(pythons)
    temporary = output.with_name(f".{output.name}.tmp{os.getpid()}")
    try:
        with zipfile.ZipFile(temporary, "w") as archive:
            for name, data, mode in entries:
                archive.writestr(_zip_info(name, mode), data)
        os.replace(temporary, output)
    finally:
        if temporary.exists():
            temporary.unlink()
    return len(entries)


def build_layer(output: str, pythons: Sequence[str] = ()) -> int:
    """``greenflame lambda layer -o OUTPUT``: build the layer zip; exit status 0.

    ``pythons``: more interpreters to compile the agent's bytecode for (see the module doc).
    """
    from greenflame.analyzer.errors import UserError

    target = Path(output).expanduser()
    if target.is_dir():
        raise UserError(f"{output} is a directory: give the zip file to write, e.g. -o layer.zip")
    try:
        count = write_layer(target, pythons)
    except LayerBuildError as error:
        raise UserError(str(error)) from None
    except OSError as error:
        raise UserError(f"cannot write {output}: {error.strerror or error}") from None
    size_kb = target.stat().st_size / 1024
    print(
        f"greenflame: wrote {target} ({count} files, {size_kb:.0f} KiB, any architecture); "
        f"enable it with AWS_LAMBDA_EXEC_WRAPPER={WRAPPER_PATH}",
        file=sys.stderr,
    )
    return 0


def extract_layer(archive: Path, destination: Path) -> None:
    """Unpack a layer zip into ``destination`` as Lambda unpacks it into /opt, keeping file modes."""
    from greenflame.analyzer.errors import UserError

    root = destination.resolve()
    try:
        with zipfile.ZipFile(archive) as layer:
            for info in layer.infolist():
                target = (root / info.filename).resolve()
                if root not in target.parents:
                    raise UserError(f"{archive}: entry {info.filename!r} would land outside the layer folder")
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(layer.read(info))
                mode = (info.external_attr >> 16) & 0o777
                target.chmod(mode or _FILE_MODE)
    except (OSError, zipfile.BadZipFile) as error:
        raise UserError(f"cannot unpack the layer {archive}: {error}") from None
