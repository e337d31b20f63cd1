"""Graceful shutdown and several serving processes: real ``greenflame serve`` processes and sockets.

SIGTERM must let a request in flight finish (its 202 reaches the client and its report is
stored) while new connections are refused and idle ones closed; with ``GREENFLAME_PROCESSES``
the same holds for every process, and a process that dies is replaced.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Dict, List, Set, Tuple
from urllib.parse import urlsplit

import pytest
import requests
from support.server import LiveServer, make_profile, start_server, unique_name, wait_for

from greenflame.analyzer.formats import greenflame_json
from greenflame.server.storage import Storage

CLIENTS = 4


def address(server: LiveServer) -> Tuple[str, int]:
    parts = urlsplit(server.url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def refused(server: LiveServer) -> bool:
    """Whether a new connection to the server is refused (its listening socket is closed)."""
    try:
        socket.create_connection(address(server), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def ingest_request(server: LiveServer, key: str, group: str) -> bytes:
    """A whole ingest request for one new report, as bytes on the wire."""
    body = gzip.compress(greenflame_json.dumps(make_profile(group, time.time_ns() - 120 * 10**9)))
    host, port = address(server)
    head = (
        f"POST /api/v1/ingest HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Encoding: gzip\r\nIdempotency-Key: {uuid.uuid4().hex}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


def read_answer(conn: socket.socket) -> bytes:
    conn.settimeout(30)
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        answer += chunk
    return answer


def stored_ids(data_dir: Path, group: str) -> List[str]:
    storage = Storage.open(f"sqlite:///{data_dir / 'greenflame.db'}", str(data_dir / "profiles"))
    try:
        return [row.id for row in storage.find_profiles(group)]
    finally:
        storage.close()


@pytest.mark.parametrize("processes", [1, 2])
def test_sigterm_finishes_the_request_in_flight_and_refuses_new_ones(tmp_path: Path, processes: int) -> None:
    server = start_server(tmp_path / "data", {"GREENFLAME_PROCESSES": str(processes)})
    group = unique_name("drain")
    key = server.create_group(group)
    idle = socket.create_connection(address(server), timeout=10)  # a keep-alive connection with nothing sent
    busy = socket.create_connection(address(server), timeout=10)
    request = ingest_request(server, key, group)
    busy.sendall(request[: len(request) // 2])  # half the report: a request in flight
    time.sleep(0.5)  # both connections accepted (by whichever process) before the signal
    server.process.send_signal(signal.SIGTERM)
    wait_for("new connections refused", lambda: refused(server))
    busy.sendall(request[len(request) // 2 :])
    answer = read_answer(busy)
    assert answer.startswith(b"HTTP/1.1 202"), answer[:200]
    profile_id = json.loads(answer.split(b"\r\n\r\n", 1)[1])["id"]
    idle.settimeout(10)
    assert idle.recv(1) == b""  # the idle connection was closed, with no answer
    assert server.process.wait(30) == 0
    assert "greenflame server stopped" in server.log()
    assert profile_id in stored_ids(tmp_path / "data", group)


def _post(server: LiveServer, key: str, group: str, outcomes: Dict[str, List[str]], stop: threading.Event) -> None:
    session = requests.Session()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Content-Encoding": "gzip"}
    while not stop.is_set():
        body = gzip.compress(greenflame_json.dumps(make_profile(group, time.time_ns() - 120 * 10**9)))
        try:
            response = session.post(
                server.api("/api/v1/ingest"), data=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex}
            )
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as error:
            # refused, or cut (a process killed while it answered cuts the answer it was sending)
            outcomes["refused" if "refused" in str(error).lower() else "closed"].append(str(error))
            session = requests.Session()
            continue
        outcomes[str(response.status_code)].append(response.json().get("id", response.text))


def serving(children: Path) -> Set[int]:
    """The server's child processes."""
    return {int(pid) for pid in children.read_text().split()}


def test_processes_share_the_load_survive_a_dead_one_and_drain_on_sigterm(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", {"GREENFLAME_PROCESSES": "2"})
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    first = sorted(serving(children))
    assert len(first) == 2
    group = unique_name("procs")
    key = server.create_group(group)
    outcomes: Dict[str, List[str]] = {"202": [], "refused": [], "closed": []}
    stop = threading.Event()
    clients = [threading.Thread(target=_post, args=(server, key, group, outcomes, stop)) for _ in range(CLIENTS)]
    for client in clients:
        client.start()
    try:
        wait_for("20 reports accepted", lambda: len(outcomes["202"]) >= 20)
        os.kill(first[0], signal.SIGKILL)  # a serving process dies: another takes its place
        wait_for("a new process in its place", lambda: len(serving(children) - {first[0]}) == 2)
        accepted = len(outcomes["202"])
        wait_for("more reports accepted", lambda: len(outcomes["202"]) >= accepted + 20)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(60) == 0
    finally:
        stop.set()
        for client in clients:
            client.join(60)
    unexpected = {status: found for status, found in outcomes.items() if status not in ("202", "refused", "closed")}
    assert not unexpected, {status: found[:3] for status, found in unexpected.items()}
    assert set(outcomes["202"]) <= set(stored_ids(tmp_path / "data", group))
