"""Deadlines for slow clients on waitress: a request must arrive in time, not just keep trickling.

waitress closes a connection only after ``channel_timeout`` seconds with *no* activity, so a
client sending one byte a second holds its connection (and one of ``connection_limit`` slots)
for ever. Here each connection remembers when its current request began; the server's periodic
maintenance closes connections whose headers took longer than the headers timeout or whose
whole request took longer than the body timeout.

A connection closed while the client is still sending (a 413 for a chunked body over the
limit) gets a lingering close: the answer is sent, the sending side shut, and what the client
still sends is read and dropped for a moment, so the client reads the 413 instead of a reset.
"""

from __future__ import annotations

import socket
import time
from typing import Any, Iterable, List, Optional

from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, MultiSocketServer

#: A lingering close ends after this long without input from the client...
LINGER_IDLE_S = 5.0
#: ...and after this long in all, however steadily the client keeps sending (as nginx's
#: ``lingering_timeout`` and ``lingering_time``).
LINGER_MAX_S = 30.0


class DeadlineChannel(HTTPChannel):
    """An HTTP connection that notes when its current request's first byte arrived, and closes
    gracefully (lingering) when the client is still sending."""

    request_started: Optional[float] = None
    lingering_until: Optional[float] = None
    linger_ends: float = 0.0
    #: Set when the connection missed its deadline: it is closed at once, with no lingering.
    expired = False

    def received(self, data: bytes) -> bool:
        if data and self.request is None:
            self.request_started = time.monotonic()
        result: bool = super().received(data)
        return result

    def handle_close(self) -> None:
        sock = self.socket
        graceful = not self.expired and self.lingering_until is None and self.connected
        if sock is not None and graceful and _unread_input(sock):
            # Closing a socket with unread input sends a reset, which can destroy the answer
            # (a 413) before the client reads it: shut our side and drain theirs for a moment.
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                super().handle_close()
                return
            now = time.monotonic()
            self.lingering_until, self.linger_ends = now + LINGER_IDLE_S, now + LINGER_MAX_S
            self.will_close = self.close_when_flushed = False
            return
        super().handle_close()

    def readable(self) -> bool:
        return True if self.lingering_until is not None else bool(super().readable())

    def writable(self) -> bool:
        return bool(self.will_close) if self.lingering_until is not None else bool(super().writable())

    def handle_read(self) -> None:
        if self.lingering_until is None:
            super().handle_read()
            return
        try:
            data = self.recv(64 * 1024)  # dropped; an empty read means the client is done (closed)
        except OSError:
            data = b""
        now = time.monotonic()
        if (not data or now > self.linger_ends) and self.connected:
            super().handle_close()
            return
        self.lingering_until = min(now + LINGER_IDLE_S, self.linger_ends)  # still sending: keep draining


def _unread_input(sock: socket.socket) -> bool:
    try:
        return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except OSError:  # nothing waiting (EAGAIN), or the socket is already gone
        return False


def overdue(channel: Any, now: float, headers_timeout_s: float, body_timeout_s: float) -> bool:
    """Whether ``channel``'s request in progress (or its lingering close) has outlived its deadline."""
    lingering_until = getattr(channel, "lingering_until", None)
    if lingering_until is not None:
        return now > lingering_until
    request, started = channel.request, getattr(channel, "request_started", None)
    if request is None or started is None or request.completed:
        return False
    limit = body_timeout_s if request.headers_finished else headers_timeout_s
    return now - started > limit


def enforce_deadlines(server: Any, headers_timeout_s: float, body_timeout_s: float) -> None:
    """Make every listening socket of a waitress ``server`` close connections that are too slow."""
    for listener in listeners(server):
        listener.channel_class = DeadlineChannel
        listener.maintenance = _maintenance(listener, headers_timeout_s, body_timeout_s)


def listeners(server: Any) -> List[Any]:
    """The waitress servers (one per listening socket) behind ``server``."""
    if isinstance(server, MultiSocketServer):
        found: Iterable[Any] = (server.map or {}).values()
        return [item for item in found if isinstance(item, BaseWSGIServer)]
    return [server]


def _maintenance(listener: Any, headers_timeout_s: float, body_timeout_s: float) -> Any:
    idle_check = listener.maintenance

    def maintenance(now: Any) -> None:
        idle_check(now)  # waitress's own: idle connections past channel_timeout
        clock = time.monotonic()
        for channel in list(listener.active_channels.values()):
            if overdue(channel, clock, headers_timeout_s, body_timeout_s):
                channel.expired = channel.will_close = True

    return maintenance
