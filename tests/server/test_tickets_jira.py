"""Jira Cloud (REST v3, ADF) and Jira Server/Data Center (REST v2, wiki) against stand-ins."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator, List

import pytest
import requests
from support.paths import TRACKERS

sys.path.insert(0, str(TRACKERS))

from fake_jira import FakeJira, valid_adf
from findings import FAST, finding, second_subject, subject

from greenflame.server.tickets.config import ChannelConfig, parse_destination
from greenflame.server.tickets.credentials import Secret
from greenflame.server.tickets.jira import fingerprint_label
from greenflame.server.tickets.models import fingerprint_key
from greenflame.server.tickets.store import TicketStore
from greenflame.server.tickets.sync import sync_subjects
from greenflame.server.tickets.transport import RetryPolicy

TOKEN = "jira-api-token-123456"
EMAIL = "bot@example.com"
GROUP = "orders"
KEY = fingerprint_key(GROUP, finding()["fingerprint"])
SVG = '<svg xmlns="http://www.w3.org/2000/svg"><text>handler</text></svg>'


@pytest.fixture(params=["cloud", "dc"])
def jira(request: pytest.FixtureRequest) -> Iterator[FakeJira]:
    with FakeJira(cloud=request.param == "cloud", token=TOKEN, email=EMAIL) as server:
        yield server


@pytest.fixture()
def store(tmp_path: Path) -> TicketStore:
    return TicketStore.open(f"sqlite:///{tmp_path / 'tickets.db'}")


def config(server: FakeJira, token: str = TOKEN, policy: RetryPolicy = FAST) -> ChannelConfig:
    return ChannelConfig(
        kind="jira-cloud" if server.cloud else "jira-dc",
        target="OPS",
        api_url=server.url,
        token=Secret(token),
        email=EMAIL if server.cloud else None,
        components=("Backend",),
        labels=("perf team",),
        policy=policy,
    )


def test_create_update_close_reopen(jira: FakeJira, store: TicketStore) -> None:
    svgs = {finding()["fingerprint"]: SVG}
    created = sync_subjects(GROUP, [subject()], config(jira), store, svgs=svgs)
    assert [s.action for s in created] == ["created"], created
    key = created[0].ticket_id
    assert key == "OPS-1" and created[0].url == f"{jira.url}/browse/OPS-1"
    fields = jira.issues["OPS-1"]["fields"]
    assert set(fields["labels"]) == {"greenflame", "perf-team", fingerprint_label(KEY)}
    if jira.cloud:
        assert valid_adf(fields["description"]) and "$41.00 per month" in str(fields["description"])
    else:
        assert "h3. What" in fields["description"] and "{code:python}" in fields["description"]
        assert "*$41.00 per month*" in fields["description"]
    assert jira.attachments["OPS-1"] == [("evidence.svg", SVG.encode())]

    updated = sync_subjects(GROUP, [subject(cost_usd_per_month=90.0)], config(jira), store)
    assert [s.action for s in updated] == ["updated"] and "$90.00" in str(jira.issues["OPS-1"]["fields"]["description"])

    closed = sync_subjects(GROUP, [], config(jira), store)
    assert [(s.action, s.state) for s in closed] == [("closed", "closed")] and jira.status_of(key) == "Done"
    assert "no longer sees this pattern" in str(jira.comments["OPS-1"][0])

    reopened = sync_subjects(GROUP, [subject()], config(jira), store)
    assert [s.action for s in reopened] == ["reopened"] and jira.status_of(key) == "To Do"
    assert len(jira.issues) == 1


def test_lost_store_recovered_by_label_search_across_pages(jira: FakeJira, store: TicketStore) -> None:
    jira.page_cap = 1
    jira.add_issue("old duplicate", ["greenflame", fingerprint_label(KEY)], status="31")
    live = jira.add_issue("the live one", ["greenflame", fingerprint_label(KEY)], status="21")
    statuses = sync_subjects(GROUP, [subject()], config(jira), store)
    assert [(s.action, s.ticket_id, s.state) for s in statuses] == [("recovered", live, "open")]
    assert len(jira.issues) == 2
    searches = [r for r in jira.requests("GET") if "search" in r.raw_path]
    assert len(searches) == 2 and all(r.raw_path.endswith("/search/jql" if jira.cloud else "/search") for r in searches)


def test_rate_limit_waits_as_jira_says(jira: FakeJira, store: TicketStore) -> None:
    waits: List[float] = []
    jira.throttle(1, wait_s=5, retry_after=not jira.cloud)  # Cloud: only X-RateLimit-Reset (ISO 8601)
    policy = RetryPolicy(deadline_s=600)
    statuses = sync_subjects(GROUP, [subject()], config(jira, policy=policy), store, sleep=waits.append)
    assert [s.action for s in statuses] == ["created"]
    assert len(waits) == 1 and waits[0] >= 5


def test_bad_credentials_fail_visibly(jira: FakeJira, store: TicketStore) -> None:
    statuses = sync_subjects(GROUP, [subject(), second_subject()], config(jira, token="nope-nope"), store)
    assert [s.action for s in statuses] == ["failed", "failed"]
    assert "rejected the credentials (401: Client must be authenticated" in (statuses[0].error or "")


def test_jira_kind_follows_the_configured_email() -> None:
    cloud = parse_destination("jira:OPS", "https://acme.atlassian.net", environ={"GREENFLAME_JIRA_EMAIL": EMAIL})
    server = parse_destination("jira:OPS", "https://jira.example", environ={"GREENFLAME_JIRA_TOKEN": "t0ken"})
    assert (cloud.kind, server.kind, server.token) == ("jira-cloud", "jira-dc", Secret("t0ken"))


def test_the_stand_in_rejects_wrong_requests(jira: FakeJira) -> None:
    url = f"{jira.url}/rest/api/{jira.version}/issue"
    wrong_auth = {"Authorization": f"Bearer {TOKEN}"} if jira.cloud else {"Authorization": "Basic eDp5"}
    good = _auth(jira)
    fields = {"project": {"key": "OPS"}, "issuetype": {"name": "Task"}, "summary": "s"}
    assert requests.post(url, json={"fields": fields}, headers=wrong_auth, timeout=5).status_code == 401
    no_summary = {k: v for k, v in fields.items() if k != "summary"}
    assert requests.post(url, json={"fields": no_summary}, headers=good, timeout=5).status_code == 400
    wrong_description = {
        **fields,
        "description": "text" if jira.cloud else {"type": "doc", "version": 1, "content": []},
    }
    assert requests.post(url, json={"fields": wrong_description}, headers=good, timeout=5).status_code == 400
    assert requests.post(url, data="fields=x", headers=good, timeout=5).status_code == 415
    assert requests.delete(url, headers=good, timeout=5).status_code == 405


def _auth(jira: FakeJira) -> dict:
    import base64

    if jira.cloud:
        return {"Authorization": "Basic " + base64.b64encode(f"{EMAIL}:{TOKEN}".encode()).decode()}
    return {"Authorization": f"Bearer {TOKEN}"}
