"""The server on a real PostgreSQL, as a deployment that outgrows one machine runs it.

Two ``greenflame serve`` processes share one database and one profile folder, as stateless
servers behind a load balancer do: what one stores, the other serves. ``scripts/test`` starts a
throw-away PostgreSQL server (``scripts/start-postgres``) and names it in
``GREENFLAME_TEST_POSTGRES_URL``; on CI its absence fails the run (tests/conftest.py).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Callable, Dict

from support.server import LiveServer, ingest_profile, make_profile, unique_name, wait_for


def test_two_servers_share_one_postgres_database(
    server_factory: Callable[..., LiveServer], postgres_database: Callable[[], str], tmp_path: Path
) -> None:
    database_url = postgres_database()
    env: Dict[str, str] = {"GREENFLAME_DATABASE_URL": database_url, "GREENFLAME_BLOBS_URL": str(tmp_path / "blobs")}
    first, second = server_factory(env=env), server_factory(env=env)
    group = unique_name("pg")
    key = first.create_group(group)

    retry = {"Idempotency-Key": str(uuid.uuid4())}
    stored = ingest_profile(second, key, make_profile(group), retry)  # the key works on either server
    again = ingest_profile(first, key, make_profile(group), retry)
    assert stored.status_code == 202 and again.status_code == 200
    assert again.json() == {"id": stored.json()["id"], "duplicate": True}
    assert ingest_profile(first, "wrong-key", make_profile(group)).status_code == 403

    listed = {g["name"]: g for g in first.session.get(first.api("/api/v1/groups"), timeout=30).json()["groups"]}
    assert listed[group]["profile_count"] == 1
    graph = second.session.get(second.api(f"/api/v1/groups/{group}/flamegraph?type=wall"), timeout=30).json()
    assert graph["flamegraph"]["total"] == 12
    report = first.session.get(first.api(f"/api/v1/groups/{group}/recommendations"), timeout=30)
    assert report.status_code == 200 and report.json()["group"] == group

    def analysed() -> Any:
        body = second.session.get(second.api(f"/api/v1/groups/{group}/findings"), timeout=30).json()
        return body if (body.get("analysis") or {}).get("summary") else None

    wait_for("an analysis run recorded in the shared database", analysed)
