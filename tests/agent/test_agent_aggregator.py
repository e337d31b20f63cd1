"""The bounded aggregator and the wire-format document it drains into."""

from __future__ import annotations

from greenflame.agent.aggregator import Aggregator
from greenflame.agent.drops import DropCounter
from greenflame.analyzer.formats import greenflame_json

MAIN = ("main", "app.py", 1)
WORK = ("work", "app.py", 10)
IDLE = ("idle", "app.py", 20)


def test_counts_wall_and_cpu_per_stack_and_labels() -> None:
    aggregator = Aggregator(100, DropCounter(), clock=iter([1_000, 5_000]).__next__)
    aggregator.add([((MAIN, WORK), (), 1, 0), ((MAIN, WORK), (), 0, 0), ((MAIN, IDLE), (), 0, 1)])
    aggregator.add([((MAIN, WORK), (("phase", "invoke"),), 1, 0)])
    report = aggregator.drain("svc", 10_000_000, {"pid": 1})
    profile = greenflame_json.profile_from_dict(report)
    profile.validate()
    assert (profile.group, profile.start_time_unix_ns, profile.duration_ns) == ("svc", 1_000, 4_000)
    assert [t.name for t in profile.sample_types] == ["wall", "cpu", "idle"]
    by_key = {
        (tuple(profile.frames[i].function for i in s.stack), tuple(sorted(s.labels.items()))): s.values
        for s in profile.samples
    }
    assert by_key[("main", "work"), ()] == [2, 1, 0]
    assert by_key[("main", "idle"), ()] == [1, 0, 1]
    assert by_key[("main", "work"), (("phase", "invoke"),)] == [1, 1, 0]
    assert len(by_key) == 3
    assert len(profile.frames) == 3  # frames are shared between stacks


def test_full_aggregator_drops_new_keys_but_still_counts_existing_ones() -> None:
    drops = DropCounter()
    aggregator = Aggregator(2, drops)
    aggregator.add([((MAIN,), (), 1, 0), ((MAIN, WORK), (), 1, 0)])
    aggregator.add(
        [((MAIN, IDLE), (), 0, 1), ((MAIN, IDLE), (), 0, 1), ((MAIN,), (), 1, 0), ((MAIN, WORK), (("a", "b"),), 0, 0)]
    )
    assert len(aggregator) == 2
    assert drops.take() == {"aggregator_full": 3}
    values = {tuple(s["stack"]): s["values"] for s in aggregator.drain("", 1, {})["samples"]}
    assert sorted(values.values()) == [[1, 1, 0], [2, 2, 0]]


def test_drain_starts_a_new_window() -> None:
    times = iter([0, 100, 250])
    aggregator = Aggregator(10, DropCounter(), clock=times.__next__)
    aggregator.add([((MAIN,), (), 0, 0)])
    first = aggregator.drain("", 1, {})
    second = aggregator.drain("", 1, {})
    assert len(first["samples"]) == 1 and second["samples"] == [] and second["frames"] == []
    assert (second["start_time_unix_ns"], second["duration_ns"]) == (100, 150)
