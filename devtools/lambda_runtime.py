"""A faithful local AWS Lambda: the Runtime API, driven by the real ``awslambdaric`` client.

:class:`LocalLambda` starts the function's process the way Lambda's managed Python runtime does
and talks to it only through the documented Runtime API
(https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html), served here on a local port:

- ``GET /2018-06-01/runtime/invocation/next`` answers the next event with the headers
  ``Lambda-Runtime-Aws-Request-Id``, ``-Deadline-Ms``, ``-Invoked-Function-Arn``, ``-Trace-Id``
  (and ``-Client-Context`` when the invoker gives one);
- ``POST /2018-06-01/runtime/invocation/{id}/response`` and ``.../{id}/error`` end an invocation;
- ``POST /2018-06-01/runtime/init/error`` reports a failed init;
- the Extensions API (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-extensions-api.html)
  for internal extensions: ``POST /2020-01-01/extension/register`` during the init phase (answered
  with a ``Lambda-Extension-Identifier``) and ``GET /2020-01-01/extension/event/next``, which
  waits until the environment ends.

The process: the bootstrap ``var/runtime/bootstrap`` runs ``python -m awslambdaric "$_HANDLER"``
in the task root (``LAMBDA_TASK_ROOT``), started through ``AWS_LAMBDA_EXEC_WRAPPER`` when the
function sets it, with the wrapper's arguments being the bootstrap command, as on Lambda. Layers
are unpacked into a folder that stands for ``/opt`` (``/opt`` itself belongs to root): a wrapper
path under ``/opt/`` is mapped into it, and ``<opt>/python`` and
``<opt>/python/lib/pythonX.Y/site-packages`` go on ``PYTHONPATH``, the folders Lambda adds for
layers. ``TMPDIR`` points at the environment's own ``tmp`` folder, which, like Lambda's ``/tmp``,
outlives a process restart within the environment.

Between invocations the process is frozen with SIGSTOP once it asks for the next event, and
thawed with SIGCONT when one arrives, as Lambda freezes execution environments. An invocation
that outlives the timeout gets the process killed (its process group) and the result
``Sandbox.Timedout`` "Task timed out after N seconds"; a process that dies gives
``Runtime.ExitError``; either way the next invocation starts a new process (a cold start) in the
same environment. :meth:`LocalLambda.close` shuts the environment down as Lambda does: when an
extension registered, the runtime process gets SIGTERM and :data:`SHUTDOWN_GRACE_S` (500 ms, the
time Lambda gives a runtime with an internal extension) before SIGKILL; without one, SIGKILL at
once. The memory size is passed as ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE`` and the peak
resident size is checked after each invocation: above the memory size, the process is killed and
the invocation fails with ``Runtime.OutOfMemory``, as Lambda's cgroup would. (An address-space
limit, RLIMIT_AS, is not used: CPython's thread stacks and allocator arenas reserve far more
virtual memory than they use, so it would fail functions that fit in Lambda.)
"""

from __future__ import annotations

import gzip
import json
import os
import queue
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any, Dict, List, Optional, Union

__all__ = ["FunctionConfig", "InvokeResult", "LocalLambda", "RuntimeApi"]

API = "/2018-06-01/runtime"
EXTENSION_API = "/2020-01-01/extension"
#: Between SIGTERM and SIGKILL at shutdown, for a runtime with an internal extension (Lambda's 500 ms).
SHUTDOWN_GRACE_S = 0.5
INIT_TIMEOUT_S = 10.0  # Lambda's limit on an on-demand init phase
_EXIT_WAIT_S = 5.0
_POLL_S = 0.05


@dataclass
class InvokeResult:
    """One invocation's outcome: the response payload, or the error (errorType, errorMessage)."""

    request_id: str
    payload: Optional[bytes] = None
    error: Optional[Dict[str, Any]] = None
    duration_ms: float = 0.0
    init_duration_ms: Optional[float] = None
    max_memory_used_mb: Optional[int] = None
    init_failed: bool = False

    @property
    def error_type(self) -> str:
        """The errorType, or ``""`` when the invocation succeeded."""
        return str((self.error or {}).get("errorType", "")) if self.error is not None else ""

    @property
    def error_message(self) -> str:
        """The errorMessage, or ``""``."""
        return str((self.error or {}).get("errorMessage", "")) if self.error is not None else ""


@dataclass
class _Pending:
    request_id: str
    event: bytes
    deadline_ms: int
    arn: str
    client_context: Optional[str]
    done: threading.Event = field(default_factory=threading.Event)
    payload: Optional[bytes] = None
    error: Optional[Dict[str, Any]] = None


class RuntimeApi:
    """The Runtime API on ``127.0.0.1:<port>``; also a local ingest endpoint for profiles."""

    def __init__(self) -> None:
        self._events: queue.Queue[Optional[_Pending]] = queue.Queue()
        self._active: Dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self.waiting = threading.Event()  # the runtime asked for the next event
        self.init_error: Optional[Dict[str, Any]] = None
        self.init_failed = threading.Event()
        self.reports: Dict[str, bytes] = {}  # Idempotency-Key -> JSON, each stored once
        self.extensions: Dict[str, str] = {}  # Lambda-Extension-Identifier -> name, this process's
        self._initialized = False  # the runtime asked for its first event: extensions may no longer register
        self._ended = threading.Event()  # releases the extensions' event/next at the environment's end
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(_POLL_S,), daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """``host:port``, the value of ``AWS_LAMBDA_RUNTIME_API``."""
        return f"127.0.0.1:{self._server.server_port}"

    def submit(self, pending: _Pending) -> None:
        """Queue an invocation for the runtime's next ``GET .../next``."""
        with self._lock:
            self._active[pending.request_id] = pending
        self.waiting.clear()
        self._events.put(pending)

    def reset(self) -> None:
        """Forget a dead process's state: release its blocked ``next``, drop queued events."""
        old, self._events = self._events, queue.Queue()
        old.put(None)
        self.waiting.clear()
        self.init_failed.clear()
        self.init_error = None
        with self._lock:
            self._active.clear()
            self.extensions.clear()
            self._initialized = False
            ended, self._ended = self._ended, threading.Event()
        ended.set()

    def close(self) -> None:
        """Stop serving."""
        self._events.put(None)
        self._ended.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(_EXIT_WAIT_S)

    # -- called by the request handler -------------------------------------------

    def next_event(self) -> Optional[_Pending]:
        events = self._events  # a reset swaps the queue: this request then gets the old one's None
        self._initialized = True
        self.waiting.set()
        return events.get()

    def finish(self, request_id: str, payload: Optional[bytes], error: Optional[Dict[str, Any]]) -> bool:
        with self._lock:
            pending = self._active.pop(request_id, None)
        if pending is None:
            return False
        pending.payload, pending.error = payload, error
        pending.done.set()
        return True

    def register_extension(self, name: str) -> Optional[str]:
        """A new extension's identifier, or None once the init phase is over (Lambda refuses then)."""
        with self._lock:
            if self._initialized:
                return None
            identifier = str(uuid.uuid4())
            self.extensions[identifier] = name
        return identifier

    def wait_extension_event(self, identifier: str) -> bool:
        """Block an extension's ``event/next`` until the environment ends; False for an unknown extension."""
        with self._lock:
            known, ended = identifier in self.extensions, self._ended
        if known:
            ended.wait()
        return known

    def fail_init(self, error: Dict[str, Any]) -> None:
        self.init_error = error
        self.init_failed.set()


def _error_document(body: bytes, error_type: Optional[str]) -> Dict[str, Any]:
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        document = {"errorMessage": body.decode("utf-8", "replace")}
    if not isinstance(document, dict):
        document = {"errorMessage": str(document)}
    if error_type and not document.get("errorType"):
        document["errorType"] = error_type
    return document


def _handler_class(api: RuntimeApi) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the runtime client expects

        def setup(self) -> None:
            super().setup()
            # Headers and body leave in two writes: without this, Nagle and delayed ACKs add 40 ms.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self) -> None:
            if self.path == f"{EXTENSION_API}/event/next":
                return self._extension_next()
            if self.path != f"{API}/invocation/next":
                return self._reply(404, b'{"errorType":"InvalidRequest"}')
            pending = api.next_event()
            if pending is None:
                self.close_connection = True
                return self._reply(500, b'{"errorType":"Runtime.Reset"}')
            headers = {
                "Lambda-Runtime-Aws-Request-Id": pending.request_id,
                "Lambda-Runtime-Deadline-Ms": str(pending.deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": pending.arn,
                "Lambda-Runtime-Trace-Id": _trace_id(),
            }
            if pending.client_context:
                headers["Lambda-Runtime-Client-Context"] = pending.client_context
            self._reply(200, pending.event, headers)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = self.path.split("/")
            error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
            if self.path == f"{API}/init/error":
                api.fail_init(_error_document(body, error_type))
                return self._reply(202, b'{"status":"OK"}')
            if self.path.startswith(f"{API}/invocation/") and len(parts) == 6 and parts[5] in ("response", "error"):
                error = _error_document(body, error_type) if parts[5] == "error" else None
                if api.finish(parts[4], None if error else body, error):
                    return self._reply(202, b'{"status":"OK"}')
                return self._reply(400, b'{"errorType":"InvalidRequestID"}')
            if self.path == "/api/v1/ingest":
                return self._ingest(body)
            if self.path == f"{EXTENSION_API}/register":
                return self._register_extension()
            self._reply(404, b'{"errorType":"InvalidRequest"}')

        def _register_extension(self) -> None:
            name = self.headers.get("Lambda-Extension-Name")
            if not name:
                return self._reply(400, b'{"errorType":"InvalidRequest","errorMessage":"missing extension name"}')
            identifier = api.register_extension(name)
            if identifier is None:
                return self._reply(403, b'{"errorType":"Extension.InvalidState","errorMessage":"init is over"}')
            body = json.dumps({"functionName": "", "functionVersion": "$LATEST", "handler": ""}).encode()
            self._reply(200, body, {"Lambda-Extension-Identifier": identifier})

        def _extension_next(self) -> None:
            identifier = self.headers.get("Lambda-Extension-Identifier") or ""
            if not api.wait_extension_event(identifier):
                return self._reply(403, b'{"errorType":"Extension.UnknownExtensionIdentifier"}')
            self.close_connection = True
            self._reply(500, b'{"errorType":"Extension.EnvironmentEnded"}')

        def _ingest(self, body: bytes) -> None:
            key = self.headers.get("Idempotency-Key") or uuid.uuid4().hex
            try:
                data = gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip" else body
                json.loads(data)
            except (OSError, ValueError, EOFError):
                return self._reply(400, b'{"error":"invalid_profile"}')
            api.reports.setdefault(key, data)
            self._reply(202, json.dumps({"id": key}).encode())

        def _reply(self, status: int, body: bytes, headers: Optional[Dict[str, str]] = None) -> None:
            try:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the process was killed or frozen away: nothing to answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"


# -- the function --------------------------------------------------------------------


@dataclass
class FunctionConfig:
    """What Lambda knows about a function: handler, task root, layers folder, memory, timeout, env."""

    handler: str
    task_root: Path
    environment: Dict[str, str]
    opt_dir: Optional[Path] = None
    memory_mb: int = 128
    timeout_s: float = 3.0
    function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:local"


class LocalLambda:
    """One execution environment of a function: invoke it; its process starts, freezes and dies as on Lambda."""

    def __init__(
        self,
        config: FunctionConfig,
        workdir: Path,
        stdout: Union[int, IO[Any], None] = None,
        stderr: Union[int, IO[Any], None] = None,
    ) -> None:
        self.config = config
        self.workdir = workdir
        self.tmp_dir = workdir / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.api = RuntimeApi()
        self._stdout, self._stderr = stdout, stderr
        self._process: Optional[subprocess.Popen[bytes]] = None
        self._frozen = False
        self._init_ms = 0.0
        self.inits = 0

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> LocalLambda:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Shut the environment down as Lambda does (see :meth:`shutdown`) and stop the API."""
        self.shutdown()
        self.api.close()

    def shutdown(self) -> Optional[int]:
        """End the process as Lambda ends an environment; its exit status (None if none ran).

        With a registered extension: SIGTERM to the runtime process (thawed), then SIGKILL to
        whatever is left after :data:`SHUTDOWN_GRACE_S`. Without one: SIGKILL at once.
        """
        process = self._process
        if process is None:
            return None
        if process.poll() is None and self.api.extensions:
            os.kill(process.pid, signal.SIGTERM)
            self._thaw()
            try:
                process.wait(SHUTDOWN_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
        self._kill()
        return process.returncode

    @property
    def pid(self) -> Optional[int]:
        """The function process's id while it lives."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def _bootstrap(self) -> Path:
        runtime_dir = self.workdir / "var" / "runtime"
        runtime_dir.mkdir(parents=True, exist_ok=True)
        bootstrap = runtime_dir / "bootstrap"
        python = shlex.quote(sys.executable)
        bootstrap.write_text(f'#!/bin/sh\nexec {python} -m awslambdaric "$_HANDLER"\n')
        bootstrap.chmod(0o755)
        return bootstrap

    def _command(self) -> List[str]:
        command = [str(self._bootstrap())]
        wrapper = self.config.environment.get("AWS_LAMBDA_EXEC_WRAPPER")
        if wrapper:
            command.insert(0, self.map_path(wrapper))
        return command

    def map_path(self, path: str) -> str:
        """A Lambda path under ``/opt/`` as it lies here (in the layers folder); others unchanged."""
        if self.config.opt_dir is not None and (path == "/opt" or path.startswith("/opt/")):
            return str(self.config.opt_dir) + path[len("/opt") :]
        return path

    def environment(self) -> Dict[str, str]:
        """The process environment: this one's, the function's, and what Lambda sets."""
        env = dict(os.environ)
        env.update(lambda_variables(self.config.function_arn))
        env.update(self.config.environment)
        python_path = [p for p in (env.get("PYTHONPATH") or "").split(os.pathsep) if p]
        if self.config.opt_dir is not None:
            version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
            opt = self.config.opt_dir
            python_path[:0] = [str(opt / "python"), str(opt / "python" / "lib" / version / "site-packages")]
        env.update(
            AWS_LAMBDA_RUNTIME_API=self.api.address,
            LAMBDA_TASK_ROOT=str(self.config.task_root),
            LAMBDA_RUNTIME_DIR=str(self.workdir / "var" / "runtime"),
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(self.config.memory_mb),
            _HANDLER=self.config.handler,
            TMPDIR=str(self.tmp_dir),
            PYTHONPATH=os.pathsep.join(python_path),
            PYTHONUNBUFFERED="1",
        )
        return env

    def _start(self) -> Optional[InvokeResult]:
        """Start the process and wait for its init; an error result if the init failed."""
        self.api.reset()
        began = time.monotonic()
        self._process = subprocess.Popen(
            self._command(),
            cwd=self.config.task_root,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=self._stderr,
            start_new_session=True,  # its own process group: a timeout kills all of it
        )
        self._frozen = False
        self.inits += 1
        while True:
            if self.api.waiting.wait(_POLL_S):
                self._init_ms = (time.monotonic() - began) * 1000.0
                return None
            if self.api.init_failed.is_set() or self._process.poll() is not None:
                return self._init_failure("")
            if time.monotonic() - began > INIT_TIMEOUT_S:
                self._kill()
                return InvokeResult(
                    "", error=_fault("Sandbox.Timedout", f"Init timed out after {INIT_TIMEOUT_S:.2f} seconds")
                )

    def _init_failure(self, request_id: str) -> InvokeResult:
        self._wait_exit()
        error = self.api.init_error or _exit_error(self._process)
        self._kill()
        return InvokeResult(request_id, error=error)

    def _wait_exit(self) -> None:
        if self._process is not None:
            try:
                self._process.wait(_EXIT_WAIT_S)
            except subprocess.TimeoutExpired:
                pass

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # a stopped process dies of SIGKILL too
            except OSError:
                process.kill()
        process.wait(_EXIT_WAIT_S)
        self._frozen = False
        self.api.reset()

    def _freeze(self) -> None:
        if self._process is not None and self._process.poll() is None and not self._frozen:
            os.killpg(self._process.pid, signal.SIGSTOP)
            self._frozen = True
            _wait_stopped(self._process.pid)

    def _thaw(self) -> None:
        if self._process is not None and self._frozen:
            os.killpg(self._process.pid, signal.SIGCONT)
            self._frozen = False

    # -- invoking ------------------------------------------------------------------

    def invoke(self, event: Any = None, client_context: Optional[Dict[str, Any]] = None) -> InvokeResult:
        """Invoke the function once with ``event`` (JSON data, or bytes as they are)."""
        request_id = str(uuid.uuid4())
        init_ms: Optional[float] = None
        if self._process is None or self._process.poll() is not None:
            failed = self._start()
            if failed is not None:
                failed.request_id, failed.init_failed = request_id, True
                return failed
            init_ms = self._init_ms
        body = event if isinstance(event, bytes) else json.dumps({} if event is None else event).encode("utf-8")
        deadline_ms = int((time.time() + self.config.timeout_s) * 1000)
        context = _encode_client_context(client_context)
        pending = _Pending(request_id, body, deadline_ms, self.config.function_arn, context)
        began = time.monotonic()
        self.api.submit(pending)
        self._thaw()
        result = self._await(pending, began)
        result.init_duration_ms = init_ms
        return result

    def _await(self, pending: _Pending, began: float) -> InvokeResult:
        limit = began + self.config.timeout_s
        process = self._process
        assert process is not None
        while not pending.done.wait(_POLL_S):
            elapsed_ms = (time.monotonic() - began) * 1000.0
            if process.poll() is not None:
                return InvokeResult(
                    pending.request_id, error=_exit_error(process, pending.request_id), duration_ms=elapsed_ms
                )
            if time.monotonic() >= limit:
                self._kill()  # the sandbox is reset: the next invocation is a cold start
                message = (
                    f"RequestId: {pending.request_id} Error: Task timed out after {self.config.timeout_s:.2f} seconds"
                )
                return InvokeResult(
                    pending.request_id, error=_fault("Sandbox.Timedout", message), duration_ms=elapsed_ms
                )
        duration = (time.monotonic() - began) * 1000.0
        result = InvokeResult(pending.request_id, pending.payload, pending.error, duration)
        self._settle(result)
        return result

    def _settle(self, result: InvokeResult) -> None:
        """Wait for the runtime to ask for the next event, then freeze it; enforce the memory size."""
        process = self._process
        while process is not None and process.poll() is None and not self.api.waiting.wait(_POLL_S):
            pass
        if process is None or process.poll() is not None:
            self._kill()
            return
        result.max_memory_used_mb = peak_rss_mb(process.pid)
        if result.max_memory_used_mb is not None and result.max_memory_used_mb > self.config.memory_mb:
            self._kill()
            limit = self.config.memory_mb
            message = (
                f"RequestId: {result.request_id} Error: Runtime exited with error: signal: killed "
                f"(memory size {limit} MB exceeded)"
            )
            result.payload, result.error = None, _fault("Runtime.OutOfMemory", message)
            return
        self._freeze()

    @property
    def frozen(self) -> bool:
        """Whether the process is stopped between invocations."""
        return self._frozen


def lambda_variables(function_arn: str) -> Dict[str, str]:
    """The variables Lambda sets for a function (name, version, region, runtime, logs), from its ARN."""
    parts = function_arn.split(":")
    region = parts[3] if len(parts) > 6 else "us-east-1"
    name = parts[6] if len(parts) > 6 else "local"
    today = time.strftime("%Y/%m/%d", time.gmtime())
    return {
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"{today}/[$LATEST]{uuid.uuid4().hex}",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info[0]}.{sys.version_info[1]}",
    }


def _encode_client_context(client_context: Optional[Dict[str, Any]]) -> Optional[str]:
    return json.dumps(client_context) if client_context else None


def _fault(error_type: str, message: str) -> Dict[str, Any]:
    return {"errorType": error_type, "errorMessage": message}


def _exit_error(process: Optional[subprocess.Popen[bytes]], request_id: str = "") -> Dict[str, Any]:
    code = process.poll() if process is not None else None
    how = (
        f"signal: {signal.Signals(-code).name.lower()[3:]}" if code is not None and code < 0 else f"exit status {code}"
    )
    prefix = f"RequestId: {request_id} Error: " if request_id else ""
    return _fault("Runtime.ExitError", f"{prefix}Runtime exited with error: {how}")


def _wait_stopped(pid: int, timeout_s: float = 1.0) -> None:
    """Return once ``pid`` is stopped (a signal is delivered asynchronously), or after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] in ("T", "t", "Z", "X"):
                    return
        except (OSError, IndexError):
            return  # no /proc, or the process is gone
        time.sleep(0.0002)


def peak_rss_mb(pid: int) -> Optional[int]:
    """The process's peak resident set size (VmHWM) in MiB, rounded up; None where unknown."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return -(-int(line.split()[1]) // 1024)
    except (OSError, ValueError, IndexError):
        return None
    return None
