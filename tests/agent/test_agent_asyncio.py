"""asyncio awareness: samples carry their task's name, and labels follow the task, not the thread."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from pathlib import Path
from typing import Any, Dict, List

import greenflame.agent as agent


def read(path: Path) -> Dict[str, Any]:
    data = path.read_bytes()
    document: Dict[str, Any] = json.loads(gzip.decompress(data) if path.name.endswith(".gz") else data)
    return document


def spin(seconds: float) -> None:
    """Burn ``seconds`` of this thread's CPU (not wall time: a loaded machine must not shrink the work)."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


async def checkout_work() -> None:
    for _ in range(20):
        spin(0.01)  # busy inside the task, holding the loop
        await asyncio.sleep(0)


async def search_work() -> None:
    for _ in range(20):
        spin(0.01)
        await asyncio.sleep(0)


async def handler(endpoint: str, work: Any) -> None:
    with agent.labels(endpoint=endpoint):
        await work()


async def main() -> None:
    # Two tasks interleave on one thread, each inside its own labels block.
    await asyncio.gather(
        asyncio.create_task(handler("/checkout", checkout_work), name="checkout-task"),
        asyncio.create_task(handler("/search", search_work), name="search-task"),
    )


def samples_in(report: Dict[str, Any], function: str) -> List[Dict[str, Any]]:
    return [s for s in report["samples"] if any(report["frames"][i]["function"] == function for i in s["stack"])]


def test_labels_and_task_names_follow_each_task(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    agent.start(out=str(out), report_interval_s=3600, rate_hz=300, cpu_budget=1.0)
    asyncio.run(main())
    agent.stop()
    report = read(out)
    checkout, search = samples_in(report, "checkout_work"), samples_in(report, "search_work")
    assert sum(s["values"][0] for s in checkout) >= 10 and sum(s["values"][0] for s in search) >= 10
    for sample in checkout:
        assert sample["labels"]["endpoint"] == "/checkout" and sample["labels"]["asyncio_task"] == "checkout-task"
    for sample in search:
        assert sample["labels"]["endpoint"] == "/search" and sample["labels"]["asyncio_task"] == "search-task"


def test_labels_set_around_the_loop_reach_its_tasks(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    agent.start(out=str(out), report_interval_s=3600, rate_hz=300, cpu_budget=1.0)

    async def unlabelled() -> None:
        await asyncio.create_task(checkout_work(), name="inner")

    with agent.labels(job="nightly"):
        asyncio.run(unlabelled())
    agent.stop()
    samples = samples_in(read(out), "checkout_work")
    assert samples and all(s["labels"]["job"] == "nightly" and s["labels"]["asyncio_task"] == "inner" for s in samples)


def test_labels_are_contextvar_based() -> None:
    from greenflame.agent import threadlabels

    async def inside() -> threadlabels.LabelKey:
        with agent.labels(a=1):
            await asyncio.sleep(0)
            return threadlabels.current()

    async def other() -> threadlabels.LabelKey:
        await asyncio.sleep(0)
        return threadlabels.current()

    async def both() -> List[threadlabels.LabelKey]:
        return list(await asyncio.gather(inside(), other()))

    assert asyncio.run(both()) == [(("a", "1"),), ()]
    assert threadlabels.current() == ()
