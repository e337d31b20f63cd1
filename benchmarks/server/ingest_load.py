"""Ingest throughput and flame graph latency of one ``greenflame serve`` under a fleet's load.

Starts ``greenflame serve`` on a free loopback port with a fresh data folder (default storage:
SQLite and a local folder, unless ``--db``/``--blobs`` are given), creates N groups, then for
T seconds N clients each post 60-second reports (see ``reports.py``: ~85 KB gzipped) into their
own group as fast as the server accepts them, while a reader asks for the flame graph of the
last hour of group 0 every half second. Bodies are made before the clock starts (a pool per
client, each posted with a fresh idempotency key and a window within the last hour), so the
clients spend their time waiting on the server.

Prints reports/s accepted, ingest latency p50/p99/max and flame graph latency p50/p99/max during
the ingest, and after it how long the reports waited for their rollups (the share added within
each bound of ``greenflame_rollup_lag_seconds``). Bounded: at most ``--max-reports`` posts and
``--seconds`` of load.

    python benchmarks/server/ingest_load.py [--clients 8] [--seconds 30] [--pool 12]
        [--fresh-postgres URL] [--moto-s3] [--processes N] [--workers N]
        [--read-period S] [--read-fresh] [--no-analysis] [--env GREENFLAME_X=V ...]
        [--rate R] [--depth-every S] [--recent] [--groups G]

Also prints the CPU time the server processes (and their children) used during the load, per
accepted report, and their peak resident memory from start to exit (analysis runs that the load
started finish during the shutdown); ``--read-period 0`` and ``--no-analysis`` take the reads and the analysis runs
out of it. Reads answered with an earlier answer (an ``Age`` header, docs/api.md "Reads under
load") are counted with their age; ``--read-fresh`` makes every read wait for a fresh one.

``--rate R`` makes the load open-loop, as a fleet's: R posts a second over all clients on a fixed
clock, each post's latency counted from when it was due, so a server that falls behind shows
growing latencies rather than a lower rate; ``--depth-every S`` samples the rollup worker's queue
during the load (does the folding keep up at that rate?). ``--recent`` gives every report the
window of the minute before the load, as a fleet's reports of one minute, rather than windows
spread over the last hour (which keep every 5-minute bucket of the hour changing). ``--groups 1``
sends every client's reports into one group, as one service's fleet (the reader's group).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import requests
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reports import WINDOW_NS, ReportGenerator
from stores import BUCKET, fresh_postgres, moto_s3

ADMIN_TOKEN = "bench-admin-token-" + "x" * 16
_URL_LINE = re.compile(r"listening on (http://\S+)")


@dataclass
class Results:
    """What the clients and the reader saw."""

    ingest_ms: List[float] = field(default_factory=list)
    flame_ms: List[float] = field(default_factory=list)
    #: The Age header (seconds) of each flame graph answered with an earlier answer.
    flame_ages: List[float] = field(default_factory=list)
    errors: Dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: CPU seconds (user + system) the server processes used during the load.
    server_cpu_s: float = float("nan")

    def error(self, what: str) -> None:
        with self.lock:
            self.errors[what] = self.errors.get(what, 0) + 1


COMMAND = [sys.executable, "-c", "import sys; from greenflame.cli.main import main; sys.exit(main())"]


def process_env(data_dir: Path, extra: Dict[str, str]) -> Dict[str, str]:
    """A clean environment for a greenflame process: no inherited GREENFLAME_* settings, then ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENFLAME_")}
    env.update({"GREENFLAME_DATA_DIR": str(data_dir), "GREENFLAME_ADMIN_TOKEN": ADMIN_TOKEN, "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def start_server(
    data_dir: Path, extra_args: List[str], extra_env: Optional[Dict[str, str]] = None
) -> Tuple[subprocess.Popen[bytes], str]:
    """``greenflame serve`` on a free port; its process and base URL once it answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = process_env(data_dir, extra_env or {})
    with open(data_dir.parent / "server.log", "wb") as log:
        process = subprocess.Popen(
            [*COMMAND, "serve", "--host", "127.0.0.1", "--port", "0", *extra_args], env=env, stdout=log, stderr=log
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = _URL_LINE.search((data_dir.parent / "server.log").read_text(errors="replace"))
        if found:
            return process, found.group(1).rstrip("/")
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise SystemExit("greenflame serve did not start:\n" + (data_dir.parent / "server.log").read_text())


def create_groups(url: str, count: int) -> List[str]:
    """Groups ``bench-0`` .. ``bench-N-1``; their ingest keys."""
    keys = []
    for n in range(count):
        response = requests.post(
            f"{url}/api/v1/groups",
            json={"name": f"bench-{n}"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=30,
        )
        response.raise_for_status()
        keys.append(response.json()["ingest_key"])
    return keys


def make_bodies(clients: int, pool: int, version: int = 2, recent: bool = False, groups: int = 0) -> List[List[bytes]]:
    """Each client's bodies in wire format ``version``, windows spread over the last hour (so the
    reader's range holds them), or with ``recent`` all the minute before, as a fleet's reports of
    the same minute (all into the current 5-minute and hour buckets). Client ``n`` reports into
    group ``n`` (``groups`` 0), else into group ``n % groups``."""
    now = time.time_ns()
    generator = ReportGenerator()
    bodies = []
    for client in range(clients):
        starts = [now - WINDOW_NS * (1 if recent else 2 + (k * 59) // max(pool, 1)) for k in range(pool)]
        group = f"bench-{client % groups if groups else client}"
        bodies.append([generator.body(group, start, version) for start in starts])
    return bodies


class Schedule:
    """When each client's next post is due: as fast as the server answers (``rate`` 0), or open-loop
    at ``rate`` posts a second over all clients, each client's turns evenly spread, as a fleet's
    instances report on their own clocks whether or not the server keeps up."""

    def __init__(self, rate: float, clients: int) -> None:
        self.rate = rate
        self.clients = clients
        self.started = time.perf_counter()

    def due(self, client: int, n: int) -> float:
        """The perf_counter time of ``client``'s ``n``-th post (now when closed-loop)."""
        if self.rate <= 0:
            return time.perf_counter()
        return self.started + (n * self.clients + client) / self.rate


def client_loop(
    url: str,
    client: int,
    key: str,
    bodies: List[bytes],
    stop: threading.Event,
    budget: Budget,
    out: Results,
    schedule: Schedule,
) -> None:
    """Post ``bodies`` in turn; each post's latency counts from when it was due (open-loop: a post
    sent late because the one before was slow is charged the wait)."""
    session = requests.Session()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Content-Encoding": "gzip"}
    n = 0
    while budget.take():
        due = schedule.due(client, n)
        if stop.wait(max(0.0, due - time.perf_counter())):
            return
        body = bodies[n % len(bodies)]
        n += 1
        try:
            response = session.post(
                f"{url}/api/v1/ingest", data=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex}, timeout=120
            )
        except requests.RequestException as error:
            out.error(type(error).__name__)
            continue
        elapsed = (time.perf_counter() - due) * 1000
        if response.status_code == 202:
            with out.lock:
                out.ingest_ms.append(elapsed)
        else:
            out.error(f"ingest {response.status_code}")


def reader_loop(url: str, stop: threading.Event, out: Results, period_s: float, fresh: bool) -> None:
    session = requests.Session()
    target = f"{url}/api/v1/groups/bench-0/flamegraph?from=now-1h"
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", **({"Cache-Control": "no-cache"} if fresh else {})}
    while not stop.is_set():
        started = time.perf_counter()
        try:
            response = session.get(target, headers=headers, timeout=120)
            ok = response.status_code == 200
        except requests.RequestException:
            ok = False
        elapsed = time.perf_counter() - started
        if ok:
            out.flame_ms.append(elapsed * 1000)
            if "Age" in response.headers:
                out.flame_ages.append(float(response.headers["Age"]))
        else:
            out.error("flamegraph")
        stop.wait(max(0.0, period_s - elapsed))


class Budget:
    """At most ``limit`` posts over all clients."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True


def storage_args(args: argparse.Namespace) -> List[str]:
    """``--db`` and ``--blobs`` for the server, when given."""
    given = [("--db", args.db), ("--blobs", args.blobs)]
    return [part for flag, value in given if value for part in (flag, value)]


def percentile(values: List[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def server_env(args: argparse.Namespace) -> Dict[str, str]:
    """Settings for the server (and workers) from the options."""
    env = {"GREENFLAME_PROCESSES": str(args.processes)}
    if args.workers or args.no_analysis:
        env["GREENFLAME_ANALYSIS"] = "workers"
    for setting in args.env:
        name, _, value = setting.partition("=")
        env[name] = value
    return env


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its children alive now (0 when gone)."""
    total = 0.0
    for task in [pid, *_children(pid)]:
        try:
            total += process_cpu_seconds(task)
        except OSError:
            continue
    return total


class PeakMemory:
    """The highest summed resident memory of ``processes`` (and their children), sampled every 0.5 s."""

    def __init__(self, processes: List[subprocess.Popen[bytes]]) -> None:
        self.peak_bytes = 0
        self._pids = [p.pid for p in processes]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            now = sum(resident_bytes(task) for pid in self._pids for task in [pid, *_children(pid)])
            self.peak_bytes = max(self.peak_bytes, now)

    def stop(self) -> int:
        """Stop sampling; the peak in bytes."""
        self._stop.set()
        self._thread.join()
        return self.peak_bytes


def resident_bytes(pid: int) -> int:
    """VmRSS of process ``pid`` in bytes (0 when gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) * 1024 if found else 0


def _children(pid: int) -> List[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def start_workers(args: argparse.Namespace, data_dir: Path, env: Dict[str, str]) -> List[subprocess.Popen[bytes]]:
    """``--workers`` ``greenflame worker`` processes on the server's stores."""
    started = []
    for n in range(args.workers):
        with open(data_dir.parent / f"worker{n}.log", "wb") as log:
            started.append(
                subprocess.Popen(
                    [*COMMAND, "worker", *storage_args(args)], env=process_env(data_dir, env), stdout=log, stderr=log
                )
            )
    return started


def run(args: argparse.Namespace) -> Results:
    with ExitStack() as stack:
        if args.fresh_postgres:
            args.db = stack.enter_context(fresh_postgres(args.fresh_postgres))
        aws: Dict[str, str] = {}
        if args.moto_s3:
            aws = stack.enter_context(moto_s3())
            os.environ.update(aws)
            args.blobs = f"s3://{BUCKET}/bench"
        return run_on(args, aws)


def run_on(args: argparse.Namespace, aws: Dict[str, str]) -> Results:
    with tempfile.TemporaryDirectory(prefix="gf-ingest-load-") as tmp:
        env = {**aws, **server_env(args)}
        process, url = start_server(Path(tmp) / "data", storage_args(args), env)
        workers = start_workers(args, Path(tmp) / "data", env)
        memory = PeakMemory([process, *workers])
        try:
            keys = create_groups(url, args.groups or args.clients)
            keys = [keys[n % len(keys)] for n in range(args.clients)]
            bodies = make_bodies(args.clients, args.pool, args.wire_version, args.recent, args.groups)
            out, stop, budget = Results(), threading.Event(), Budget(args.max_reports)
            schedule = Schedule(args.rate, args.clients)
            threads = [
                threading.Thread(
                    target=client_loop, args=(url, n, keys[n], bodies[n], stop, budget, out, schedule), daemon=True
                )
                for n in range(args.clients)
            ]
            readers = [
                threading.Thread(
                    target=reader_loop, args=(url, stop, out, args.read_period, args.read_fresh), daemon=True
                )
                for _ in range(args.read_period > 0)
            ]
            load_before = os.getloadavg()
            cpu_before = sum(cpu_seconds(p.pid) for p in [process, *workers])
            started = schedule.started = time.perf_counter()
            depths = QueueDepths(url, args.depth_every)
            for thread in [*threads, *readers]:
                thread.start()
            stop.wait(args.seconds)
            stop.set()
            depths.stop()
            for thread in threads:
                thread.join(150)
            elapsed = time.perf_counter() - started
            out.server_cpu_s = sum(cpu_seconds(p.pid) for p in [process, *workers]) - cpu_before
            for reader in readers:
                reader.join(150)
            report(args, out, elapsed, load_before)
            depths.report()
            caught_up = rollups_caught_up(url)
            print(
                f"rollup worker caught up {caught_up:.1f} s after the load ended: "
                f"{len(out.ingest_ms) / (elapsed + caught_up):.1f} reports/s folded"
            )
            print(rollup_lags(url))
            return out
        finally:
            for started in [process, *workers]:
                started.terminate()
            for started in [process, *workers]:
                try:
                    started.wait(60)
                except subprocess.TimeoutExpired:
                    started.kill()
            print(f"server peak RSS {memory.stop() / 2**20:.0f} MiB (from its start to its exit)")


class QueueDepths:
    """The rollup worker's queue depth (``/metrics``) every ``every_s`` seconds of the load (0: not
    sampled): whether the folding keeps up or falls further behind."""

    def __init__(self, url: str, every_s: float) -> None:
        self.samples: List[Tuple[float, float]] = []
        self._url, self._every_s = url, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        if every_s > 0:
            self._thread.start()

    def _watch(self) -> None:
        started = time.perf_counter()
        while not self._stop.wait(self._every_s):
            depth = rollup_queue_depth(self._url)
            if depth is not None:
                self.samples.append((time.perf_counter() - started, depth))

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def report(self) -> None:
        if self.samples:
            shown = ", ".join(f"{t:.0f} s: {depth:.0f}" for t, depth in self.samples)
            print(f"rollup queue depth during the load: {shown}")


def metrics_text(url: str) -> str:
    """The server's ``/metrics`` (Prometheus text), asked as the admin."""
    return requests.get(f"{url}/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60).text


def rollup_queue_depth(url: str) -> Optional[float]:
    """Jobs waiting in the rollup worker's queue (None when ``/metrics`` does not say)."""
    try:
        text = metrics_text(url)
    except requests.RequestException:
        return None
    found = re.search(r"^greenflame_rollup_queue_jobs (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


def rollup_lags(url: str) -> str:
    """How long stored reports waited for their rollups (``greenflame_rollup_lag_seconds``), as the
    share added within each of the histogram's bounds (with several processes: the one answering)."""
    text = metrics_text(url)
    within: List[Tuple[float, float]] = []
    for family in text_string_to_metric_families(text):
        if family.name == "greenflame_rollup_lag_seconds":
            within = [(float(s.labels["le"]), s.value) for s in family.samples if s.name.endswith("_bucket")]
    total = max((count for _, count in within), default=0.0)
    if not total:
        return "rollup lag: no report added"
    shown = ", ".join(f"{bound:g} s {100 * count / total:.1f}%" for bound, count in within if bound != float("inf"))
    return f"rollup lag, share of {total:.0f} reports added within: {shown}"


def rollups_caught_up(url: str, timeout_s: float = 300.0) -> float:
    """Seconds until the rollup worker's queue (``/metrics``) is empty: work the load left behind."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        depth = rollup_queue_depth(url)
        if depth is None or depth == 0:
            break
        time.sleep(0.5)
    return time.perf_counter() - started


def report(args: argparse.Namespace, out: Results, elapsed: float, load_before: Tuple[float, ...]) -> None:
    accepted = len(out.ingest_ms)
    db = re.sub(r"//[^@/]*@", "//", args.db or "sqlite")
    print(
        f"clients {args.clients}, {elapsed:.1f} s, storage: db={db} blobs={args.blobs or 'folder'}, "
        f"processes {args.processes}, workers {args.workers}, wire format version {args.wire_version}"
    )
    print(f"load average (1 min) before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    offered = f" (offered {args.rate:g}/s on a fixed clock; latency counts from when each was due)" if args.rate else ""
    print(f"accepted {accepted} reports: {accepted / elapsed:.1f} reports/s{offered}")
    per_report = 1000 * out.server_cpu_s / accepted if accepted else float("nan")
    print(f"server CPU {out.server_cpu_s / elapsed:.2f} cores: {per_report:.1f} ms per accepted report")
    print(f"ingest latency     {latencies(out.ingest_ms)}")
    print(f"flame graph (1 h)  {latencies(out.flame_ms)}")
    if out.flame_ages:
        ages = sorted(out.flame_ages)
        print(
            f"  earlier answers (Age header): {len(ages)} of {len(out.flame_ms)},"
            f" age p50 {percentile(ages, 0.5):.0f} s, max {ages[-1]:.0f} s"
        )
    if out.errors:
        print(f"errors: {out.errors}")


def latencies(values: List[float]) -> str:
    """p50, p99 and the largest of ``values`` (milliseconds) with their count."""
    p50, p99, top = percentile(values, 0.5), percentile(values, 0.99), max(values, default=0.0)
    return f"p50 {p50:8.1f} ms  p99 {p99:8.1f} ms  max {top:8.1f} ms  (n={len(values)})"


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients, one group each")
    parser.add_argument(
        "--groups", type=int, default=0, help="groups the clients share (client n into group n %% G; 0: one each)"
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the load")
    parser.add_argument("--max-reports", type=int, default=20000, help="stop after this many posts")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="open-loop: posts a second over all clients, due on a fixed clock (0: as fast as answered)",
    )
    parser.add_argument(
        "--recent",
        action="store_true",
        help="every report's window is the minute before the load, as a fleet's (default: spread over the last hour)",
    )
    parser.add_argument(
        "--depth-every", type=float, default=0.0, help="seconds between samples of the rollup queue's depth (0: none)"
    )
    parser.add_argument("--pool", type=int, default=12, help="distinct bodies per client")
    parser.add_argument("--db", help="database URL (default: SQLite in the data folder)")
    parser.add_argument("--blobs", help="blob store URL (default: a local folder)")
    parser.add_argument("--fresh-postgres", metavar="URL", help="make a fresh database on this server for the run")
    parser.add_argument("--moto-s3", action="store_true", help="profile bodies in a moto S3 server started for the run")
    parser.add_argument("--processes", type=int, default=1, help="GREENFLAME_PROCESSES of the server")
    parser.add_argument("--workers", type=int, default=0, help="greenflame worker processes (servers do not analyse)")
    parser.add_argument("--read-period", type=float, default=0.5, help="seconds between flame graph reads (0: none)")
    parser.add_argument(
        "--env", action="append", default=[], metavar="GREENFLAME_X=V", help="a server setting (repeatable)"
    )
    parser.add_argument("--read-fresh", action="store_true", help="reads send Cache-Control: no-cache")
    parser.add_argument("--no-analysis", action="store_true", help="no analysis runs (and no workers unless asked)")
    parser.add_argument(
        "--wire-version",
        type=int,
        choices=(1, 2),
        default=2,
        help="the reports' wire format: 2 as the agent sends (samples in columns), 1 for servers before it",
    )
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
