"""The signed JSON webhook channel against a local receiver that verifies every signature."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
from support.paths import TRACKERS

sys.path.insert(0, str(TRACKERS))

from fake_webhook import FakeWebhookReceiver
from findings import FAST, finding, subject

from greenflame.server.tickets.config import ChannelConfig
from greenflame.server.tickets.credentials import Secret
from greenflame.server.tickets.store import TicketStore
from greenflame.server.tickets.sync import sync_subjects
from greenflame.server.tickets.webhook import sign, verify_signature

SECRET = "whsec-test-secret"
GROUP = "orders"


@pytest.fixture()
def receiver() -> Iterator[FakeWebhookReceiver]:
    with FakeWebhookReceiver(SECRET) as server:
        yield server


@pytest.fixture()
def store(tmp_path: Path) -> TicketStore:
    return TicketStore.open(f"sqlite:///{tmp_path / 'tickets.db'}")


def config(receiver: FakeWebhookReceiver, secret: str = SECRET) -> ChannelConfig:
    url = f"{receiver.url}{receiver.path}"
    return ChannelConfig(kind="webhook", target=url, token=Secret(secret) if secret else None, policy=FAST)


def test_events_follow_the_finding(receiver: FakeWebhookReceiver, store: TicketStore) -> None:
    svgs = {finding()["fingerprint"]: "<svg/>"}
    sync_subjects(GROUP, [subject()], config(receiver), store, svgs=svgs)
    sync_subjects(GROUP, [subject(cost_usd_per_month=100.0)], config(receiver), store)
    sync_subjects(GROUP, [], config(receiver), store)
    sync_subjects(GROUP, [subject()], config(receiver), store)
    kinds = [event["event"] for event in receiver.events]
    assert kinds == ["finding.opened", "finding.updated", "finding.resolved", "finding.reopened", "finding.updated"]
    opened = receiver.events[0]
    assert opened["finding"]["cost_usd_per_month"] == 41.0 and opened["evidence_svg"] == "<svg/>"
    assert opened["group"] == GROUP and "### Fix" in opened["markdown"]
    assert "no longer sees this pattern" in receiver.events[2]["comment"]
    deliveries = {r.header("X-Greenflame-Delivery") for r in receiver.requests("POST")}
    assert len(deliveries) == len(receiver.events)


def test_signature_verifies_and_rejects_tampering(receiver: FakeWebhookReceiver, store: TicketStore) -> None:
    sync_subjects(GROUP, [subject()], config(receiver), store)
    request = receiver.requests("POST")[0]
    stamp, signature = request.header("X-Greenflame-Timestamp"), request.header("X-Greenflame-Signature-256")
    assert verify_signature(SECRET.encode(), request.body, stamp, signature)
    assert not verify_signature(SECRET.encode(), request.body + b" ", stamp, signature)
    assert not verify_signature(b"other secret", request.body, stamp, signature)
    assert not verify_signature(SECRET.encode(), request.body, stamp, signature, now=time.time() + 3600)
    assert sign(SECRET.encode(), stamp, request.body) == signature
    assert json.loads(request.body)["event"] == "finding.opened"


def test_wrong_secret_and_missing_secret_fail_visibly(receiver: FakeWebhookReceiver, store: TicketStore) -> None:
    wrong = sync_subjects(GROUP, [subject()], config(receiver, secret="whsec-wrong"), store)
    assert wrong[0].action == "failed" and "rejected the credentials (401: bad signature)" in (wrong[0].error or "")
    missing = sync_subjects(GROUP, [subject()], config(receiver, secret=""), store)
    assert missing[0].action == "failed" and "GREENFLAME_WEBHOOK_SECRET" in (missing[0].error or "")
    assert not receiver.events


def test_receiver_busy_then_ok_is_retried(receiver: FakeWebhookReceiver, store: TicketStore) -> None:
    receiver.throttle(2, wait_s=0)
    statuses = sync_subjects(GROUP, [subject()], config(receiver), store)
    assert [s.action for s in statuses] == ["created"] and len(receiver.requests("POST")) == 3


def test_channel_key_hides_the_webhook_url() -> None:
    url = "https://hooks.example.com/services/T000/B000/very-secret-path?token=abc"
    key = ChannelConfig(kind="webhook", target=url).channel_key
    assert key.startswith("webhook:hooks.example.com#") and "secret" not in key and "abc" not in key
