"""A week of a group's 5-minute reports to a flame graph (goal: at most 1 s cold, 100 ms cached).

Starts ``greenflame serve`` (default storage: SQLite and a local folder) on a free port with a
fresh data folder and posts ``--days`` days of one group's service reports, one every 5 minutes
(2,016 for 7 days), through ``POST /api/v1/ingest`` (``reports.py``'s generator, each report a
5-minute window; a pool of ``--pool`` distinct bodies, each posted with its own window, by
``--clients`` clients). It waits until the rollup worker has folded every report and the server
is idle (its analysis runs done too: the process's CPU time stops growing), then stops it.

Then, round by round, for each data folder (``raw``: as the default settings leave it, every
report within the raw retention span of 15 days; with ``--compacted``, a copy of it on which
retention merged every ended hour into an hourly profile) and each range (``now-7d`` and the
baseline ``now-1d``), in an order rotated every round, a new ``greenflame serve`` process (default
settings) is started on the folder and asked for the range's flame graph through the HTTP API:

- ``cold``: the first request, sent as soon as the server listens (its start-up warm-up of the
  last day's rollups may still be running, as after any restart);
- ``cached``: the same request ``--cached`` times more (the response cache);
- ``wall``: once, the wall-time flame graph of the same range (the merged range cached, the
  tree pruned anew).

With ``--previous DIR`` (a ``git archive`` tree of an older commit with a ``greenflame/`` folder
of links, as in ``benchmarks/server/README.md``), a second data folder is filled the same way
through that version's server and measured in the same rounds (``previous``). Medians, ranges and
the load average before and after are printed. The data folders live in the OS page cache
throughout: "cold" is a new process, not a cold disk.

    python benchmarks/server/flamegraph_week.py [--days 7] [--rounds 5] [--cached 10]
        [--clients 4] [--pool 48] [--compacted] [--previous DIR] [--root DIR]
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from disk_per_day import compact, post_day, sizes, wait_for_rollups
from ingest_load import ADMIN_TOKEN, create_groups, start_server
from ingest_load import process_cpu_seconds as cpu_seconds
from reports import ReportGenerator

from greenflame.analyzer.formats import greenflame_json

STEP_NS = 300 * 10**9
GROUP = "bench-0"  # create_groups' first name
SPANS = ("7d", "1d")
#: Written beside a data folder once it is filled (``--root`` uses it again).
FILLED = "filled"


@dataclass
class Store:
    """One data folder and the environment of the servers started on it."""

    name: str
    data_dir: Path
    env: Dict[str, str] = field(default_factory=dict)
    times: Dict[Tuple[str, str], List[float]] = field(default_factory=dict)
    profiles: Dict[str, int] = field(default_factory=dict)

    def record(self, span: str, case: str, ms: float) -> None:
        self.times.setdefault((span, case), []).append(ms)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def settle(pid: int, timeout_s: float, quiet_s: float = 5.0) -> float:
    """Wait until process ``pid`` uses under 5% of a core over ``quiet_s``; seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        before = cpu_seconds(pid)
        time.sleep(quiet_s)
        if cpu_seconds(pid) - before < 0.05 * quiet_s:
            return time.monotonic() - started
    raise SystemExit(f"the server was still busy after {timeout_s:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(120)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def fill(store: Store, args: argparse.Namespace) -> None:
    """``args.days`` days of 5-minute reports posted into a fresh server on ``store``; then idle."""
    generator = ReportGenerator()
    now = time.time_ns()
    pool = [
        gzip.compress(greenflame_json.dumps(generator.report(GROUP, now - n * STEP_NS, STEP_NS)), compresslevel=6)
        for n in range(args.pool)
    ]
    process, url = start_server(store.data_dir, [], store.env)
    try:
        (key,) = create_groups(url, 1)
        started = time.perf_counter()
        accepted = post_day(url, key, args.days * 24, args.clients, pool, STEP_NS)
        posted_s = time.perf_counter() - started
        wait_for_rollups(url)
        folded_s = time.perf_counter() - started
        idle_s = settle(process.pid, args.settle_timeout)
    finally:
        stop(process)
    mean_kb = sum(len(body) for body in pool) / len(pool) / 1e3
    print(
        f"[{store.name}] {accepted} reports ({mean_kb:.0f} KB gzipped on average) posted in {posted_s:.0f} s "
        f"({accepted / posted_s:.1f}/s, {args.clients} clients), folded by {folded_s:.0f} s, "
        f"server idle {idle_s:.0f} s later; load {load()}",
        flush=True,
    )
    expected = args.days * 24 * 12
    if accepted != expected:
        raise SystemExit(f"only {accepted} of {expected} reports were accepted")


def request(session: requests.Session, url: str, span: str, kind: str = "cpu") -> Tuple[float, int]:
    """One flame graph request: milliseconds and the number of profiles it merged."""
    started = time.perf_counter()
    response = session.get(
        f"{url}/api/v1/groups/{GROUP}/flamegraph",
        params={"from": f"now-{span}", "type": kind},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=300,
    )
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise SystemExit(f"flame graph request failed with {response.status_code}: {response.text[:200]}")
    return elapsed, int(response.json()["profile_count"])


def measure(store: Store, span: str, cached: int) -> None:
    """A new server on the store: the first request, ``cached`` repeats, one wall request."""
    process, url = start_server(store.data_dir, [], store.env)
    try:
        session = requests.Session()
        cold, store.profiles[span] = request(session, url, span)
        store.record(span, "cold", cold)
        for _ in range(cached):
            store.record(span, "cached", request(session, url, span)[0])
        store.record(span, "wall", request(session, url, span, "wall")[0])
    finally:
        stop(process)
    print(f"  {store.name:9s} {span} cold {cold:8.1f} ms  cached {store.times[span, 'cached'][-1]:6.1f} ms", flush=True)


def spread(values: List[float]) -> str:
    return (
        f"median {statistics.median(values):8.1f} ms  range {min(values):8.1f}..{max(values):8.1f}  (n={len(values)})"
    )


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7, help="days of 5-minute reports")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cached", type=int, default=10, help="repeated requests after the first, per server")
    parser.add_argument("--clients", type=int, default=4, help="clients posting the reports")
    parser.add_argument("--pool", type=int, default=48, help="distinct report bodies")
    parser.add_argument("--compacted", action="store_true", help="also a copy with every ended hour compacted")
    parser.add_argument("--previous", type=Path, help="an older version's tree (PYTHONPATH) measured beside")
    parser.add_argument("--settle-timeout", type=float, default=1800.0, help="longest wait for an idle server")
    parser.add_argument("--root", type=Path, help="keep the data folders here (a filled one is used again)")
    args = parser.parse_args(argv)
    print(f"load average before: {load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="gf-flamegraph-week-") as tmp:
        root = args.root or Path(tmp)
        stores = [Store("raw", root / "raw" / "data")]
        if args.previous:
            stores.append(Store("previous", root / "previous" / "data", {"PYTHONPATH": str(args.previous.resolve())}))
        for store in stores:
            if not (store.data_dir.parent / FILLED).exists():
                shutil.rmtree(store.data_dir, ignore_errors=True)
                fill(store, args)
                (store.data_dir.parent / FILLED).write_text(f"{args.days} days\n")
        if args.compacted:
            compacted = Store("compacted", root / "compacted" / "data")
            if not (compacted.data_dir.parent / FILLED).exists():
                shutil.rmtree(compacted.data_dir, ignore_errors=True)
                shutil.copytree(stores[0].data_dir, compacted.data_dir)
                started = time.perf_counter()
                compact(compacted.data_dir)
                print(f"[compacted] retention pass done in {time.perf_counter() - started:.0f} s", flush=True)
                (compacted.data_dir.parent / FILLED).write_text("compacted\n")
            stores.insert(1, compacted)
        for store in stores:
            parts = sizes(store.data_dir)
            shown = ", ".join(
                f"{part} {size / 1e6:.0f} MB" for part, size in sorted(parts.items(), key=lambda i: -i[1])
            )
            print(f"[{store.name}] {sum(parts.values()) / 1e6:.0f} MB: {shown}", flush=True)
        cases = [(store, span) for span in SPANS for store in stores]
        for number in range(args.rounds):
            print(f"round {number + 1}, load {load()}", flush=True)
            shift = number % len(cases)
            for store, span in cases[shift:] + cases[:shift]:
                measure(store, span, args.cached)
        print(f"load average after: {load()}")
        for store in stores:
            for span in SPANS:
                print(f"{store.name:9s} {span} ({store.profiles[span]} profiles)")
                for case in ("cold", "cached", "wall"):
                    print(f"    {case:7s} {spread(store.times[span, case])}")


if __name__ == "__main__":
    main()
