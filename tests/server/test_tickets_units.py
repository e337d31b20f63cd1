"""Ticket bodies, escaping, rate-limit header parsing, credentials and the store under concurrency."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import requests
from support.paths import TRACKERS

sys.path.insert(0, str(TRACKERS))

from fake_github import FakeGitHub
from fake_jira import valid_adf
from findings import finding
from support.builders import lambda_profile

from greenflame.analyzer.report import analyze_profile
from greenflame.server.tickets import render_adf, render_markdown, render_wiki
from greenflame.server.tickets.config import ChannelConfig, parse_destination
from greenflame.server.tickets.credentials import Secret, redact
from greenflame.server.tickets.document import build_content
from greenflame.server.tickets.store import TicketStore
from greenflame.server.tickets.subject import TicketSubject
from greenflame.server.tickets.sync import material_change
from greenflame.server.tickets.transport import is_rate_limited, rate_limit_wait_s, reset_time, retry_after_s

HOSTILE = "evil<img src=x onerror=alert(1)>[click](http://x) @admin ``` {code} {noformat} |*_"


def hostile_finding() -> dict:
    frame = {"function": HOSTILE, "file": "app.py", "line": 3}
    return finding(
        title="t " + HOSTILE,
        summary="s " + HOSTILE,
        frames=[{"frames": [frame, "plain string frame"], "count": 7}],
        fix="Do this.\n\n```python\nprint('```')\n```",
    )


def test_markdown_neutralises_frame_names() -> None:
    body = render_markdown.render(build_content("g", TicketSubject.from_mapping(hostile_finding())))
    prose = body.split("```")[0]
    assert "<img" not in prose and "@admin" not in prose and "](http://x)" not in prose
    assert "&#64;\u2060admin" in body and "&lt;img" in body
    assert "````\n" in body  # the fence outgrows the backticks inside the stack
    assert "plain string frame" in body and "(7 samples)" in body


def test_wiki_and_adf_neutralise_frame_names() -> None:
    content = build_content("g", TicketSubject.from_mapping(hostile_finding()))
    wiki = render_wiki.render(content)
    assert "\\[click\\]" in wiki and "{code}\n" not in wiki.split("{code:python}")[0]
    assert wiki.count("{noformat}") == 2  # the frame's own {noformat} was defused
    adf = render_adf.render(content)
    assert valid_adf(adf) and HOSTILE in json.dumps(adf, ensure_ascii=False).replace("\\", "")


def test_body_reads_findings_loosely() -> None:
    bare = {"rule": "r", "fingerprint": "f", "frames": [{"frames": ["a", "b"], "count": 2}, "weird", 5]}
    body = render_markdown.render(build_content("g", TicketSubject.from_mapping(bare)))
    assert "### Where" in body and "Why it matters" not in body and "### Fix" not in body
    assert "```\na\nb\n(2 samples)\n```" in body and "```\nweird\n```" in body and "```\n5\n```" in body


def test_a_finding_and_its_json_make_the_same_ticket() -> None:
    (analysed,) = analyze_profile(lambda_profile(invocations=50)).recommendations
    typed = TicketSubject.from_finding(analysed)
    loose = TicketSubject.from_mapping(json.loads(json.dumps(analysed.to_dict())))
    assert typed == loose
    base = "https://greenflame.example"
    content = build_content("orders", typed, link_base=base)
    assert content == build_content("orders", loose, link_base=base)
    body = render_markdown.render(content)
    assert "`client (/var/lang/lib/python3.11/site-packages/boto3/__init__.py:86)`" in body
    assert f"${analysed.cost_usd_per_month:,.2f} per month" in body and "focus=client" in body
    assert content.numbers == {
        "cost_usd_per_month": analysed.cost_usd_per_month,
        "co2e_kg_per_month": analysed.co2e_kg_per_month,
        "share": analysed.share,
        "times_expected": analysed.times_expected,
    }


def test_a_fix_given_as_text_and_code() -> None:
    subject = TicketSubject.from_mapping(finding(fix={"text": "Reuse it.", "code": "s3 = boto3.client('s3')"}))
    body = render_markdown.render(build_content("g", subject))
    assert "### Fix\n\nReuse it.\n\n```python\ns3 = boto3.client('s3')\n```" in body


def test_material_change_thresholds() -> None:
    posted = {"cost_usd_per_month": 41.0, "co2e_kg_per_month": 0.6, "share": 0.38, "times_expected": 19.0}
    assert not material_change(posted, {**posted, "cost_usd_per_month": 44.0})  # 7%
    assert material_change(posted, {**posted, "cost_usd_per_month": 46.0})  # 11% and $5
    assert not material_change({**posted, "cost_usd_per_month": 0.2}, {**posted, "cost_usd_per_month": 0.9})
    assert material_change(posted, {**posted, "cost_usd_per_month": None})


def test_rate_limit_header_parsing() -> None:
    now = 1_700_000_000.0
    assert retry_after_s("7", now) == 7
    assert retry_after_s("Tue, 14 Nov 2023 22:13:40 GMT", now) == 20
    assert reset_time("1700000030", now) == now + 30
    assert reset_time("15", now) == now + 15
    assert reset_time("2023-11-14T22:14Z", now) == now + 40
    assert rate_limit_wait_s({"RateLimit-Reset": "1700000060"}, now) == 60
    response = requests.Response()
    response.status_code = 403
    response._content = b'{"message": "You have exceeded a secondary rate limit."}'
    assert is_rate_limited(response)
    response._content = b'{"message": "Resource not accessible by integration"}'
    assert not is_rate_limited(response)


def test_credentials_never_show() -> None:
    secret = Secret("s3cr3t-value")
    config = parse_destination("gitlab:acme/shop", None, settings={"token": "s3cr3t-value"})
    assert "s3cr3t" not in repr(config) and "s3cr3t" not in str(secret) and config.token == secret
    assert redact("echo s3cr3t-value back", [secret]) == "echo *** back"
    assert ChannelConfig(kind="gitlab", target="1", api_url="https://gl.example").resolved_api_url.endswith("/api/v4")


def test_lease_is_exclusive_between_store_objects(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    first, second = TicketStore.open(url), TicketStore.open(url)
    held = first.acquire("g", "c", "k" * 32, "fp", "r", "t")
    assert held is not None and second.acquire("g", "c", "k" * 32, "fp", "r", "t") is None
    assert first.release(held, ticket_id="7", state="open")
    again = second.acquire("g", "c", "k" * 32, "fp", "r", "t")
    assert again is not None and again.ticket_id == "7" and len(second.links()) == 1


SCRIPT = """
import sys
sys.path.insert(0, sys.argv[3])
from findings import FAST, finding, subject
from greenflame.server.tickets.config import ChannelConfig
from greenflame.server.tickets.credentials import Secret
from greenflame.server.tickets.store import TicketStore
from greenflame.server.tickets.sync import sync_subjects
config = ChannelConfig(kind="github", target="acme/shop", api_url=sys.argv[1], token=Secret("tok-123456"), policy=FAST)
for status in sync_subjects("orders", [subject()], config, TicketStore.open(sys.argv[2])):
    print(status.action)
"""


def test_several_processes_create_one_issue(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    trackers = str(TRACKERS)
    with FakeGitHub("tok-123456") as github:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", SCRIPT, github.url, db, trackers], stdout=subprocess.PIPE, text=True
            )
            for _ in range(3)
        ]
        actions = sorted(proc.communicate(timeout=60)[0].strip() for proc in procs)
        assert len(github.requests("POST")) == 1 and len(github.issues) == 1
    assert actions.count("created") == 1 and set(actions) <= {"created", "busy", "unchanged"}
