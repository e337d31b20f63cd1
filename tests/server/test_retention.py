"""Retention with real processes: raw profiles past their span become hourly then daily profiles,
on SQLite and PostgreSQL; reads (flame graph, time series, group summary) are unchanged by it,
the raw bodies and 5-minute series go, and a late report for a compacted hour joins it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
from sqlalchemy import create_engine, select

from greenflame.analyzer.model import CPU, WALL, Profile, merge
from greenflame.server.schema import profiles, rollup_buckets, series_buckets
from greenflame.server.views import flamegraph_view
from tests.support.server import LiveServer, ingest_profile, make_profile, unique_name, wait_for

HOUR_S = 3600
DAY_S = 86400
#: Raw profiles are compacted two seconds after they arrive (once their hour has ended), hours
#: into days four seconds after, days kept ten days.
SPANS = {
    "GREENFLAME_RAW_RETENTION_S": "2",
    "GREENFLAME_HOURLY_RETENTION_S": "4",
    "GREENFLAME_DAILY_RETENTION_S": str(10 * DAY_S),
    "GREENFLAME_ANOMALY_HISTORY_S": "1",
    "GREENFLAME_ANALYSIS_WINDOW_S": "1",
    "GREENFLAME_COMPACTION_INTERVAL_S": "1",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'retention.db'}"
    make: Callable[[], str] = request.getfixturevalue("postgres_database")
    return make()


def at(unix_s: int, scale: int, group: str) -> Profile:
    profile = make_profile(group, unix_s * 10**9, scale)
    profile.add([profile.frames[0]], [scale, scale], {"endpoint": f"e{scale}"})  # labels go with compaction
    return profile


def flamegraph(server: LiveServer, group: str, start_s: int, end_s: int, sample_type: str) -> Dict[str, Any]:
    query = {"from": str(start_s), "to": str(end_s), "type": sample_type, "max_nodes": "1000"}
    response = server.session.get(server.api(f"/api/v1/groups/{group}/flamegraph"), params=query, timeout=30)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_raw_profiles_become_hourly_then_daily_and_reads_stay_the_same(
    server_factory: Callable[..., LiveServer], database: str, tmp_path: Path
) -> None:
    server = server_factory(env={**SPANS, "GREENFLAME_DATABASE_URL": database})
    group = unique_name("kept")
    key = server.create_group(group)
    now_s = int(time.time())
    old_hour = (now_s - 3 * DAY_S) // HOUR_S * HOUR_S  # merged into its day
    last_hour = now_s // HOUR_S * HOUR_S - HOUR_S  # ended: an hourly profile (or, just after midnight, a day's)
    sent: List[Profile] = [
        at(old_hour, 1, group),
        at(old_hour + 600, 2, group),
        at(last_hour + 60, 3, group),
        at(now_s - 30, 4, group),  # its hour is not over: stays raw
    ]
    for profile in sent:
        assert ingest_profile(server, key, profile).status_code == 202
    engine = create_engine(database)
    b = rollup_buckets.c

    def buckets() -> Dict[int, List[int]]:
        with engine.connect() as conn:
            rows = conn.execute(
                select(b.resolution_s, b.bucket_start_unix_s, b.profile_count).where(b.group_name == group)
            )
            found: Dict[int, List[int]] = {}
            for resolution, _start, count in rows:
                found.setdefault(int(resolution), []).append(int(count))
            return found

    old_day = old_hour // DAY_S * DAY_S
    yesterday = last_hour < now_s // DAY_S * DAY_S
    found = wait_for(
        "the old hour merged into its day, the last hour compacted",
        lambda: (lambda f: f if sum(f.get(DAY_S, [])) + sum(f.get(HOUR_S, [])) == 3 and DAY_S in f else None)(
            buckets()
        ),
    )
    assert sorted(found[DAY_S]) == ([1, 2] if yesterday else [2]) and found.get(HOUR_S, []) == (
        [] if yesterday else [1]
    )
    with engine.connect() as conn:
        raw = conn.execute(select(profiles.c.start_time_unix_ns).where(profiles.c.group_name == group)).all()
        series = conn.execute(
            select(series_buckets.c.resolution_s, series_buckets.c.bucket_start_unix_s).where(
                series_buckets.c.group_name == group
            )
        ).all()
    assert [row[0] for row in raw] == [sent[3].start_time_unix_ns]
    assert {int(r) for r, start in series if start < now_s - HOUR_S} <= {HOUR_S, DAY_S}  # 5-minute rows summed
    assert (DAY_S, old_day) in {(int(r), int(s)) for r, s in series}
    bodies = list((server.data_dir / "profiles" / "profiles").rglob("*.json.gz"))
    assert len(bodies) == 1  # only the raw profile's body is left

    # Reads over compacted and raw data are what they were over the raw profiles.
    for sample_type in (CPU, WALL):
        shown = flamegraph(server, group, old_hour - HOUR_S, now_s + 60, sample_type)
        assert shown["flamegraph"] == flamegraph_view(merge(sent, group), sample_type, 1000)
        assert shown["profile_count"] == 4
    summary = server.session.get(server.api(f"/api/v1/groups/{group}"), timeout=30).json()
    assert summary["profile_count"] == 4
    points = server.session.get(
        server.api(f"/api/v1/groups/{group}/timeseries"),
        params={"from": str(old_hour - HOUR_S), "to": str(now_s + 60)},
        timeout=30,
    ).json()["points"]
    assert sum(point["cpu"] for point in points) == sum(p.total(CPU) for p in sent)
    assert sum(point["profiles"] for point in points) == 4
    # The old day alone: its two profiles, compacted.
    only_old = flamegraph(server, group, old_hour, old_hour + HOUR_S, CPU)
    assert only_old["flamegraph"] == flamegraph_view(merge(sent[:2], group), CPU, 1000)

    # A report arriving late for the compacted day is merged into it at a later pass.
    late = at(old_hour + 1200, 5, group)
    assert ingest_profile(server, key, late).status_code == 202
    wait_for(
        "the late report merged into its day",
        lambda: sum(buckets().get(DAY_S, [])) + sum(buckets().get(HOUR_S, [])) == 4,
    )
    everything = flamegraph(server, group, old_hour - HOUR_S, now_s + 60, CPU)
    assert everything["flamegraph"] == flamegraph_view(merge([*sent, late], group), CPU, 1000)
    assert "Traceback" not in server.log()
