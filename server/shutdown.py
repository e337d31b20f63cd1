"""Graceful shutdown of ``greenflame serve``: stop accepting, finish what is in flight, then stop.

waitress's own stop (SystemExit in its loop) ends the loop at once: a report whose row was
committed may never get its 202 back, and requests queued for a thread are cancelled. Here the
loop runs until :func:`run_until_stopped` is told to stop (a signal handler sets an event),
then it drains:

1. the listening sockets close, so new connections are refused (a load balancer's probe
   fails and it sends the traffic elsewhere);
2. what already arrived on open connections is read; a connection with a request under way
   (being received, queued or being answered) is *in flight*: its request is served in full and
   its answer sent, then it is closed; every other connection (idle keep-alive) is closed at
   once, so no request starts on it after the shutdown began;
3. when no connection is left, or after ``drain_s`` seconds, the threads stop.

An ingest that was acknowledged (202) was committed first, so a drain cut short by its
deadline (or a kill) loses no acknowledged report; it only leaves clients without an answer to
retry with their idempotency key.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List

from waitress import wasyncore
from waitress.channel import HTTPChannel

from .slow_clients import listeners

log = logging.getLogger(__name__)

#: How long one turn of the loop waits for socket events (bounds the reaction to a stop).
LOOP_TIMEOUT_S = 0.5
#: Turns of the loop while draining wait at most this long.
DRAIN_TURN_S = 0.05


def run_until_stopped(server: Any, stop: threading.Event, drain_s: float) -> None:
    """Serve with waitress ``server`` until ``stop`` is set, then drain for at most ``drain_s`` seconds."""
    sockets = _socket_map(server)
    while not stop.is_set():
        wasyncore.loop(timeout=LOOP_TIMEOUT_S, map=sockets, use_poll=True, count=1)
    started = time.monotonic()
    for listener in listeners(server):
        listener.accepting = False
        wasyncore.dispatcher.close(listener)  # the listening socket only (its trigger still wakes the loop)
    wasyncore.loop(timeout=0, map=sockets, use_poll=True, count=1)  # read what has already arrived
    in_flight = [channel for channel in _channels(sockets) if _busy(channel)]
    log.info("shutting down: %d request(s) in flight, new connections refused", len(in_flight))
    deadline = started + drain_s
    while time.monotonic() < deadline:
        open_channels = _channels(sockets)
        if not open_channels:
            break
        for channel in open_channels:
            if not _busy(channel):
                channel.will_close = True  # closed by the next turn (its answer, if any, flushed)
        wasyncore.loop(timeout=DRAIN_TURN_S, map=sockets, use_poll=True, count=1)
    left = _channels(sockets)
    if left:
        log.warning("shutdown: %d connection(s) still busy after %.0f s; closing them", len(left), drain_s)
    server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
    wasyncore.close_all(sockets)


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Set ``stop`` on SIGTERM or SIGINT (a serving loop or worker then finishes and returns)."""

    def handle(signum: int, _frame: Any) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _socket_map(server: Any) -> Dict[int, Any]:
    found: Dict[int, Any] = server.map if hasattr(server, "effective_listen") and server.map else server._map
    return found


def _channels(sockets: Dict[int, Any]) -> List[HTTPChannel]:
    return [item for item in list(sockets.values()) if isinstance(item, HTTPChannel)]


def _busy(channel: Any) -> bool:
    """Whether a request is being received, queued, served or its answer sent on ``channel``."""
    return bool(
        channel.requests
        or channel.request is not None
        or channel.total_outbufs_len
        or getattr(channel, "lingering_until", None) is not None
    )
