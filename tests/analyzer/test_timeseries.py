"""Time series from profiles: frame keys, bucketing, gaps, shares, invocation metrics."""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Set, Tuple

import pytest

from greenflame.analyzer.model import Frame, Profile, ProfileError
from greenflame.analyzer.series_counts import note_ancestors
from greenflame.analyzer.timeseries import (
    TOTAL,
    build_series,
    frame_key,
    group_series,
    is_library_file,
)

T0 = 1_767_571_200  # a Monday, 00:00 UTC
MAIN = Frame("main", "/var/task/app.py", 1)
PARSE = Frame("parse", "/var/task/handler.py", 10)
TINY = Frame("tiny", "/var/task/handler.py", 90)


def profile(
    start_s: float,
    counts: Dict[Frame, int],
    duration_s: float = 60,
    group: str = "svc",
    metadata: Optional[dict] = None,
) -> Profile:
    """A profile whose stacks are MAIN -> frame, ``counts[frame]`` CPU and wall samples each."""
    p = Profile(group=group, start_time_unix_ns=int(start_s * 1e9), duration_ns=int(duration_s * 1e9))
    for frame, count in counts.items():
        stack: Sequence[Frame] = [MAIN] if frame == MAIN else [MAIN, frame]
        p.add(stack, [count, count])
    p.metadata = metadata or {}
    return p


def test_frame_key_ignores_lines_and_directories() -> None:
    before = Frame("parse", "/var/task/app/handler.py", 10)
    after = Frame("parse", "/tmp/build-7/app/handler.py", 57)
    assert frame_key(before) == frame_key(after) == "handler.parse"
    assert frame_key(Frame("Client.send", "C:\\src\\pkg\\__init__.py", 3)) == "pkg.Client.send"
    assert frame_key(Frame("handler.parse", "handler.py", 3)) == "handler.parse"
    assert frame_key(Frame("_find_and_load", "<frozen importlib._bootstrap>", 1)) == "_bootstrap._find_and_load"
    assert frame_key(Frame("<lambda>", "<string>", 1)) == "<lambda>"
    assert frame_key(Frame("", "", 0)) == "<unknown>"


def test_library_files() -> None:
    assert is_library_file("/usr/lib/python3.11/json/decoder.py")
    assert is_library_file("/var/task/.venv/lib/python3.11/site-packages/boto3/session.py")
    assert not is_library_file("/var/task/handler.py")
    assert is_library_file("<string>")  # generated: a namedtuple's __new__, a dataclass's __init__


def test_buckets_leave_gaps_missing_and_sum_within_a_bucket() -> None:
    profiles = [
        profile(T0 + 10, {MAIN: 50, PARSE: 50}),
        profile(T0 + 120, {MAIN: 100, PARSE: 100}),  # same 5-minute bucket as the first
        profile(T0 + 300 + 10, {MAIN: 80, PARSE: 20}),
        # nothing between T0 + 600 and T0 + 900: a gap
        profile(T0 + 900 + 10, {MAIN: 90, PARSE: 10}),
    ]
    series = group_series(profiles)[300]
    assert series.times == [T0, T0 + 300, T0 + 900]
    assert series.totals["cpu_samples"] == [300.0, 100.0, 100.0]
    assert series.inclusive["handler.parse"] == pytest.approx([0.5, 0.2, 0.1])
    assert series.inclusive["app.main"] == pytest.approx([1.0, 1.0, 1.0])
    assert series.self_share["app.main"] == pytest.approx([0.5, 0.8, 0.9])
    assert series.ancestors["handler.parse"] == {"app.main"}
    hourly = group_series(profiles)[3600]
    assert hourly.times == [T0]
    assert hourly.inclusive["handler.parse"] == pytest.approx([180 / 500])


def test_series_flattening_has_no_points_in_gaps() -> None:
    profiles = [profile(T0, {MAIN: 10, PARSE: 10}), profile(T0 + 3 * 300, {MAIN: 10})]
    flat = {(s.metric, s.frame): s for s in group_series(profiles, (300,))[300].series()}
    assert flat[("inclusive_share", "handler.parse")].points == [(T0, 0.5), (T0 + 900, 0.0)]
    assert flat[("cpu_samples", TOTAL)].points == [(T0, 20.0), (T0 + 900, 10.0)]
    assert flat[("invocations", TOTAL)].points == []


def test_bucket_is_chosen_by_the_middle_of_the_window() -> None:
    series = group_series([profile(T0 + 200, {MAIN: 1}, duration_s=200)], (300,))[300]
    assert series.times == [T0 + 300]


def test_insignificant_frames_get_no_series() -> None:
    series = group_series([profile(T0, {MAIN: 995, TINY: 5}), profile(T0 + 300, {MAIN: 999, TINY: 1})])[300]
    assert "handler.tiny" not in series.inclusive
    assert "app.main" in series.inclusive


def test_a_frame_significant_once_is_zero_where_absent() -> None:
    series = group_series([profile(T0, {MAIN: 100}), profile(T0 + 300, {MAIN: 50, PARSE: 50})])[300]
    assert series.inclusive["handler.parse"] == [0.0, 0.5]


def test_invocation_metrics_where_known() -> None:
    profiles = [
        profile(T0, {MAIN: 10}, metadata={"invocations": {"count": 4, "duration_ms_sum": 400.0}}),
        profile(T0 + 30, {MAIN: 10}, metadata={"invocations": {"count": 1, "durations_ms": [600.0]}}),
        profile(T0 + 300, {MAIN: 10}),
    ]
    series = group_series(profiles, (300,))[300]
    assert series.totals["invocations"] == [5.0, None]
    assert series.totals["mean_duration_ms"] == [200.0, None]


def test_wall_share_when_there_is_no_cpu() -> None:
    p = profile(T0, {MAIN: 10, PARSE: 30})
    for sample in p.samples:
        sample.values[1] = 0
    series = group_series([p], (300,))[300]
    assert series.share_of == "wall"
    assert series.inclusive["handler.parse"] == [0.75]


def test_groups_are_separate() -> None:
    result = build_series([profile(T0, {MAIN: 1}, group="a"), profile(T0, {MAIN: 1}, group="b")], (300,))
    assert sorted(result) == ["a", "b"]


def test_a_profile_without_time_window_is_an_error() -> None:
    with pytest.raises(ProfileError, match="no start time"):
        build_series([Profile(group="x")])


def test_ancestors_skip_the_frame_itself_and_stacks_already_noted() -> None:
    ancestors: Dict[str, Set[str]] = {}
    seen: Set[Tuple[str, ...]] = set()
    note_ancestors(ancestors, [["main", "walk", "walk", "leaf"], ["main", "leaf"]], seen)
    assert ancestors == {"main": set(), "walk": {"main"}, "leaf": {"main", "walk"}}
    assert seen == {("main", "walk", "walk", "leaf"), ("main", "leaf")}
    ancestors["leaf"].clear()  # a stack seen before is not noted again
    note_ancestors(ancestors, [("main", "leaf"), ("other", "leaf")], seen)
    assert ancestors["leaf"] == {"other"} and ancestors["other"] == set()


def test_series_of_profiles_sharing_stacks_keep_every_ancestor() -> None:
    library = Frame("get", "/opt/python/lib/python3.12/site-packages/requests/api.py", 70)
    profiles = [profile(T0, {MAIN: 10, PARSE: 10}), profile(T0 + 300, {MAIN: 10, PARSE: 10, library: 5})]
    main, parse, lib = frame_key(MAIN), frame_key(PARSE), frame_key(library)
    for series in group_series(profiles).values():
        assert series.ancestors == {main: set(), parse: {main}, lib: {main}}
        assert series.library == {lib}
