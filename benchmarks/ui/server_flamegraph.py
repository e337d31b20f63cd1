"""The server's flame graph response for 24 hours of 5-minute profiles (goal: at most 200 ms).

Stores 288 profiles (one per 5 minutes over the last 24 hours) of a synthetic service in a
fresh data folder, then times ``GET /api/v1/groups/<g>/flamegraph?from=now-24h`` through the
Flask app (no network) in three states:

- cold: a new server process state and no rollups yet (loads and merges every profile);
- rollups: a new app whose hourly rollups are already in the blob store (as after a restart,
  or on another server process sharing the storage);
- warm: the same app again (merged range and response caches hit);
- new-data: a warm app right after one more profile arrived (older hours come from the
  in-memory rollups, the current hour is re-merged from cached folded profiles);

and ``wall`` / ``bottom-up`` on the warm app (the merged range is cached, the tree is not).

    python benchmarks/ui/server_flamegraph.py [--repeat 7] [--stacks 1500]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from typing import Callable, Dict, List, Tuple

from greenflame.analyzer.model import Frame, Profile
from greenflame.server.app import create_app
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


def make_profiles(count: int, stacks_per_profile: int, seed: int = 7) -> List[Profile]:
    rng = random.Random(seed)
    frames = frame_pool(rng, 1200)
    pool = stack_pool(rng, frames, stacks_per_profile * 3)
    now = time.time_ns()
    start = now - count * FIVE_MINUTES_NS
    profiles = []
    for n in range(count):
        profile = Profile(group=GROUP, start_time_unix_ns=start + n * FIVE_MINUTES_NS, duration_ns=FIVE_MINUTES_NS)
        for stack in rng.sample(pool, stacks_per_profile):
            wall = rng.randint(1, 40)
            profile.add(stack, [wall, rng.randint(0, wall)], {"endpoint": f"/api/{rng.randint(0, 5)}"})
        profiles.append(profile)
    return profiles


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def summary(samples: List[float]) -> str:
    ordered = sorted(samples)
    median = statistics.median(ordered)
    return f"median {median:7.1f} ms  min {ordered[0]:7.1f}  max {ordered[-1]:7.1f}  (n={len(ordered)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--stacks", type=int, default=1500, help="distinct stacks per 5-minute profile")
    args = parser.parse_args()
    profiles = make_profiles(288, args.stacks)
    with tempfile.TemporaryDirectory() as data_dir:
        settings = {"data_dir": data_dir, "admin_token": "bench"}
        app = create_app(settings)
        with app.app_context():
            storage = get_storage()
            storage.create_group(GROUP)
            for profile in profiles:
                storage.add_profile(GROUP, profile, None)
        url = f"/api/v1/groups/{GROUP}/flamegraph?from=now-24h"
        results: Dict[str, List[float]] = {"cold": [], "rollups": [], "warm": [], "wall": [], "bottom-up": []}
        for _ in range(args.repeat):
            client = create_app(settings).test_client()
            state = "rollups" if results["cold"] else "cold"
            for name, query in ((state, ""), ("warm", ""), ("wall", "&type=wall"), ("bottom-up", "&view=bottom-up")):
                results[name].append(timed(lambda: check(client.get(url + query))))  # noqa: B023
        # A new 5-minute profile arrives: the range's set changes, the older hours stay cached.
        client = create_app(settings).test_client()
        check(client.get(url))
        with app.app_context():
            newest = make_profiles(1, args.stacks, seed=99)[0]
            newest.start_time_unix_ns = time.time_ns() - 60 * 10**9
            get_storage().add_profile(GROUP, newest, None)
        results["new-data"] = [timed(lambda: check(client.get(url)))]
        body = app.test_client().get(url).get_json()
        nodes = count_nodes(body["flamegraph"])
        print(f"288 profiles x {args.stacks} stacks; response tree {nodes} nodes (max_nodes 5000)")
        for name, samples in results.items():
            if samples:
                print(f"{name:10s} {summary(samples)}")


def check(response: object) -> None:
    status = getattr(response, "status_code", 0)
    if status != 200:
        raise SystemExit(f"request failed with {status}: {getattr(response, 'data', b'')[:200]!r}")


def count_nodes(node: Dict[str, object]) -> int:
    children = node.get("children") or []
    assert isinstance(children, list)
    return 1 + sum(count_nodes(child) for child in children)


if __name__ == "__main__":
    main()
