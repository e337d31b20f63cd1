"""Several ``greenflame serve`` processes on one machine, sharing one listening socket.

With ``GREENFLAME_PROCESSES=N`` (N > 1) the first process upgrades the database, makes the
admin token and the secret key (so the others never race to create them), binds the address,
and forks N children before any thread starts. Each child builds its own app (database pool,
caches, analysis threads) and serves the inherited socket: the kernel gives each new
connection to one of the processes waiting in ``accept``. Python runs one thread of a
process at a time, so this is how one machine's cores serve requests in parallel.

The parent only supervises: a child that dies is started again (after a pause, so a child
failing at start does not spin), and SIGTERM or SIGINT is passed to every child, which
drains (:mod:`.shutdown`); the parent closes its copy of the socket at once, and the
socket stops accepting when the last child has closed its copy.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from typing import Callable, Dict, List

from .crypto import key_folder, secret_box
from .db import make_engine, upgrade_database
from .settings import Settings
from .shutdown import stop_on_signals

log = logging.getLogger(__name__)

#: A child that exited is started again after this pause.
RESTART_PAUSE_S = 1.0
POLL_S = 0.2
BACKLOG = 2048

ServeApp = Callable[[Settings, List[socket.socket]], int]


def serve_processes(settings: Settings, serve_app: ServeApp) -> int:
    """Run ``settings.processes`` children of ``serve_app`` on one socket until SIGTERM or SIGINT."""
    _prepare(settings)
    listener = _listen(settings)
    host, port = listener.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    children: Dict[int, int] = {}  # pid -> slot
    stop = threading.Event()
    with stop_on_signals(stop):
        for slot in range(settings.processes):
            children[_fork(settings, serve_app, listener)] = slot
        print(f"greenflame server listening on http://{shown}:{port}/ ({settings.processes} processes)", flush=True)
        _supervise(settings, serve_app, listener, children, stop)
    listener.close()
    _stop_children(children, settings.shutdown_timeout_s + 10.0)
    print("greenflame server stopped", flush=True)
    return 0


def _prepare(settings: Settings) -> None:
    """What every child would otherwise do at once at start: upgrade the schema, make the secret key."""
    engine = make_engine(settings.resolved_database_url())
    try:
        upgrade_database(engine)
    finally:
        engine.dispose()
    secret_box(settings.secret_keys, key_folder(settings.resolved_database_url(), settings.data_path))


def _listen(settings: Settings) -> socket.socket:
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    try:
        return socket.create_server((settings.host, settings.port), family=family, backlog=BACKLOG)
    except OSError as error:
        from greenflame.analyzer.errors import UserError

        reason = error.strerror or str(error)
        raise UserError(f"cannot listen on {settings.host}:{settings.port}: {reason}") from None


def _fork(settings: Settings, serve_app: ServeApp, listener: socket.socket) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        code = serve_app(settings, [listener])
    except BaseException:
        log.exception("server process %d failed", os.getpid())
    finally:
        os._exit(code)  # never return into the parent's code


def _supervise(
    settings: Settings, serve_app: ServeApp, listener: socket.socket, children: Dict[int, int], stop: threading.Event
) -> None:
    while not stop.wait(POLL_S):
        for pid in list(children):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done == 0:
                continue
            slot = children.pop(pid)
            log.error("server process %d exited (status %d); starting another", pid, status)
            if stop.wait(RESTART_PAUSE_S):
                return
            children[_fork(settings, serve_app, listener)] = slot


def _stop_children(children: Dict[int, int], timeout_s: float) -> None:
    for pid in children:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for pid in children:
        while time.monotonic() < deadline:
            done, _status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(POLL_S)
        else:
            _signal(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
