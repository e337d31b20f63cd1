"""Slow clients (issue 17, item 4): connections trickling a body must not make the server unreachable."""

from __future__ import annotations

import socket
import time
from typing import Callable, List
from urllib.parse import urlsplit

import pytest
import requests

from greenflame.server.slow_clients import overdue
from tests.support.server import LiveServer

SLOW_HEAD = (
    b"POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Authorization: Bearer nobody\r\nContent-Length: 100000\r\n\r\n"
)


def _open_slow(server: LiveServer, count: int, head: bytes = SLOW_HEAD) -> List[socket.socket]:
    address = urlsplit(server.url)
    sockets = []
    for _ in range(count):
        conn = socket.create_connection((address.hostname, address.port), timeout=5)
        conn.sendall(head)
        sockets.append(conn)
    return sockets


def _trickle(sockets: List[socket.socket], seconds: float) -> int:
    """Send one byte a second on each socket for ``seconds``; return how many the server closed."""
    closed = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for conn in sockets:
            if conn in closed:
                continue
            try:
                conn.sendall(b"x")
            except OSError:
                closed.add(conn)
        time.sleep(1)
    return len(closed)


def _health_seconds(server: LiveServer) -> float:
    started = time.monotonic()
    response = requests.get(server.api("/api/v1/health"), timeout=5)
    assert response.status_code == 200
    return time.monotonic() - started


def test_a_hundred_slow_connections_leave_the_server_reachable(server_factory: Callable[..., LiveServer]) -> None:
    server = server_factory()
    sockets = _open_slow(server, 100)
    try:
        _trickle(sockets, 2)
        assert _health_seconds(server) < 3
    finally:
        for conn in sockets:
            conn.close()


def test_slow_requests_are_closed_at_their_deadline(server_factory: Callable[..., LiveServer]) -> None:
    env = {"GREENFLAME_CONNECTION_LIMIT": "30", "GREENFLAME_HEADERS_TIMEOUT_S": "1", "GREENFLAME_BODY_TIMEOUT_S": "2"}
    server = server_factory(env=env)
    bodies = _open_slow(server, 25)
    headers = _open_slow(server, 25, head=b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")
    try:
        # 50 connections against a limit of 30: the server stops accepting until the deadlines free slots.
        closed = _trickle(bodies + headers, 9)
        assert closed == 50
        assert _health_seconds(server) < 3
    finally:
        for conn in bodies + headers:
            conn.close()


def _send_chunked(server: LiveServer, total: int) -> bytes:
    """POST ``total`` bytes in 500-byte chunks as fast as possible; return the start of the answer."""
    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as conn:
        conn.sendall(
            b"POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"1f4\r\n" + b"a" * 500 + b"\r\n"
        try:
            for _ in range(total // 500):
                conn.sendall(chunk)
            conn.sendall(b"0\r\n\r\n")
        except BrokenPipeError:
            pass  # the server answered and stopped reading: its answer must still be there to read
        return conn.recv(200)


def test_a_chunked_body_over_the_limit_gets_413_not_a_reset(server_factory: Callable[..., LiveServer]) -> None:
    server = server_factory(env={"GREENFLAME_MAX_UPLOAD_BYTES": "1000"})
    assert _send_chunked(server, 20_000_000).startswith(b"HTTP/1.1 413 ")
    assert _health_seconds(server) < 3


class _Request:
    def __init__(self, headers_finished: bool, completed: bool = False) -> None:
        self.headers_finished, self.completed = headers_finished, completed


class _Channel:
    def __init__(self, request: object, started: float) -> None:
        self.request, self.request_started = request, started


@pytest.mark.parametrize(
    ("request_", "age", "expected"),
    [
        (None, 100.0, False),
        (_Request(headers_finished=False), 9.0, False),
        (_Request(headers_finished=False), 11.0, True),
        (_Request(headers_finished=True), 11.0, False),
        (_Request(headers_finished=True), 61.0, True),
        (_Request(headers_finished=True, completed=True), 61.0, False),
    ],
)
def test_overdue(request_: object, age: float, expected: bool) -> None:
    assert overdue(_Channel(request_, 1000.0), 1000.0 + age, 10, 60) is expected


def test_a_lingering_close_ends_at_its_deadline() -> None:
    channel = _Channel(None, 0.0)
    channel.lingering_until = 5.0  # type: ignore[attr-defined]
    assert not overdue(channel, 4.0, 10, 60) and overdue(channel, 6.0, 10, 60)
