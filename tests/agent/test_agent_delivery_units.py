"""The delivery pieces alone, with a fake clock and scripted answers: policy, sender, disk queue, modes."""

from __future__ import annotations

import os
import random
from email.utils import formatdate
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

from greenflame.agent.delivery import ON_FAILURE, QUEUED, WRITE_AHEAD, Delivery, Sender
from greenflame.agent.delivery_policy import (
    DELIVERED,
    REJECTED,
    RETRY,
    RETRYABLE_STATUSES,
    RetryPolicy,
    Verdict,
    classify,
    retry_after_s,
    unreachable,
)
from greenflame.agent.diskqueue import DiskQueue, file_key, safe_segment
from greenflame.agent.drops import DropCounter

NOW = 1_700_000_000.0


class FakeTime:
    """A monotonic clock that only moves when slept on (or when a fake POST takes time)."""

    def __init__(self) -> None:
        self.now = 500.0
        self.sleeps: List[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakePost:
    """Answers POSTs from a script of verdicts (the last one repeats); records what was sent."""

    def __init__(self, fake_time: FakeTime, *script: Verdict, takes_s: float = 0.0) -> None:
        self.time = fake_time
        self.script = list(script)
        self.takes_s = takes_s
        self.sent: List[Tuple[bytes, str, float]] = []

    def __call__(self, body: bytes, key: str, timeout_s: float) -> Verdict:
        self.sent.append((body, key, timeout_s))
        self.time.now += self.takes_s
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]


def ok() -> Verdict:
    return classify(202, None, NOW)


def busy(retry_after: Optional[str] = None) -> Verdict:
    return classify(503, retry_after, NOW)


def refused() -> Verdict:
    return classify(400, None, NOW)


def sender(fake_time: FakeTime, post: FakePost, policy: Optional[RetryPolicy] = None, rng: float = 0.5) -> Sender:
    return Sender(post, policy or RetryPolicy(), fake_time.clock, fake_time.sleep, lambda: rng)


# -- the policy ---------------------------------------------------------------------


def test_retryable_statuses_follow_http_semantics() -> None:
    assert {408, 425, 429, 500, 502, 503, 504} == RETRYABLE_STATUSES
    assert [classify(s, None, NOW).outcome for s in (200, 201, 202, 204)] == [DELIVERED] * 4
    assert all(classify(s, None, NOW).outcome == RETRY for s in RETRYABLE_STATUSES)
    final = (301, 302, 307, 400, 401, 403, 404, 409, 413, 422, 501, 505, 507)
    assert [classify(s, None, NOW).outcome for s in final] == [REJECTED] * len(final)
    assert classify(413, None, NOW).detail == "server answered HTTP 413"


def test_network_failures_are_retried() -> None:
    verdict = unreachable("Connection refused")
    assert verdict.outcome == RETRY and verdict.detail == "cannot reach the server: Connection refused"


def test_retry_after_is_read_on_retryable_answers_only() -> None:
    assert classify(429, "12", NOW).retry_after_s == 12.0
    assert classify(400, "12", NOW).retry_after_s is None  # a final answer: nothing to wait for


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        ("0", 0.0),
        (formatdate(NOW + 20, usegmt=True), 20.0),
        (formatdate(NOW - 20, usegmt=True), 0.0),
        ("inf", None),
        ("nan", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_seconds_or_http_date(header: Optional[str], seconds: Optional[float]) -> None:
    assert retry_after_s(header, NOW) == seconds


def test_backoff_is_full_jitter_doubling_to_the_cap() -> None:
    policy = RetryPolicy(base_s=0.5, cap_s=8.0)
    assert [policy.backoff_s(n, lambda: 1.0) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert policy.backoff_s(3, lambda: 0.0) == 0.0
    waits = [policy.backoff_s(2, random.Random(7).random) for _ in range(50)]
    assert all(0.0 <= w <= 2.0 for w in waits)


def test_the_servers_wait_replaces_the_backoff_and_is_held_at_most_max_hold() -> None:
    policy = RetryPolicy(max_hold_s=60.0)
    assert policy.wait_s(0, busy("3"), lambda: 1.0) == 3.0
    assert policy.wait_s(0, busy(), lambda: 1.0) == 0.5
    assert policy.hold_s(busy("3600")) == 60.0 and policy.hold_s(busy()) == 0.0


# -- the sender -----------------------------------------------------------------------


def test_retries_with_backoff_and_the_same_key_until_delivered() -> None:
    fake_time = FakeTime()
    post = FakePost(fake_time, unreachable("reset"), busy(), ok())
    verdict = sender(fake_time, post, rng=0.5).send(b"body", "key-1", deadline=fake_time.now + 30)
    assert verdict.outcome == DELIVERED
    assert [key for _, key, _ in post.sent] == ["key-1"] * 3
    assert fake_time.sleeps == [0.25, 0.5]  # half of 0.5 s, then half of 1 s


def test_gives_up_after_max_attempts() -> None:
    fake_time = FakeTime()
    post = FakePost(fake_time, busy())
    verdict = sender(fake_time, post, RetryPolicy(max_attempts=3)).send(b"b", "k", fake_time.now + 300)
    assert verdict.outcome == RETRY and verdict.detail == "server answered HTTP 503"
    assert len(post.sent) == 3 and len(fake_time.sleeps) == 2


def test_a_final_answer_is_not_retried() -> None:
    fake_time = FakeTime()
    post = FakePost(fake_time, refused())
    assert sender(fake_time, post).send(b"b", "k", fake_time.now + 30).outcome == REJECTED
    assert len(post.sent) == 1 and fake_time.sleeps == []


def test_honours_retry_after_that_fits_the_deadline() -> None:
    fake_time = FakeTime()
    post = FakePost(fake_time, busy("4"), ok())
    assert sender(fake_time, post).send(b"b", "k", fake_time.now + 30).outcome == DELIVERED
    assert fake_time.sleeps == [4.0]


def test_a_wait_past_the_deadline_is_not_slept_and_holds_later_calls() -> None:
    fake_time = FakeTime()
    post = FakePost(fake_time, busy("120"), ok())
    send = sender(fake_time, post, RetryPolicy(max_hold_s=60.0))
    assert send.send(b"b", "k", fake_time.now + 10).outcome == RETRY
    assert fake_time.sleeps == [] and len(post.sent) == 1
    held = send.send(b"b", "k", fake_time.now + 10)  # the server asked to wait: nothing is sent
    assert held.outcome == RETRY and "asked to wait" in held.detail and len(post.sent) == 1
    fake_time.now += 60  # the hold is capped at max_hold_s
    assert send.send(b"b", "k", fake_time.now + 10).outcome == DELIVERED


def test_no_attempt_without_time_for_one_and_each_timeout_fits_the_deadline() -> None:
    fake_time = FakeTime()
    post = FakePost(fake_time, ok())
    send = sender(fake_time, post, RetryPolicy(min_attempt_s=0.05, timeout_s=2.0))
    verdict = send.send(b"b", "k", fake_time.now + 0.01)
    assert verdict.outcome == RETRY and verdict.detail == "no attempt fitted before the deadline"
    assert post.sent == []
    send.send(b"b", "k", fake_time.now + 30)
    send.send(b"b", "k", fake_time.now + 0.5)
    assert [timeout for _, _, timeout in post.sent] == [2.0, 0.5]


def test_records_when_an_attempt_was_last_considered() -> None:
    fake_time = FakeTime()
    send = sender(fake_time, FakePost(fake_time, ok()))
    assert send.last_attempt == 0.0
    send.attempt(b"b", "k", fake_time.now - 1)  # no time: considered all the same
    assert send.last_attempt == fake_time.now


# -- the disk queue -------------------------------------------------------------------


def test_queued_reports_come_back_oldest_first_with_their_keys(tmp_path: Path) -> None:
    queue = DiskQueue(str(tmp_path / "q"), DropCounter(), "spool")
    for n in range(3):
        assert queue.put(f"body-{n}".encode(), f"key-{n}")
    paths = queue.pending()
    assert [file_key(p) for p in paths] == ["key-0", "key-1", "key-2"]
    assert oct(os.stat(tmp_path / "q").st_mode & 0o777) == "0o700"
    claim = queue.claim(paths[0])
    assert claim is not None and (claim.body, claim.key) == (b"body-0", "key-0")
    assert queue.pending() == paths[1:]  # a held claim is nobody else's to send
    queue.release(claim)
    assert queue.pending() == paths


def test_files_left_by_the_previous_spool_and_outbox_are_read(tmp_path: Path) -> None:
    spool_name = "1700000000000000000-4b2d1f7e-8c1a-4f1e-9d57-0e0a7b0c6f11.json.gz"
    outbox_name = "1700000000000000001-0123456789abcdef0123456789abcdef.json.gz"
    for name in (spool_name, outbox_name, "1700000000000000002-k.json.gz.tmp4242", "notes.txt"):
        (tmp_path / name).write_bytes(b"old")
    queue = DiskQueue(str(tmp_path), DropCounter(), "outbox")
    assert queue.pending() == [str(tmp_path / spool_name), str(tmp_path / outbox_name)]
    assert file_key(spool_name) == "4b2d1f7e-8c1a-4f1e-9d57-0e0a7b0c6f11"
    assert file_key(outbox_name) == "0123456789abcdef0123456789abcdef"
    with pytest.raises(ValueError):
        file_key("notes.txt")


def test_the_file_cap_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    drops = DropCounter()
    queue = DiskQueue(str(tmp_path), drops, "outbox", max_files=2)
    for n in range(5):
        queue.put(b"x", f"k{n}")
    assert [file_key(p) for p in queue.pending()] == ["k3", "k4"]
    assert drops.take() == {"outbox_full": 3}


def test_a_write_failure_raises_for_the_caller_to_judge(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    queue = DiskQueue(str(tmp_path / "file" / "q"), DropCounter(), "spool")
    with pytest.raises(OSError):
        queue.put(b"x", "k")


def test_a_claim_naming_this_process_that_it_does_not_hold_is_released(tmp_path: Path) -> None:
    """A Lambda runtime restarted after a kill may get the killed process's pid."""
    queue = DiskQueue(str(tmp_path), DropCounter(), "outbox")
    queue.put(b"x", "k")
    [path] = queue.pending()
    os.rename(path, f"{path}.{os.getpid()}.claim")  # left by "the previous process" with our pid
    assert queue.pending() == [path]


def test_safe_segment_keeps_file_names_tame() -> None:
    assert safe_segment("checkout-api_v2.prod") == "checkout-api_v2.prod"
    assert safe_segment("a b//c") == "a_b_c"
    assert safe_segment("..") == "default" and safe_segment("") == "default"
    assert safe_segment("x" * 300, 100) == "x" * 100


# -- the two modes --------------------------------------------------------------------


def test_on_failure_queues_what_failed_and_drains_it_after_the_next_delivery(tmp_path: Path) -> None:
    fake_time = FakeTime()
    drops = DropCounter()
    queue = DiskQueue(str(tmp_path), drops, "spool")
    post = FakePost(fake_time, busy(), busy(), ok(), ok(), refused(), ok())
    delivery = Delivery(sender(fake_time, post, RetryPolicy(max_attempts=1)), queue, ON_FAILURE)
    assert delivery.deliver(b"a", "ka", fake_time.now + 5).outcome == QUEUED
    assert delivery.deliver(b"b", "kb", fake_time.now + 5).outcome == QUEUED
    assert delivery.deliver(b"c", "kc", fake_time.now + 5).outcome == DELIVERED  # then a is sent, b refused
    assert [key for _, key, _ in post.sent] == ["ka", "kb", "kc", "ka", "kb"]
    assert queue.pending() == [] and drops.take() == {"spool_rejected": 1}


def test_on_failure_stops_draining_at_the_first_report_that_must_wait(tmp_path: Path) -> None:
    fake_time = FakeTime()
    queue = DiskQueue(str(tmp_path), DropCounter(), "spool")
    queue.put(b"a", "ka")
    queue.put(b"b", "kb")
    post = FakePost(fake_time, ok(), unreachable("reset"), ok())
    delivery = Delivery(sender(fake_time, post, RetryPolicy(max_attempts=1)), queue, ON_FAILURE)
    assert delivery.deliver(b"c", "kc", fake_time.now + 5).outcome == DELIVERED
    assert [file_key(p) for p in queue.pending()] == ["ka", "kb"]  # ka went back, kb was not tried
    assert [key for _, key, _ in post.sent] == ["kc", "ka"]


def test_on_failure_counts_a_report_the_queue_could_not_keep(tmp_path: Path) -> None:
    fake_time = FakeTime()
    drops = DropCounter()
    (tmp_path / "file").write_text("")
    queue = DiskQueue(str(tmp_path / "file"), drops, "spool")
    delivery = Delivery(sender(fake_time, FakePost(fake_time, busy()), RetryPolicy(max_attempts=1)), queue)
    assert delivery.deliver(b"a", "ka", fake_time.now + 5).outcome == RETRY
    assert drops.take() == {"spool_failed": 1}


def test_write_ahead_writes_before_sending_and_deletes_on_success(tmp_path: Path) -> None:
    fake_time = FakeTime()
    queue = DiskQueue(str(tmp_path), DropCounter(), "outbox")
    on_disk_while_sending: List[List[str]] = []

    def post(body: bytes, key: str, timeout_s: float) -> Verdict:
        on_disk_while_sending.append(sorted(os.listdir(tmp_path)))
        return ok()

    delivery = Delivery(Sender(post, RetryPolicy(max_attempts=1), fake_time.clock, fake_time.sleep), queue, WRITE_AHEAD)
    assert delivery.deliver(b"a", "ka", fake_time.now + 1).outcome == DELIVERED
    [listing] = on_disk_while_sending
    assert len(listing) == 1 and listing[0].endswith(f"-ka.json.gz.{os.getpid()}.claim")
    assert os.listdir(tmp_path) == []


def test_write_ahead_keeps_what_was_not_sent_and_counts_refusals_as_rejected_exports(tmp_path: Path) -> None:
    fake_time = FakeTime()
    drops = DropCounter()
    queue = DiskQueue(str(tmp_path), drops, "outbox")
    post = FakePost(fake_time, busy(), refused(), ok())
    delivery = Delivery(sender(fake_time, post, RetryPolicy(max_attempts=1)), queue, WRITE_AHEAD)
    assert delivery.deliver(b"a", "ka", fake_time.now + 1).outcome == QUEUED
    assert [file_key(p) for p in queue.pending()] == ["ka"]
    assert delivery.deliver(b"b", "kb", fake_time.now + 1).outcome == DELIVERED  # a refused, b sent
    assert drops.take() == {"export_rejected": 1} and queue.pending() == []


def test_a_write_ahead_report_cut_off_mid_send_is_sent_by_the_next_process(tmp_path: Path) -> None:
    fake_time = FakeTime()

    def killed(body: bytes, key: str, timeout_s: float) -> Verdict:
        raise SystemExit  # the sandbox died mid-send: the claim is left on disk

    first = Delivery(
        Sender(killed, RetryPolicy(max_attempts=1), fake_time.clock),
        DiskQueue(str(tmp_path), DropCounter(), "outbox"),
        WRITE_AHEAD,
    )
    with pytest.raises(SystemExit):
        first.deliver(b"a", "ka", fake_time.now + 1)
    post = FakePost(fake_time, ok())
    second = Delivery(sender(fake_time, post), DiskQueue(str(tmp_path), DropCounter(), "outbox"), WRITE_AHEAD)
    assert second.drain(fake_time.now + 1)
    assert post.sent == [(b"a", "ka", 1.0)] and os.listdir(tmp_path) == []


def test_write_ahead_sends_directly_when_the_queue_cannot_be_written(tmp_path: Path) -> None:
    fake_time = FakeTime()
    (tmp_path / "file").write_text("")
    drops = DropCounter()
    post = FakePost(fake_time, ok())
    queue = DiskQueue(str(tmp_path / "file"), drops, "outbox")
    delivery = Delivery(sender(fake_time, post), queue, WRITE_AHEAD)
    assert delivery.deliver(b"a", "ka", fake_time.now + 1).outcome == DELIVERED
    assert len(post.sent) == 1 and drops.take() == {}  # delivered: nothing was lost


def test_a_drain_waits_out_the_servers_hold(tmp_path: Path) -> None:
    fake_time = FakeTime()
    queue = DiskQueue(str(tmp_path), DropCounter(), "outbox")
    post = FakePost(fake_time, busy("30"), ok())
    delivery = Delivery(sender(fake_time, post, RetryPolicy(max_attempts=1)), queue, WRITE_AHEAD)
    assert delivery.deliver(b"a", "ka", fake_time.now + 1).outcome == QUEUED
    assert not delivery.drain(fake_time.now + 1) and len(post.sent) == 1
    fake_time.now += 30
    assert delivery.drain(fake_time.now + 1) and len(post.sent) == 2


def test_modes_are_checked() -> None:
    fake_time = FakeTime()
    with pytest.raises(ValueError):
        Delivery(sender(fake_time, FakePost(fake_time, ok())), None, WRITE_AHEAD)
    with pytest.raises(ValueError):
        Delivery(sender(fake_time, FakePost(fake_time, ok())), None, "sometimes")
