"""GitHub Issues channel against a stand-in GitHub REST API on a local port."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator, List

import pytest
from support.paths import TRACKERS

sys.path.insert(0, str(TRACKERS))

from fake_github import FakeGitHub
from findings import FAST, closed_port, finding, second_subject, subject

from greenflame.server.tickets.config import ChannelConfig
from greenflame.server.tickets.credentials import Secret
from greenflame.server.tickets.models import fingerprint_key
from greenflame.server.tickets.store import TicketStore
from greenflame.server.tickets.sync import sync_subjects
from greenflame.server.tickets.transport import RetryPolicy

TOKEN = "ghp_test_token_0123456789"
GROUP = "orders"


@pytest.fixture()
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(TOKEN) as server:
        yield server


@pytest.fixture()
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tickets.db'}"


def config(server_url: str, token: str = TOKEN, policy: RetryPolicy = FAST) -> ChannelConfig:
    return ChannelConfig(
        kind="github",
        target="acme/shop",
        api_url=server_url,
        token=Secret(token),
        link_base="https://greenflame.example",
        policy=policy,
    )


def test_creates_one_issue_with_the_full_body(github: FakeGitHub, db: str) -> None:
    statuses = sync_subjects(GROUP, [subject()], config(github.url), TicketStore.open(db))
    assert [s.action for s in statuses] == ["created"]
    issue = github.by_number(statuses[0].ticket_id)
    assert statuses[0].url == issue["html_url"] and statuses[0].state == "open"
    assert {label["name"] for label in issue["labels"]} == {"greenflame"}
    body = issue["body"]
    for text in ("### What", "### Where", "### Why it matters", "### Fix", "app.py:10", "$41.00 per month"):
        assert text in body
    assert "0.6 kg CO2e per month" in body and "range 0.3 to 1.1" in body
    assert "0.012 g CO2e per invocation before, 0.0007 g after" in body
    assert "```python\nimport boto3" in body
    assert "https://greenflame.example/groups/orders/flamegraph?focus=handler" in body
    assert f"<!-- greenflame:fingerprint={fingerprint_key(GROUP, finding()['fingerprint'])} -->" in body
    sent = github.requests("POST")[0]
    assert sent.header("Accept") == "application/vnd.github+json"
    assert sent.header("X-GitHub-Api-Version") == "2022-11-28"


def test_updates_on_material_change_only_and_never_duplicates(github: FakeGitHub, db: str) -> None:
    store = TicketStore.open(db)
    sync_subjects(GROUP, [subject()], config(github.url), store)
    small = sync_subjects(GROUP, [subject(cost_usd_per_month=41.5)], config(github.url), store)
    assert [s.action for s in small] == ["unchanged"]
    assert not github.requests("PATCH")
    big = sync_subjects(GROUP, [subject(cost_usd_per_month=80.0)], config(github.url), store)
    assert [s.action for s in big] == ["updated"]
    assert len(github.issues) == 1
    assert "$80.00 per month" in github.by_number(big[0].ticket_id)["body"]


def test_closes_with_a_comment_then_reopens(github: FakeGitHub, db: str) -> None:
    store = TicketStore.open(db)
    created = sync_subjects(GROUP, [subject(), second_subject()], config(github.url), store)
    number = created[0].ticket_id
    closed = sync_subjects(GROUP, [second_subject()], config(github.url), store)
    assert sorted(s.action for s in closed) == ["closed", "unchanged"]
    issue = github.by_number(number)
    assert issue["state"] == "closed" and issue["state_reason"] == "completed"
    assert "no longer sees this pattern" in github.comments[int(number)][-1]
    again = sync_subjects(GROUP, [subject(), second_subject()], config(github.url), store)
    assert sorted(s.action for s in again) == ["reopened", "unchanged"]
    assert issue["state"] == "open" and len(github.issues) == 2


def test_no_duplicate_after_restart_on_the_same_database(github: FakeGitHub, db: str) -> None:
    sync_subjects(GROUP, [subject()], config(github.url), TicketStore.open(db))
    again = sync_subjects(GROUP, [subject()], config(github.url), TicketStore.open(db))
    assert [s.action for s in again] == ["unchanged"] and len(github.issues) == 1


def test_lost_store_is_recovered_from_the_marker_across_pages(github: FakeGitHub, tmp_path: Path) -> None:
    first = sync_subjects(GROUP, [subject()], config(github.url), TicketStore.open(f"sqlite:///{tmp_path / 'a.db'}"))
    number = first[0].ticket_id
    github.by_number(number)["state"] = "closed"
    key = fingerprint_key(GROUP, finding()["fingerprint"])
    github.add_issue("a pull request", f"<!-- greenflame:fingerprint={key} -->", ["greenflame"], pull_request=True)
    for index in range(150):  # pushes the real issue onto the second page
        github.add_issue(f"other {index}", "no marker", ["greenflame"])
    fresh = TicketStore.open(f"sqlite:///{tmp_path / 'b.db'}")
    recovered = sync_subjects(GROUP, [subject()], config(github.url), fresh)
    assert [(s.action, s.ticket_id, s.state) for s in recovered] == [("recovered", number, "open")]
    assert not [
        i for i in github.issues.values() if i["title"].startswith("greenflame:") and i["number"] != int(number)
    ]
    assert any(r.raw_path == "/repositories/1/issues" for r in github.requests("GET"))


def test_primary_rate_limit_waits_until_reset(github: FakeGitHub, db: str) -> None:
    github.throttle(1, wait_s=1)
    github.block_for(1)
    statuses = sync_subjects(GROUP, [subject()], config(github.url), TicketStore.open(db))
    assert [s.action for s in statuses] == ["created"]
    assert github.early_requests == 1  # only the first, rejected request came before the reset


def test_secondary_rate_limit_honours_retry_after(github: FakeGitHub, db: str) -> None:
    waits: List[float] = []
    github.throttle(1, kind="secondary", wait_s=7)
    statuses = sync_subjects(
        GROUP,
        [subject()],
        config(github.url, policy=RetryPolicy(deadline_s=30)),
        TicketStore.open(db),
        sleep=waits.append,
    )
    assert [s.action for s in statuses] == ["created"]
    assert len(waits) == 1 and waits[0] >= 7


def test_rate_limit_beyond_the_deadline_is_a_visible_failure_retried_later(github: FakeGitHub, db: str) -> None:
    store = TicketStore.open(db)
    github.throttle(1, wait_s=3600)
    failed = sync_subjects(GROUP, [subject()], config(github.url), store)
    assert failed[0].action == "failed" and "rate limit" in (failed[0].error or "")
    seen = len(github.log)
    waiting = sync_subjects(GROUP, [subject()], config(github.url), store)
    assert waiting[0].action == "failed" and len(github.log) == seen  # the tracker is left alone until the reset


def test_bad_credentials_fail_visibly_without_leaking_the_token(github: FakeGitHub, db: str) -> None:
    store = TicketStore.open(db)
    wrong = "ghp_wrong_token_987654321"
    failed = sync_subjects(GROUP, [subject(), second_subject()], config(github.url, token=wrong), store)
    assert [s.action for s in failed] == ["failed", "failed"]
    assert "rejected the credentials (401: Bad credentials" in (failed[0].error or "")
    assert "not attempted" in (failed[1].error or "")
    assert len(github.log) == 1  # the second finding did not hammer a tracker that refuses us
    assert all(wrong not in repr(s) for s in failed)
    row = store.get(GROUP, config(github.url).channel_key, fingerprint_key(GROUP, finding()["fingerprint"]))
    assert row is not None and row.attempts == 1 and row.last_error
    fixed = sync_subjects(GROUP, [subject(), second_subject()], config(github.url), store)
    assert [s.action for s in fixed] == ["created", "created"]


def test_tracker_down_is_a_failed_status_not_an_exception(db: str) -> None:
    statuses = sync_subjects(GROUP, [subject()], config(closed_port()), TicketStore.open(db))
    assert statuses[0].action == "failed" and "unreachable" in (statuses[0].error or "")


def test_the_stand_in_rejects_wrong_requests(github: FakeGitHub) -> None:
    import requests

    url = f"{github.url}/repos/acme/shop/issues"
    good = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/vnd.github+json"}
    assert requests.post(url, json={"title": "x"}, headers={"Authorization": "Basic abc"}, timeout=5).status_code == 401
    assert requests.post(url, json={"body": "no title"}, headers=good, timeout=5).status_code == 422
    assert requests.post(url, data="title=x", headers=good, timeout=5).status_code == 415
    assert requests.put(url, json={"title": "x"}, headers=good, timeout=5).status_code == 404
