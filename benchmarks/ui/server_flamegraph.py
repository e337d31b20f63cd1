"""The server's flame graph response for 24 hours of 5-minute profiles (goal: at most 200 ms).

Ingests 288 profiles (one per 5 minutes over the last 24 hours) of a synthetic service
through ``POST /api/v1/ingest`` into a fresh data folder (so the rollup worker folds each
one and re-seals its hour, as in production), then times
``GET /api/v1/groups/<g>/flamegraph?from=now-24h`` through the Flask app (no network):

- first-read: the first request in the process that ingested everything (rollups built at ingest);
- restart-warmed: a new app on the same storage, first request once its start-up warm-up (the
  last day's hourly rollups read back on the rollup worker) has finished;
- restart: a new app on the same storage, requested at once (racing its warm-up);
- warm: the same app again (response cache hit);
- wall, bottom-up: the warm app, another type / view (merged range cached, tree not);
- new-data: the warm app right after one more profile was ingested and folded by the worker;
- new-data-unfolded: the same, but the request races the worker (it may fold the profile itself);
- legacy-cold: a new app after every rollup blob was deleted (data stored by an older version).

The analysis pipeline (which loads every new profile on its own thread) is stopped, so
that only the flame graph's own work is timed. Every round runs restart, warm, wall,
bottom-up, new-data and new-data-unfolded in turn, so the cases alternate under the same
machine load; medians, quartiles and extremes are printed.

    python benchmarks/ui/server_flamegraph.py [--rounds 7] [--stacks 1500]
"""

from __future__ import annotations

import argparse
import gzip
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Tuple

from flask import Flask
from flask.testing import FlaskClient

from greenflame.analyzer.formats import greenflame_json
from greenflame.analyzer.model import Frame, Profile
from greenflame.server import pipeline_worker
from greenflame.server.app import create_app as create_server_app
from greenflame.server.rollups import get_rollups
from greenflame.server.storage import get_storage

FIVE_MINUTES_NS = 300 * 10**9
GROUP = "bench-service"


def frame_pool(rng: random.Random, count: int) -> List[Frame]:
    """Functions spread over user code, libraries and the standard library."""
    roots = ["/srv/app/", "/usr/lib/python3.11/", "/srv/venv/lib/python3.11/site-packages/"]
    frames = []
    for i in range(count):
        root = roots[i % 3]
        module = f"mod{i % 97}/part{i % 13}.py"
        frames.append(Frame(f"function_{i}", root + module, 10 + i % 400))
    return frames


def stack_pool(rng: random.Random, frames: List[Frame], count: int) -> List[Tuple[Frame, ...]]:
    """Stacks sharing prefixes, as a real service's do (a few entry points, deep call chains)."""
    stacks: List[Tuple[Frame, ...]] = []
    entry = frames[:8]
    for _ in range(count):
        if stacks and rng.random() < 0.7:
            parent = rng.choice(stacks)
            cut = rng.randint(1, len(parent))
            stack = parent[:cut]
        else:
            stack = (rng.choice(entry),)
        stack += tuple(rng.choice(frames) for _ in range(rng.randint(1, 12)))
        stacks.append(stack[:60])
    return stacks


def make_profiles(count: int, stacks_per_profile: int, seed: int = 7) -> Iterator[Profile]:
    """The service's profiles, oldest first, made one at a time (the benchmark keeps none alive)."""
    rng = random.Random(seed)
    frames = frame_pool(rng, 1200)
    pool = stack_pool(rng, frames, stacks_per_profile * 3)
    now = time.time_ns()
    start = now - count * FIVE_MINUTES_NS
    for n in range(count):
        profile = Profile(group=GROUP, start_time_unix_ns=start + n * FIVE_MINUTES_NS, duration_ns=FIVE_MINUTES_NS)
        for stack in rng.sample(pool, stacks_per_profile):
            wall = rng.randint(1, 40)
            profile.add(stack, [wall, rng.randint(0, wall)], {"endpoint": f"/api/{rng.randint(0, 5)}"})
        yield profile


def create_app(settings: Dict[str, str]) -> Flask:
    """The server app without its analysis pipeline (it would load every profile meanwhile)."""
    app = create_server_app(settings)
    pipeline_worker.get_scheduler(app).stop()
    return app


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def summary(samples: List[float]) -> str:
    ordered = sorted(samples)
    if len(ordered) == 1:
        return f"{ordered[0]:8.1f} ms (n=1)"
    q1, median, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    return (
        f"median {median:7.1f} ms  quartiles {q1:7.1f}..{q3:7.1f}  "
        f"min {ordered[0]:7.1f}  max {ordered[-1]:7.1f}  (n={len(ordered)})"
    )


class Bench:
    """One data folder, its ingest key, and helpers to ingest and time requests."""

    def __init__(self, data_dir: str, stacks: int) -> None:
        self.settings = {"data_dir": data_dir, "admin_token": "bench"}
        self.stacks = stacks
        self.app = create_app(self.settings)
        client = self.app.test_client()
        created = client.post("/api/v1/groups", json={"name": GROUP}, headers={"Authorization": "Bearer bench"})
        self.key = created.get_json()["ingest_key"]
        self.url = f"/api/v1/groups/{GROUP}/flamegraph?from=now-24h"
        self.extra = 0

    def ingest(self, app: Flask, profile: Profile) -> None:
        body = gzip.compress(greenflame_json.dumps(profile), compresslevel=1)
        headers = {"Authorization": f"Bearer {self.key}", "Content-Encoding": "gzip"}
        response = app.test_client().post("/api/v1/ingest", data=body, headers=headers, content_type="application/json")
        check(response)

    def drain(self, app: Flask) -> None:
        with app.app_context():
            if not get_rollups(get_storage()).worker.drain(600):
                raise SystemExit("the rollup worker did not finish within 10 minutes")

    def newest(self) -> Profile:
        self.extra += 1
        profile = next(make_profiles(1, self.stacks, seed=1000 + self.extra))
        profile.start_time_unix_ns = time.time_ns() - 60 * 10**9
        return profile

    def get(self, client: FlaskClient, query: str = "") -> float:
        return timed(lambda: check(client.get(self.url + query)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--stacks", type=int, default=1500, help="distinct stacks per 5-minute profile")
    args = parser.parse_args()
    results: Dict[str, List[float]] = {}

    def record(name: str, value: float) -> None:
        results.setdefault(name, []).append(value)

    with tempfile.TemporaryDirectory() as data_dir:
        bench = Bench(data_dir, args.stacks)
        started = time.perf_counter()
        for profile in make_profiles(288, args.stacks):
            bench.ingest(bench.app, profile)
        ingest_s = time.perf_counter() - started
        bench.drain(bench.app)
        worker_s = time.perf_counter() - started - ingest_s
        print(f"ingest of 288 profiles {ingest_s:.1f} s; the rollup worker done {worker_s:.1f} s later")
        client = bench.app.test_client()
        record("first-read", bench.get(client))
        for _ in range(args.rounds):
            warmed = create_app(bench.settings)
            bench.drain(warmed)  # the start-up warm-up has read the last day back
            record("restart-warmed", bench.get(warmed.test_client()))
            app = create_app(bench.settings)
            client = app.test_client()
            record("restart", bench.get(client))
            record("warm", bench.get(client))
            record("wall", bench.get(client, "&type=wall"))
            record("bottom-up", bench.get(client, "&view=bottom-up"))
            bench.ingest(app, bench.newest())
            bench.drain(app)
            record("new-data", bench.get(client))
            bench.ingest(app, bench.newest())
            record("new-data-unfolded", bench.get(client))
            bench.drain(app)  # before the next round's app reads the same storage
        shutil.rmtree(Path(data_dir) / "profiles" / "rollups")  # the default blob folder
        legacy = create_app(bench.settings)
        record("legacy-cold", bench.get(legacy.test_client()))
        bench.drain(legacy)
        body = bench.app.test_client().get(bench.url).get_json()
        nodes = count_nodes(body["flamegraph"])
        print(f"{body['profile_count']} profiles x {args.stacks} stacks; response tree {nodes} nodes")
        for name, samples in results.items():
            print(f"{name:18s} {summary(samples)}")


def check(response: object) -> None:
    status = getattr(response, "status_code", 0)
    if status not in (200, 202):
        raise SystemExit(f"request failed with {status}: {getattr(response, 'data', b'')[:200]!r}")


def count_nodes(node: Dict[str, object]) -> int:
    children = node.get("children") or []
    assert isinstance(children, list)
    return 1 + sum(count_nodes(child) for child in children)


if __name__ == "__main__":
    main()
