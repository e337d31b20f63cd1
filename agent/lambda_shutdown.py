"""Deliver the last samples when Lambda shuts a sandbox down: an internal extension and SIGTERM.

Lambda sends the runtime process SIGTERM before it ends an execution environment, but only when
the function has at least one registered extension; then it waits a moment (500 ms for a runtime
with an internal extension) and sends SIGKILL. During its init phase the layer's entry therefore
registers greenflame as an *internal* extension through the Extensions API
(``POST http://$AWS_LAMBDA_RUNTIME_API/2020-01-01/extension/register``, with no events: internal
extensions cannot subscribe to SHUTDOWN, registering is what matters), sends the extension's
``event/next`` call as the API requires and leaves it open (no thread waits on it), and catches
SIGTERM.

On SIGTERM the samples since the last report are flushed within :data:`SHUTDOWN_BUDGET_S`, so the
report reaches the server (or the outbox) before the SIGKILL. The flush runs on a watcher thread
woken through :func:`signal.set_wakeup_fd`, because the Python-level handler only runs when the
main thread returns to the interpreter, which the runtime client on python3.9-3.11 does not do
while it waits for the next event (3.12 and later poll on a thread). After the flush the process
ends as SIGTERM would have ended it, or a SIGTERM handler the function installed before is called.

Standard library only; nothing here may raise into the runtime.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import urllib.request

from . import own_threads
from .guard import guard, guarded

# mypy treats any name TYPE_CHECKING as true; typing is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType
    from typing import Any, Callable, Optional

__all__ = ["EXTENSION_NAME", "SHUTDOWN_BUDGET_S", "THREAD_NAME", "install"]

EXTENSION_API = "/2020-01-01/extension"
EXTENSION_NAME = "greenflame"
#: Seconds the final flush may take: Lambda allows the runtime 500 ms with an internal extension.
SHUTDOWN_BUDGET_S = 0.4
#: The one thread this module starts (it waits for SIGTERM; idle until then).
THREAD_NAME = "greenflame-shutdown"
_REGISTER_TIMEOUT_S = 1.0
#: After a wake-up that was not SIGTERM, the watcher waits this long before reading again: every
#: signal with a Python handler (the sampler's SIGPROF, 100 a second) writes to the wake-up fd, and
#: each wake takes the GIL (and costs more than a sample: see benchmarks/lambda/README.md). A
#: SIGTERM read at once after a pause may have waited that long: the flush gets that much less.
WAKE_PAUSE_S = 0.15
#: A read that returns within this of the pause's end found its bytes already there.
_AT_ONCE_S = 0.002
#: Exit status of a process ended by SIGTERM, as a shell reports it.
_SIGTERM_STATUS = 128 + int(signal.SIGTERM)


class _Shutdown:
    """Flushes once on SIGTERM (whichever thread sees it first), then ends the process as SIGTERM would."""

    def __init__(self, flush: Callable[[float], Any], previous: Any) -> None:
        self._flush = flush
        self._previous = previous
        self._lock = threading.Lock()
        self._done = threading.Event()
        self.pending_next: Optional[socket.socket] = None  # the extension's open event/next call

    def run_once(self, budget_s: float = SHUTDOWN_BUDGET_S) -> None:
        if not self._lock.acquire(blocking=False):
            self._done.wait(budget_s)  # the other thread is flushing
            return
        try:
            with guard("lambda shutdown flush"):
                self._flush(budget_s)
        finally:
            self._done.set()

    def on_signal(self, signum: int, frame: Optional[FrameType]) -> None:
        """The Python-level SIGTERM handler (main thread)."""
        self.run_once()
        if callable(self._previous):
            self._previous(signum, frame)
        elif self._previous in (signal.SIG_DFL, None):
            os._exit(_SIGTERM_STATUS)

    def watch(self, wakeup: int) -> None:
        """The watcher thread: woken by any signal that has a Python handler; acts on SIGTERM."""
        resumed = -1.0  # when the last pause ended
        while True:
            try:
                data = os.read(wakeup, 64)
            except OSError:
                return
            if not data:
                return
            if int(signal.SIGTERM) in data:
                late = WAKE_PAUSE_S if time.monotonic() - resumed < _AT_ONCE_S else 0.0
                self.run_once(SHUTDOWN_BUDGET_S - late)
                if self._ends_process(signal.getsignal(signal.SIGTERM)):
                    os._exit(_SIGTERM_STATUS)
                return  # the function's own handler runs on the main thread, when it can
            time.sleep(WAKE_PAUSE_S)
            resumed = time.monotonic()

    def _ends_process(self, handler: Any) -> bool:
        """Whether SIGTERM would end the process once flushed: ours is the handler, and it had none before.

        A handler the function set after ours (during its import) is left to run on the main thread.
        """
        return handler == self.on_signal and self._previous in (signal.SIG_DFL, None)


def _register(api: str) -> Optional[str]:
    """Register an internal extension with no events; its identifier, or None if refused."""
    request = urllib.request.Request(
        f"http://{api}{EXTENSION_API}/register",
        data=json.dumps({"events": []}).encode(),
        headers={"Lambda-Extension-Name": EXTENSION_NAME, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=_REGISTER_TIMEOUT_S) as response:
        identifier = response.headers.get("Lambda-Extension-Identifier")
    return str(identifier) if identifier else None


def _open_next(api: str, identifier: str) -> socket.socket:
    """Call the extension's ``event/next`` and leave it open (it answers only at the end), with no thread."""
    host, _, port = api.rpartition(":")
    connection = socket.create_connection((host, int(port)), timeout=_REGISTER_TIMEOUT_S)
    request = (
        f"GET {EXTENSION_API}/event/next HTTP/1.1\r\nHost: {api}\r\nLambda-Extension-Identifier: {identifier}\r\n\r\n"
    )
    connection.sendall(request.encode("ascii"))
    return connection


@guarded("lambda shutdown", default=False)
def install(flush: Callable[[float], Any], env: Optional[dict] = None) -> bool:
    """Register the extension and catch SIGTERM so that ``flush(budget_s)`` runs at shutdown; whether it did.

    Call it from the main thread during the init phase (the layer's entry does); elsewhere, or
    outside Lambda (no ``AWS_LAMBDA_RUNTIME_API``), it does nothing.
    """
    environ = os.environ if env is None else env
    api = environ.get("AWS_LAMBDA_RUNTIME_API")
    if not api or threading.current_thread() is not threading.main_thread():
        return False
    identifier = _register(api)
    if identifier is None:
        return False
    shutdown = _Shutdown(flush, signal.getsignal(signal.SIGTERM))
    shutdown.pending_next = _open_next(api, identifier)
    signal.signal(signal.SIGTERM, shutdown.on_signal)
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    previous_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    if previous_fd != -1:
        # Someone else's wakeup descriptor (an event loop): keep it, rely on the main-thread handler.
        signal.set_wakeup_fd(previous_fd)
        os.close(read_end)
        os.close(write_end)
        return True
    own_threads.start(threading.Thread(target=shutdown.watch, args=(read_end,), name=THREAD_NAME))
    return True
