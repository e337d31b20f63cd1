"""GitLab issues channel against a stand-in GitLab REST API v4 on a local port."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator, List

import pytest
import requests
from support.paths import TRACKERS

sys.path.insert(0, str(TRACKERS))

from fake_gitlab import FakeGitLab
from findings import FAST, finding, second_subject, subject

from greenflame.server.tickets.config import ChannelConfig
from greenflame.server.tickets.credentials import Secret
from greenflame.server.tickets.models import fingerprint_key
from greenflame.server.tickets.store import TicketStore
from greenflame.server.tickets.sync import sync_subjects
from greenflame.server.tickets.transport import RetryPolicy

TOKEN = "glpat-test-token-abcdef"
GROUP = "orders"
SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'


@pytest.fixture()
def gitlab() -> Iterator[FakeGitLab]:
    with FakeGitLab(TOKEN) as server:
        yield server


@pytest.fixture()
def store(tmp_path: Path) -> TicketStore:
    return TicketStore.open(f"sqlite:///{tmp_path / 'tickets.db'}")


def config(url: str, token: str = TOKEN, policy: RetryPolicy = FAST) -> ChannelConfig:
    # The API URL without /api/v4, as users paste it: the channel appends it.
    return ChannelConfig(kind="gitlab", target="acme/shop", api_url=url, token=Secret(token), policy=policy)


def test_create_update_close_reopen(gitlab: FakeGitLab, store: TicketStore) -> None:
    svgs = {finding()["fingerprint"]: SVG}
    created = sync_subjects(GROUP, [subject()], config(gitlab.url), store, svgs=svgs)
    assert [s.action for s in created] == ["created"]
    iid = int(created[0].ticket_id or 0)
    issue = gitlab.issues[iid]
    assert issue["labels"] == ["greenflame"] and issue["state"] == "opened"
    assert "![evidence](/uploads/" in issue["description"] and gitlab.uploads == [SVG.encode()]
    assert gitlab.requests("POST")[0].raw_path == "/api/v4/projects/acme%2Fshop/uploads"

    updated = sync_subjects(GROUP, [subject(co2e_kg_per_month=1.4)], config(gitlab.url), store)
    assert [s.action for s in updated] == ["updated"] and "1.4 kg CO2e" in issue["description"]

    closed = sync_subjects(GROUP, [], config(gitlab.url), store)
    assert [s.action for s in closed] == ["closed"] and issue["state"] == "closed"
    assert "no longer sees this pattern" in gitlab.notes[iid][0]

    reopened = sync_subjects(GROUP, [subject()], config(gitlab.url), store)
    assert [s.action for s in reopened] == ["reopened"] and issue["state"] == "opened"
    assert len(gitlab.issues) == 1


def test_lost_store_recovered_through_x_next_page(gitlab: FakeGitLab, tmp_path: Path) -> None:
    key = fingerprint_key(GROUP, finding()["fingerprint"])
    iid = gitlab.add_issue("old", f"body\n\n<!-- greenflame:fingerprint={key} -->\n", ["greenflame"], state="closed")
    for index in range(120):
        gitlab.add_issue(f"other {index}", "unrelated", ["greenflame"])
    store = TicketStore.open(f"sqlite:///{tmp_path / 'fresh.db'}")
    statuses = sync_subjects(GROUP, [subject()], config(gitlab.url), store)
    assert [(s.action, s.ticket_id) for s in statuses] == [("recovered", str(iid))]
    assert gitlab.issues[iid]["state"] == "opened" and len(gitlab.issues) == 121
    pages = [r.arg("page") for r in gitlab.requests("GET")]
    assert pages == ["1", "2"]


def test_429_waits_for_ratelimit_reset(gitlab: FakeGitLab, store: TicketStore) -> None:
    waits: List[float] = []
    gitlab.throttle(1, wait_s=20, retry_after=False)
    statuses = sync_subjects(
        GROUP, [subject()], config(gitlab.url, policy=RetryPolicy(deadline_s=60)), store, sleep=waits.append
    )
    assert [s.action for s in statuses] == ["created"]
    assert len(waits) == 1 and waits[0] >= 19  # from RateLimit-Reset (epoch seconds)


def test_bad_token_is_a_failed_status(gitlab: FakeGitLab, store: TicketStore) -> None:
    statuses = sync_subjects(GROUP, [subject(), second_subject()], config(gitlab.url, token="glpat-wrong"), store)
    assert [s.action for s in statuses] == ["failed", "failed"]
    assert "GitLab rejected the credentials (401: 401 Unauthorized)" in (statuses[0].error or "")
    assert not gitlab.issues


def test_the_stand_in_rejects_wrong_requests(gitlab: FakeGitLab) -> None:
    base = f"{gitlab.url}/api/v4/projects/acme%2Fshop"
    auth = {"PRIVATE-TOKEN": TOKEN}
    assert (
        requests.post(f"{base}/issues", json={"title": "x"}, headers={"Authorization": TOKEN}, timeout=5).status_code
        == 401
    )
    assert requests.post(f"{base}/issues", json={"description": "no title"}, headers=auth, timeout=5).status_code == 400
    assert (
        requests.post(f"{base}/issues", data="x", headers={**auth, "Content-Type": "text/plain"}, timeout=5).status_code
        == 415
    )
    assert (
        requests.post(
            f"{gitlab.url}/api/v4/projects/acme/shop/issues", json={"title": "x"}, headers=auth, timeout=5
        ).status_code
        == 404
    )
    assert requests.delete(f"{base}/issues", headers=auth, timeout=5).status_code == 405
    iid = gitlab.add_issue("t", "d", [])
    bad_event = requests.put(f"{base}/issues/{iid}", json={"state_event": "closed"}, headers=auth, timeout=5)
    assert bad_event.status_code == 400
