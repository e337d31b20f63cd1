"""``greenflame anomalies`` over real profile files written in the greenflame JSON format."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import List

import pytest

from greenflame.analyzer.anomalies import choose_resolution
from greenflame.analyzer.formats import greenflame_json
from greenflame.analyzer.model import Frame, Profile, ProfileError
from greenflame.cli.anomalies import anomalies_command

START_NS = 1_767_571_200 * 10**9 + 14 * 3600 * 10**9  # 2026-01-05 14:00 UTC
WINDOW_NS = 10 * 10**9

HANDLER = Frame("handler", "/var/task/app.py", 5)
PARSE = Frame("parse", "/var/task/app.py", 20)
LOADS = Frame("loads", "/usr/lib/python3.11/json/__init__.py", 299)
QUERY = Frame("query", "/var/task/db.py", 8)


def _window(index: int, parse_share: float, rng: random.Random, line_shift: int) -> Profile:
    profile = Profile(group="orders", start_time_unix_ns=START_NS + index * WINDOW_NS, duration_ns=WINDOW_NS)
    parse = Frame(PARSE.function, PARSE.file, PARSE.line + line_shift)  # a deploy moved the code
    counts = {"parse": 0, "query": 0, "handler": 0}
    for _ in range(1000):
        draw = rng.random()
        kind = "parse" if draw < parse_share else "query" if draw < parse_share + 0.5 else "handler"
        counts[kind] += 1
    profile.add([HANDLER, parse, LOADS], [counts["parse"], counts["parse"]])
    profile.add([HANDLER, QUERY], [counts["query"], counts["query"]])
    profile.add([HANDLER], [counts["handler"], counts["handler"]])
    return profile


def write_run(folder: Path, regression_from: int = 20, count: int = 40) -> List[str]:
    """``count`` 10-second profiles; from ``regression_from`` on, handler.parse takes 30% instead of 5%."""
    rng = random.Random(7)
    paths = []
    for i in range(count):
        regressed = i >= regression_from
        profile = _window(i, 0.30 if regressed else 0.05, rng, line_shift=3 if regressed else 0)
        path = folder / f"profile-{i:03d}.json"
        path.write_bytes(greenflame_json.dumps(profile))
        paths.append(str(path))
    return paths


def test_regression_halfway_names_the_frame(tmp_path: Path) -> None:
    document = json.loads(anomalies_command(write_run(tmp_path), "json"))
    anomalies = document["anomalies"]
    assert [a["frame"] for a in anomalies] == ["app.parse"]
    found = anomalies[0]
    assert found["start"] == "2026-01-05T14:03:20Z"  # the 21st window
    assert found["end"] is None
    assert found["direction"] == "up"
    assert found["baseline"] < 0.1 < 0.2 < found["observed"]
    assert found["score"] > 5
    assert "__init__.loads" not in found["related_frames"]
    assert "json.loads" in found["related_frames"]
    assert found["reason"].startswith("app.parse went from ")


def test_text_format(tmp_path: Path) -> None:
    text = anomalies_command(write_run(tmp_path), "text")
    assert text.startswith("1 anomaly:\n- [orders] app.parse went from ")
    assert "(ongoing)" in text


def test_no_regression_no_anomaly(tmp_path: Path) -> None:
    assert anomalies_command(write_run(tmp_path, regression_from=10**6), "text") == "No anomalies found.\n"


def test_resolution_follows_the_windows(tmp_path: Path) -> None:
    profiles = [greenflame_json.loads(Path(p).read_bytes()) for p in write_run(tmp_path, count=12)]
    assert choose_resolution(profiles) == 10


def test_profile_without_window_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "no-window.json"
    profile = Profile(group="orders")
    profile.add([HANDLER], [1, 1])
    path.write_bytes(greenflame_json.dumps(profile))
    with pytest.raises(ProfileError, match="no start time"):
        anomalies_command([str(path)], "json")


def test_unreadable_file_is_a_profile_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.json"
    path.write_text("{not json")
    with pytest.raises(ProfileError):
        anomalies_command([str(path)], "text")
