"""``greenflame attach --pid N``: profile a running Python process from outside, through py-spy.

No code change in the target: py-spy reads its memory (``process_vm_readv``, which needs ptrace
permission) and records ``--format raw`` (collapsed stacks of the threads that are active). The
result is converted with the analyzer's collapsed reader into a greenflame profile (one ``cpu``
column: py-spy leaves idle threads out), labelled ``engine: py-spy``, and written to ``--out``
or shipped to ``--server`` like an agent report.

py-spy is found as ``$GREENFLAME_PY_SPY``, else ``py-spy`` on ``PATH``, else beside the running
interpreter (a virtualenv's ``bin``). Every failure is a one-line :class:`UserError`; when
the system refuses ptrace, the message says how to allow it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any, List, Optional

if TYPE_CHECKING:
    from greenflame.analyzer.model import Profile

DEFAULT_RATE_HZ = 100.0
PY_SPY_VARIABLE = "GREENFLAME_PY_SPY"
_PTRACE_SIGNS = ("permission denied", "operation not permitted", "os error 1)", "os error 13)", "eperm")
_STOP_GRACE_S = 10.0


def _error(message: str) -> Exception:
    from greenflame.analyzer.errors import UserError

    return UserError(message)


def find_py_spy() -> str:
    """The py-spy executable, or a one-line error saying how to install it."""
    configured = os.environ.get(PY_SPY_VARIABLE)
    if configured:
        if not (os.path.isfile(configured) and os.access(configured, os.X_OK)):
            raise _error(f"{PY_SPY_VARIABLE}={configured} is not an executable file")
        return configured
    found = shutil.which("py-spy")
    if found:
        return found
    beside = os.path.join(os.path.dirname(sys.executable), "py-spy")
    if os.path.isfile(beside) and os.access(beside, os.X_OK):
        return beside
    raise _error("attach needs py-spy, which is not installed: pip install py-spy")


def ptrace_advice(pid: int) -> str:
    """What to do when the system does not let py-spy read process ``pid``."""
    return (
        f"cannot attach to process {pid}: the system does not permit ptrace. Run greenflame attach as the "
        f"process's user with ptrace allowed (sudo greenflame attach --pid {pid}, or "
        "sysctl kernel.yama.ptrace_scope=0); in a container add the SYS_PTRACE capability "
        "(docker run --cap-add SYS_PTRACE, or securityContext.capabilities.add: [SYS_PTRACE])"
    )


def record_command(py_spy: str, pid: int, rate_hz: float, duration_s: Optional[float], output: str) -> List[str]:
    """The py-spy command line that records process ``pid`` into ``output``."""
    command = [py_spy, "record", "--pid", str(pid), "--rate", str(max(1, round(rate_hz)))]
    command += ["--format", "raw", "--output", output, "--nonblocking"]
    if duration_s is not None:
        command += ["--duration", str(max(1, round(duration_s)))]
    return command


def attach_command(
    pid: int,
    duration: Optional[float] = None,
    rate: Optional[float] = None,
    out: Optional[str] = None,
    server: Optional[str] = None,
    group: Optional[str] = None,
) -> int:
    """Record process ``pid`` with py-spy for ``duration`` seconds (default: until it exits or Ctrl-C).

    Writes the profile to ``out`` (default ``greenflame-attach-<pid>-<time>.json.gz``) or ships
    it to ``server``; returns 0, or raises a one-line ``UserError``.
    """
    _check_process(pid)
    rate_hz = DEFAULT_RATE_HZ if rate is None else rate
    py_spy = find_py_spy()
    started_ns = time.time_ns()
    with tempfile.TemporaryDirectory(prefix="greenflame-attach-") as directory:
        raw = os.path.join(directory, "profile.txt")
        _run_py_spy(record_command(py_spy, pid, rate_hz, duration, raw), pid, raw)
        with open(raw, "rb") as handle:
            data = handle.read()
    profile = to_profile(data, pid, rate_hz, started_ns, group or process_name(pid))
    where = _deliver(profile, out, server, pid)
    print(f"greenflame: profile of process {pid}: {where}", file=sys.stderr)
    return 0


def to_profile(raw: bytes, pid: int, rate_hz: float, started_ns: int, group: str) -> Profile:
    """py-spy's raw (collapsed) output as a greenflame profile of process ``pid``."""
    from greenflame.analyzer.formats import collapsed
    from greenflame.analyzer.model import ProfileError

    if not raw.strip():
        raise _error(f"py-spy recorded no sample of process {pid} (was it running Python code?)")
    try:
        profile = collapsed.loads(raw)
    except ProfileError as error:
        raise _error(f"cannot read py-spy's output: {error}") from None
    from greenflame.agent import __version__

    profile.group = group
    profile.start_time_unix_ns = started_ns
    profile.duration_ns = max(0, time.time_ns() - started_ns)
    profile.sample_period_ns = round(1e9 / rate_hz)
    profile.metadata.update(
        agent=f"greenflame-attach/{__version__}",
        engine="py-spy",
        hostname=os.uname().nodename,
        pid=pid,
        sample_rate_hz=rate_hz,
        cpu_source="py-spy",
    )
    return profile


def process_name(pid: int) -> str:
    """The target's script or program name, for the profiling group."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = [part.decode("utf-8", "replace") for part in handle.read().split(b"\0") if part]
    except OSError:
        return f"pid-{pid}"
    from greenflame.agent.runner import default_group

    return default_group(argv) if argv else f"pid-{pid}"


def _check_process(pid: int) -> None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise _error(f"no process with id {pid}") from None
    except PermissionError:
        pass  # it exists, owned by someone else: py-spy will say whether it may read it


def _run_py_spy(command: List[str], pid: int, output: str) -> None:
    """Run py-spy; Ctrl-C stops the recording (py-spy then writes what it has)."""
    try:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as error:
        raise _error(f"cannot run {command[0]}: {error.strerror or error}") from None
    previous = _ignore_sigint()
    try:
        try:
            _, stderr = child.communicate()
        except KeyboardInterrupt:  # pragma: no cover - SIGINT is ignored while py-spy runs
            child.send_signal(signal.SIGINT)
            _, stderr = child.communicate(timeout=_STOP_GRACE_S)
    finally:
        _restore_sigint(previous)
    message = stderr.decode("utf-8", "replace")
    if child.returncode != 0 or not os.path.exists(output):
        raise _error(_failure(message, pid, child.returncode))


def _failure(stderr: str, pid: int, status: int) -> str:
    lowered = stderr.lower()
    if any(sign in lowered for sign in _PTRACE_SIGNS):
        return ptrace_advice(pid)
    if "failed to find python version" in lowered or "failed to get process executable" in lowered:
        return f"process {pid} does not look like a Python process py-spy can read (or it exited)"
    first = next((line.strip() for line in stderr.splitlines() if line.strip().lower().startswith("error")), "")
    return f"py-spy could not record process {pid} (exit status {status}){': ' + first if first else ''}"


def _ignore_sigint() -> Any:
    # The terminal sends Ctrl-C to py-spy too: it stops and writes its output; we wait for it.
    try:
        return signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        return None


def _restore_sigint(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGINT, previous)


def _deliver(profile: Profile, out: Optional[str], server: Optional[str], pid: int) -> str:
    from greenflame.analyzer.formats import greenflame_json

    if server:
        return _ship(greenflame_json.profile_to_dict(profile), server)
    path = out or f"greenflame-attach-{pid}-{time.strftime('%Y%m%d-%H%M%S')}.json.gz"
    data = greenflame_json.dumps(profile)
    if path.endswith(".gz"):
        import gzip

        data = gzip.compress(data, mtime=0)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def _ship(report: Any, server: str) -> str:
    from greenflame.agent.config import Config
    from greenflame.agent.exporters import ExportError, HttpExporter, report_key
    from greenflame.agent.profiler import AGENT

    config = Config.from_env(server=server)
    assert config.server is not None
    exporter = HttpExporter(config.server, config.ingest_key, config.export_timeout_s, AGENT)
    report.setdefault("metadata", {})["report_id"] = report_key(report)
    try:
        exporter.export(report, time.monotonic() + 3 * config.export_timeout_s)
    except ExportError as error:
        raise _error(f"the profile could not be delivered: {error}") from None
    return exporter.url
