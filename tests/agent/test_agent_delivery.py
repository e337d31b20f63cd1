"""Delivery when the server is down, slow, failing or talking garbage: the host is never blocked,
memory and disk stay bounded, and the spool replays everything it kept once the server is back."""

from __future__ import annotations

import gzip
import json
import os
import socket
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest
from support.agent import IngestServer, _handler_for

import greenflame.agent as agent
from greenflame.agent.aggregator import Aggregator
from greenflame.agent.drops import DropCounter
from greenflame.agent.exporters import ExportError, HttpExporter
from greenflame.agent.spool import Spool


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def report(n: int) -> Dict[str, Any]:
    aggregator = Aggregator(10, DropCounter())
    aggregator.add([(((f"f{n}", "app.py", n),), (), 1, 0)])
    return aggregator.drain("svc", 10_000_000, {"report_id": f"report-{n}", "dropped": {}})


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.fixture
def garbage_server() -> Iterator[str]:
    """A TCP server that answers every connection with bytes that are not HTTP."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    conn.recv(65536)
                    conn.sendall(b"\x00\xffthis is not HTTP\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def start_ingest_on(port: int) -> tuple:
    state = IngestServer(url=f"http://127.0.0.1:{port}")
    httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(state))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return state, httpd, thread


def test_server_down_then_back_replays_the_spool_with_the_same_keys(tmp_path: Path) -> None:
    port = free_port()
    spool = Spool(str(tmp_path / "spool"), 10_000_000, DropCounter())
    http = HttpExporter(f"http://127.0.0.1:{port}", None, 0.5, "ua", spool)
    for n in range(3):
        with pytest.raises(ExportError) as caught:
            http.export(report(n), time.monotonic() + 1)
        assert caught.value.spooled and caught.value.reason == "export_failed"
    assert len(spool.pending()) == 3
    state, httpd, thread = start_ingest_on(port)
    try:
        http.export(report(3), time.monotonic() + 10)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
    keys = [r.headers["Idempotency-Key"] for r in state.received]
    assert keys == ["report-3", "report-0", "report-1", "report-2"]  # the new one, then the oldest first
    assert [r.report()["frames"][0]["function"] for r in state.received] == ["f3", "f0", "f1", "f2"]
    assert spool.pending() == []


def test_the_spool_keeps_the_newest_reports_within_its_cap_and_counts_the_rest(tmp_path: Path) -> None:
    drops = DropCounter()
    body = gzip.compress(b"x" * 1000)
    spool = Spool(str(tmp_path), 3 * len(body) + 10, drops)
    for n in range(10):
        assert spool.put(body, f"key-{n}")
    kept = [os.path.basename(p).split("-", 1)[1] for p in spool.pending()]
    assert kept == ["key-7.json.gz", "key-8.json.gz", "key-9.json.gz"]
    assert spool.size() <= spool.max_bytes
    assert drops.take() == {"spool_full": 7}
    assert not spool.put(b"y" * (spool.max_bytes + 1), "too-big")
    assert drops.take() == {"spool_full": 1}


def test_a_rejected_replay_is_dropped_and_counted(tmp_path: Path, ingest_server: IngestServer) -> None:
    drops = DropCounter()
    spool = Spool(str(tmp_path), 10_000_000, drops)
    spool.put(gzip.compress(b"{}"), "old")
    ingest_server.script((202, {}, 0.0), (400, {}, 0.0))
    HttpExporter(ingest_server.url, None, 2, "ua", spool).export(report(1), time.monotonic() + 10)
    assert spool.pending() == [] and drops.take() == {"spool_rejected": 1}


def test_a_dead_senders_claim_is_released(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path), 10_000_000, DropCounter())
    spool.put(b"body", "k")
    [path] = spool.pending()
    os.rename(path, f"{path}.999999999.claim")  # claimed by a process that no longer exists
    assert spool.pending() == [path]


@pytest.mark.parametrize("failure", ["down", "500", "garbage"])
def test_the_host_keeps_working_and_nothing_is_lost_up_to_the_cap(
    failure: str, tmp_path: Path, ingest_server: IngestServer, garbage_server: str
) -> None:
    port = free_port()
    url = {"down": f"http://127.0.0.1:{port}", "500": ingest_server.url, "garbage": garbage_server}[failure]
    if failure == "500":
        ingest_server.script(*[(500, {"Retry-After": "0"}, 0.0)] * 1000)
    profiler = agent.start(
        server=url,
        spool_dir=str(tmp_path / "spool"),
        report_interval_s=0.2,
        export_timeout_s=0.3,
        rate_hz=200,
    )
    assert profiler is not None
    done = []
    for _ in range(10):  # the host's work, while reports fail in the background
        with agent.labels(step="work"):
            spin(0.1)
        done.append(1)
    agent.stop(flush=False)
    assert len(done) == 10
    [http] = profiler.exporters
    assert isinstance(http, HttpExporter) and http.spool is not None
    spooled = http.spool.pending()
    assert spooled, "the failed reports wait in the spool"
    assert len(profiler._aggregator) <= profiler.config.max_stacks
    # The server comes back: the next delivery replays every spooled report, in order.
    state, httpd, thread = start_ingest_on(free_port())
    try:
        http.url = state.url + "/api/v1/ingest"
        http.export(report(99), time.monotonic() + 30)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
    replayed = [r.report() for r in state.received[1:]]
    assert len(replayed) == len(spooled) and http.spool.pending() == []
    assert all(r["metadata"]["report_id"] == k.headers["Idempotency-Key"] for r, k in zip(replayed, state.received[1:]))
    assert sum(s["values"][0] for r in replayed for s in r["samples"]) > 0


def test_a_slow_server_never_holds_the_host(tmp_path: Path, ingest_server: IngestServer) -> None:
    ingest_server.script(*[(202, {}, 30.0)] * 20)
    profiler = agent.start(server=ingest_server.url, spool_dir=str(tmp_path), report_interval_s=0.1, rate_hz=100)
    assert profiler is not None
    give_up = time.monotonic() + 30
    while not ingest_server.received and time.monotonic() < give_up:
        spin(0.05)
    assert ingest_server.received  # an export is stuck on the server right now...
    with agent.labels(during="export"):  # ...and the host's calls into the agent return at once
        agent.record_invocation(1.0, cold_start=False)
        spin(0.05)
    assert agent.pause() and agent.resume()
    agent.stop(flush=False)
    assert agent.current() is None


def test_drops_travel_in_the_next_report(tmp_path: Path, ingest_server: IngestServer) -> None:
    ingest_server.script((413, {}, 0.0))
    profiler = agent.start(server=ingest_server.url, spool_dir=str(tmp_path), report_interval_s=3600, max_stacks=1)
    assert profiler is not None
    spin(0.2)
    threading.Thread(target=spin, args=(0.2,)).start()  # a second stack: over max_stacks
    spin(0.3)
    assert agent.flush() is False
    assert agent.flush() is True
    second = ingest_server.received[1].report()["metadata"]["dropped"]
    first = ingest_server.received[0].report()["metadata"]["dropped"]
    assert second["export_rejected"] == 1
    assert second.get("aggregator_full", 0) >= first.get("aggregator_full", 0) > 0


def test_a_spool_left_by_the_previous_agent_is_delivered(tmp_path: Path, ingest_server: IngestServer) -> None:
    """The spool's file format is unchanged: ``<unix ns>-<report id>.json.gz`` holding the gzip body."""
    old = tmp_path / "spool" / "1700000000000000000-4b2d1f7e-8c1a-4f1e-9d57-0e0a7b0c6f11.json.gz"
    old.parent.mkdir()
    old.write_bytes(gzip.compress(json.dumps(report(7)).encode()))
    spool = Spool(str(old.parent), 10_000_000, DropCounter())
    HttpExporter(ingest_server.url, None, 2, "ua", spool).export(report(8), time.monotonic() + 10)
    keys = [r.headers["Idempotency-Key"] for r in ingest_server.received]
    assert keys == ["report-8", "4b2d1f7e-8c1a-4f1e-9d57-0e0a7b0c6f11"]
    assert ingest_server.received[1].report()["frames"][0]["function"] == "f7"
    assert spool.pending() == []


def test_an_outbox_left_by_the_previous_agent_is_resent_with_its_keys(
    tmp_path: Path, ingest_server: IngestServer
) -> None:
    """The outbox's file format is unchanged: ``<unix ns>-<32 hex key>.json.gz``."""
    from greenflame.agent.lambda_outbox import OutboxExporter

    folder = tmp_path / "outbox"
    folder.mkdir()
    (folder / "1700000000000000000-0123456789abcdef0123456789abcdef.json.gz").write_bytes(gzip.compress(b"{}"))
    outbox = OutboxExporter(ingest_server.url, None, str(folder), "ua")
    assert outbox.resend(time.monotonic() + 5)
    assert [r.headers["Idempotency-Key"] for r in ingest_server.received] == ["0123456789abcdef0123456789abcdef"]
    assert outbox.pending() == [] and outbox.empty


def test_the_outbox_counts_its_drops_in_the_next_report(tmp_path: Path, ingest_server: IngestServer) -> None:
    from greenflame.agent.lambda_outbox import MAX_PENDING, OutboxExporter

    port = free_port()  # nothing listens: every report stays in the outbox
    outbox = OutboxExporter(f"http://127.0.0.1:{port}", None, str(tmp_path), "ua")
    for n in range(MAX_PENDING + 2):
        outbox.export(report(n), time.monotonic() + 1)
    assert len(outbox.pending()) == MAX_PENDING
    ingest_server.script((400, {}, 0.0))
    back = OutboxExporter(ingest_server.url, None, str(tmp_path), "ua")
    assert back.resend(time.monotonic() + 30)  # the oldest is refused, the rest delivered
    assert back.pending() == [] and len(ingest_server.received) == MAX_PENDING
    back.export(report(100), time.monotonic() + 30)
    assert ingest_server.received[-1].report()["metadata"]["dropped"] == {"export_rejected": 1}
    # The first exporter counted its two evictions, each in the report it exported next.
    outbox._post.url = ingest_server.url + "/api/v1/ingest"
    outbox.export(report(101), time.monotonic() + 30)
    dropped = [r.report()["metadata"]["dropped"] for r in ingest_server.received]
    assert sum(d.get("outbox_full", 0) for d in dropped) == 2
    assert dropped[-1] == {"outbox_full": 1}
