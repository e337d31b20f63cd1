"""Disk bytes per service-day: what one service reporting every 60 s for a day leaves in storage.

Starts ``greenflame serve`` on the default storage (SQLite and a local folder) with a fresh data
folder, posts ``--hours`` hours of 60-second reports of one group (the generator of
``ingest_load.py``: ~85 KB gzipped each; a pool of distinct bodies, each posted with its own
window), waits until the rollup worker has folded every profile, then stops the server and
measures the data folder by part: the database file, profile bodies, call-path rollups (per
profile and per hour) and the rest. Prints bytes per report and per service-day (the measured
hours scaled to 24). With ``--compact``, the server is then started again on the same folder with
raw retention of one second, so every hour that has ended is merged into an hourly profile
(``server/retention.py``), the SQLite file is vacuumed (it keeps freed pages otherwise), and the
folder is measured again: what a service-day costs once its raw span has passed.

    python benchmarks/server/disk_per_day.py [--hours 24] [--clients 4] [--pool 24] [--compact]
"""

from __future__ import annotations

import argparse
import gzip
import re
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Dict, List

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest_load import ADMIN_TOKEN, create_groups, start_server
from reports import WINDOW_NS, ReportGenerator

_START = re.compile(rb'"start_time_unix_ns":\s*\d+')
_QUEUE = re.compile(r"^greenflame_rollup_queue_jobs (\S+)$", re.MULTILINE)


def windowed(body: bytes, start_ns: int) -> bytes:
    """``body`` (a gzipped report) with its window starting at ``start_ns``."""
    document, count = _START.subn(f'"start_time_unix_ns":{start_ns}'.encode(), gzip.decompress(body), count=1)
    if count != 1:
        raise SystemExit("the generated report has no start_time_unix_ns")
    return gzip.compress(document, compresslevel=6, mtime=0)


def post_day(url: str, key: str, hours: int, clients: int, pool: List[bytes], step_ns: int = WINDOW_NS) -> int:
    """Post one report per ``step_ns`` (a minute) of the last ``hours`` hours; how many were accepted."""
    first = time.time_ns() - hours * 3600 * 10**9
    starts = [first + n * step_ns for n in range(hours * 3600 * 10**9 // step_ns)]
    accepted = []
    lock = threading.Lock()

    def client(mine: List[int], offset: int) -> None:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Content-Encoding": "gzip"}
        for n, start in enumerate(mine):
            body = windowed(pool[(offset + n) % len(pool)], start)
            response = session.post(
                f"{url}/api/v1/ingest", data=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex}, timeout=120
            )
            if response.status_code == 202:
                with lock:
                    accepted.append(len(body))

    threads = [threading.Thread(target=client, args=(starts[k::clients], k)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(accepted)


def wait_for_rollups(url: str, timeout_s: float = 1800) -> None:
    """Until the rollup worker's queue is empty twice in a row."""
    deadline = time.monotonic() + timeout_s
    empty = 0
    while time.monotonic() < deadline:
        text = requests.get(f"{url}/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30).text
        found = _QUEUE.search(text)
        empty = empty + 1 if found and float(found.group(1)) == 0 else 0
        if empty >= 2:
            return
        time.sleep(1)
    raise SystemExit("the rollup worker did not catch up")


def sizes(data_dir: Path) -> Dict[str, int]:
    """Bytes under the data folder by part."""
    parts: Dict[str, int] = {}
    for path in data_dir.rglob("*"):
        if not path.is_file():
            continue
        relative = path.relative_to(data_dir).parts
        if relative[0].startswith("greenflame.db"):
            part = "database (index, series, analysis)"
        elif relative[:2] == ("profiles", "profiles"):  # the blob folder holds bodies and rollups
            part = "profile bodies"
        elif relative[:3] == ("profiles", "rollups", "compacted"):
            part = "compacted profiles (hourly, daily)"
        elif relative[:2] == ("profiles", "rollups") and len(relative) > 4:
            part = f"rollups ({relative[4]})"
        else:
            part = "other"
        parts[part] = parts.get(part, 0) + path.stat().st_size
    return parts


#: Retention spans making every ended hour compacted at once (the compaction test's, with 1 s raw).
COMPACT_NOW = {
    "GREENFLAME_RAW_RETENTION_S": "1",
    "GREENFLAME_HOURLY_RETENTION_S": str(10 * 86400),
    "GREENFLAME_DAILY_RETENTION_S": str(10 * 86400),
    "GREENFLAME_ANOMALY_HISTORY_S": "1",
    "GREENFLAME_ANALYSIS_WINDOW_S": "1",
    "GREENFLAME_COMPACTION_INTERVAL_S": "1",
}


def compact(data_dir: Path, timeout_s: float = 1800) -> None:
    """Run the server on ``data_dir`` with :data:`COMPACT_NOW` until no profile body is deleted any more."""
    process, _url = start_server(data_dir, [], COMPACT_NOW)
    try:
        deadline = time.monotonic() + timeout_s
        last, steady = -1, 0
        while time.monotonic() < deadline and steady < 5:
            count = sum(1 for _ in (data_dir / "profiles" / "profiles").rglob("*.json.gz"))
            steady = steady + 1 if count == last else 0
            last = count
            time.sleep(1)
    finally:
        process.terminate()
        process.wait(60)
    with sqlite3.connect(data_dir / "greenflame.db") as db:  # SQLite keeps freed pages until VACUUM
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def show(title: str, measured: Dict[str, int], accepted: int, hours: int) -> None:
    total = sum(measured.values())
    print(title)
    for part, size in sorted(measured.items(), key=lambda item: -item[1]):
        print(f"  {part:36} {size / 1e6:9.1f} MB  {size / max(accepted, 1) / 1e3:7.1f} KB/report")
    print(f"total {total / 1e6:.1f} MB, {total / max(accepted, 1) / 1e3:.1f} KB/report")
    print(f"per service-day (one report a minute): {total * 24 / hours / 1e6:.1f} MB")


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=24, help="hours of 60-second reports to post")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--pool", type=int, default=24, help="distinct report bodies")
    parser.add_argument("--compact", action="store_true", help="measure again once retention compacted the hours")
    args = parser.parse_args(argv)
    generator = ReportGenerator()
    pool = [generator.body("bench-0", time.time_ns() - n * WINDOW_NS) for n in range(args.pool)]
    with tempfile.TemporaryDirectory(prefix="gf-disk-") as tmp:
        data_dir = Path(tmp) / "data"
        process, url = start_server(data_dir, [])
        try:
            (key,) = create_groups(url, 1)
            started = time.perf_counter()
            accepted = post_day(url, key, args.hours, args.clients, pool)
            wait_for_rollups(url)
            elapsed = time.perf_counter() - started
        finally:
            process.terminate()
            process.wait(60)
        measured = sizes(data_dir)
        print(f"{accepted} reports over {args.hours} h posted and folded in {elapsed:.0f} s")
        show("raw (within the raw retention span):", measured, accepted, args.hours)
        if args.compact:
            compact(data_dir)
            show("after compaction (ended hours merged into hourly profiles):", sizes(data_dir), accepted, args.hours)


if __name__ == "__main__":
    main()
