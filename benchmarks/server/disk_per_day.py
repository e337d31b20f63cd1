"""Disk bytes per service-day: what one service reporting every 60 s for a day leaves in storage.

Starts ``greenflame serve`` on the default storage (SQLite and a local folder) with a fresh data
folder, posts ``--hours`` hours of 60-second reports of one group (the generator of
``ingest_load.py``: ~85 KB gzipped each; a pool of distinct bodies, each posted with its own
window), waits until the rollup worker has folded every profile, then stops the server and
measures the data folder by part: the database file, profile bodies, call-path rollups (per
profile and per hour) and the rest. Prints bytes per report and per service-day (the measured
hours scaled to 24).

    python benchmarks/server/disk_per_day.py [--hours 24] [--clients 4] [--pool 24]
"""

from __future__ import annotations

import argparse
import gzip
import re
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


def post_day(url: str, key: str, hours: int, clients: int, pool: List[bytes]) -> int:
    """Post one report per minute of the last ``hours`` hours; how many were accepted."""
    first = time.time_ns() - hours * 3600 * 10**9
    starts = [first + n * WINDOW_NS for n in range(hours * 60)]
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
        elif relative[:2] == ("profiles", "rollups") and len(relative) > 4:
            part = f"rollups ({relative[4]})"
        else:
            part = "other"
        parts[part] = parts.get(part, 0) + path.stat().st_size
    return parts


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=24, help="hours of 60-second reports to post")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--pool", type=int, default=24, help="distinct report bodies")
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
    total = sum(measured.values())
    scale = 24 / args.hours
    print(f"{accepted} reports over {args.hours} h posted and folded in {elapsed:.0f} s")
    for part, size in sorted(measured.items(), key=lambda item: -item[1]):
        print(f"  {part:36} {size / 1e6:9.1f} MB  {size / max(accepted, 1) / 1e3:7.1f} KB/report")
    print(f"total {total / 1e6:.1f} MB, {total / max(accepted, 1) / 1e3:.1f} KB/report")
    print(f"per service-day (one report a minute): {total * scale / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
