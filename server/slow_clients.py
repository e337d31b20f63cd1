"""Deadlines for slow clients on waitress: a request must arrive in time, not just keep trickling.

waitress closes a connection only after ``channel_timeout`` seconds with *no* activity, so a
client sending one byte a second holds its connection (and one of ``connection_limit`` slots)
for ever. Here each connection remembers when its current request began; the server's periodic
maintenance closes connections whose headers took longer than the headers timeout or whose
whole request took longer than the body timeout.
"""

from __future__ import annotations

import time
from typing import Any, Iterable, List, Optional

from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, MultiSocketServer


class DeadlineChannel(HTTPChannel):  # type: ignore[misc]
    """An HTTP connection that notes when its current request's first byte arrived."""

    request_started: Optional[float] = None

    def received(self, data: bytes) -> bool:
        if data and self.request is None:
            self.request_started = time.monotonic()
        result: bool = super().received(data)
        return result


def overdue(channel: Any, now: float, headers_timeout_s: float, body_timeout_s: float) -> bool:
    """Whether ``channel``'s request in progress has outlived its deadline."""
    request, started = channel.request, getattr(channel, "request_started", None)
    if request is None or started is None or request.completed:
        return False
    limit = body_timeout_s if request.headers_finished else headers_timeout_s
    return now - started > limit


def enforce_deadlines(server: Any, headers_timeout_s: float, body_timeout_s: float) -> None:
    """Make every listening socket of a waitress ``server`` close connections that are too slow."""
    for listener in _listeners(server):
        listener.channel_class = DeadlineChannel
        listener.maintenance = _maintenance(listener, headers_timeout_s, body_timeout_s)


def _listeners(server: Any) -> List[BaseWSGIServer]:
    if isinstance(server, MultiSocketServer):
        found: Iterable[Any] = server.map.values()
        return [item for item in found if isinstance(item, BaseWSGIServer)]
    return [server]


def _maintenance(listener: BaseWSGIServer, headers_timeout_s: float, body_timeout_s: float) -> Any:
    idle_check = listener.maintenance

    def maintenance(now: float) -> None:
        idle_check(now)  # waitress's own: idle connections past channel_timeout
        clock = time.monotonic()
        for channel in list(listener.active_channels.values()):
            if overdue(channel, clock, headers_timeout_s, body_timeout_s):
                channel.will_close = True

    return maintenance
