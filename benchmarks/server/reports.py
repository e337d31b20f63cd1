"""Realistic service reports for the server benchmarks (issue 18's generator).

One report is what a service's agent sends for a 60-second window: about 1,350 samples over
about 900 distinct stacks, each 15 to 45 frames deep, split over two label values, about
85 KB gzipped. Stacks share prefixes as a real service's do (a few entry points, a web
framework, deep chains into the application and its libraries); each report draws its stacks
from one service-wide pool, so consecutive reports of a group look alike, as they do in
production.
"""

from __future__ import annotations

import gzip
import random
from typing import Dict, List, Tuple

from greenflame.analyzer.formats import greenflame_json
from greenflame.analyzer.model import Frame, Profile

WINDOW_NS = 60 * 10**9
STACKS_PER_REPORT = 900
SAMPLES_PER_REPORT = 1350
LABEL_VALUES = ("GET /api/orders", "POST /api/checkout")

_ROOTS = (
    "/srv/app/shop/",
    "/usr/local/lib/python3.11/",
    "/srv/app/.venv/lib/python3.11/site-packages/",
)
_PACKAGES = ("orders", "payments", "catalog", "sqlalchemy/orm", "botocore", "flask", "werkzeug", "json", "http")
_VERBS = ("load", "save", "render", "validate", "dispatch", "handle", "serialize", "fetch", "compute", "lookup")
_NOUNS = ("order", "session", "request", "response", "row", "item", "cart", "price", "client", "query")

Stack = Tuple[Frame, ...]


def frame_pool(rng: random.Random, count: int) -> List[Frame]:
    """Functions spread over application code, libraries and the standard library."""
    frames = []
    for i in range(count):
        package = _PACKAGES[i % len(_PACKAGES)]
        module = f"{_ROOTS[i % len(_ROOTS)]}{package}/{_NOUNS[(i // 7) % len(_NOUNS)]}_{i % 53}.py"
        function = f"{_VERBS[i % len(_VERBS)]}_{_NOUNS[(i // 3) % len(_NOUNS)]}_{i}"
        frames.append(Frame(function, module, 10 + (i * 37) % 900))
    return frames


def stack_pool(rng: random.Random, frames: List[Frame], count: int, callees: int = 0) -> List[Stack]:
    """``count`` stacks 15 to 45 deep, grown from shared prefixes.

    With ``callees`` > 0 each function calls only that many others (a call graph, as in real
    code, where a function has a handful of callers); with 0 any function may call any other.
    """
    entries = frames[:6]
    graph: Dict[Frame, List[Frame]] = {}

    def next_frame(caller: Frame) -> Frame:
        if not callees:
            return rng.choice(frames)
        return rng.choice(graph.setdefault(caller, rng.sample(frames, callees)))

    stacks: List[Stack] = []
    for _ in range(count):
        depth = rng.randint(15, 45)
        if stacks and rng.random() < 0.8:
            parent = rng.choice(stacks)
            stack = parent[: rng.randint(1, min(len(parent), depth - 1))]
        else:
            stack = (rng.choice(entries),)
        while len(stack) < depth:
            stack += (next_frame(stack[-1]),)
        stacks.append(stack)
    return stacks


class ReportGenerator:
    """Makes one service's reports: the pool is fixed by ``seed``, each report samples it."""

    def __init__(self, seed: int = 18, frames: int = 2800, pool: int = 2400, callees: int = 0) -> None:
        self.rng = random.Random(seed)
        self.pool = stack_pool(self.rng, frame_pool(self.rng, frames), pool, callees)

    def report(
        self, group: str, start_time_unix_ns: int, duration_ns: int = WINDOW_NS, stacks: int = STACKS_PER_REPORT
    ) -> Profile:
        """A report of ``group`` over ``duration_ns``: ``stacks`` stacks with 1.5 samples each on average."""
        rng = self.rng
        profile = Profile(group=group, start_time_unix_ns=start_time_unix_ns, duration_ns=duration_ns)
        chosen = rng.sample(self.pool, stacks)
        extra = stacks * SAMPLES_PER_REPORT // STACKS_PER_REPORT - stacks
        counts = [1] * stacks
        for _ in range(extra):  # a few hot stacks carry most of the extra samples
            counts[min(int(rng.paretovariate(1.2)) - 1, stacks - 1)] += 1
        for stack, wall in zip(chosen, counts):
            cpu = sum(1 for _ in range(wall) if rng.random() < 0.6)
            profile.add(stack, [wall, cpu], {"endpoint": LABEL_VALUES[rng.random() < 0.4]})
        profile.metadata = {"runtime": "cpython 3.11", "host": f"instance-{rng.randint(0, 999)}"}
        return profile

    def body(self, group: str, start_time_unix_ns: int, version: int = 2) -> bytes:
        """The gzipped wire-format body of :meth:`report`, as the agent sends it (version 2: samples in
        columns, through the agent's own encoder), or with one object per sample (version 1, what
        agents sent before; a server before version 2 reads only these)."""
        report = self.report(group, start_time_unix_ns)
        if version == 1:
            return gzip.compress(greenflame_json.dumps(report), compresslevel=6)
        from greenflame.agent.exporters import encode

        return encode(greenflame_json.profile_to_dict(report), compress=True, columns=True)
