"""A bounded load for the service samples: N sequential GET requests over one kept-alive session.

    python -m greenflame.sample_apps.load URL [--requests 300] [--wait 10]

Waits up to ``--wait`` seconds for the service to answer first, then prints one line: requests,
errors and the median latency.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import List, Optional, Sequence

import requests


def wait_until_up(session: requests.Session, url: str, timeout_s: float) -> None:
    """Return once ``url`` answers; SystemExit after ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            session.get(url, timeout=2)
            return
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise SystemExit(f"load: {url} did not answer within {timeout_s:g} s") from None
            time.sleep(0.05)


def run(url: str, count: int, wait_s: float = 10.0) -> List[float]:
    """Send ``count`` GET requests to ``url``; their latencies in milliseconds (errors raise)."""
    with requests.Session() as session:
        wait_until_up(session, url, wait_s)
        latencies = []
        for _ in range(count):
            began = time.perf_counter()
            session.get(url, timeout=10).raise_for_status()
            latencies.append((time.perf_counter() - began) * 1000.0)
    return latencies


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description="bounded load for the service samples")
    parser.add_argument("url")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the service to start")
    args = parser.parse_args(argv)
    latencies = run(args.url, args.requests, args.wait)
    print(f"load: {len(latencies)} requests, median {statistics.median(latencies):.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
