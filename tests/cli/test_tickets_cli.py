"""``tickets push`` and ``tickets status`` on real profile files, a stand-in GitHub and a real database."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Iterator

import pytest
from support.paths import TRACKERS

sys.path.insert(0, str(TRACKERS))

from fake_github import FakeGitHub
from support.builders import lambda_profile

from greenflame.analyzer.errors import UserError
from greenflame.analyzer.formats import dump_profile
from greenflame.cli.tickets import push_command, status_command

TOKEN = "ghp_cli_token_abcdef123"


@pytest.fixture()
def profile_file(tmp_path: Path) -> str:
    path = tmp_path / "brown.json"
    path.write_bytes(dump_profile(lambda_profile(), "json"))
    return str(path)


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GREENFLAME_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("GREENFLAME_DATABASE_URL", raising=False)
    monkeypatch.setenv("GREENFLAME_GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GREENFLAME_PUBLIC_URL", "https://gf.example")
    yield


def test_push_then_status(profile_file: str, env: None) -> None:
    with FakeGitHub(TOKEN) as github:
        out = io.StringIO()
        assert push_command([profile_file], "github:acme/shop", github.url, None, False, out=out) == 0
        assert "created" in out.getvalue() and len(github.issues) == 1
        again = io.StringIO()
        assert push_command([profile_file], "github:acme/shop", github.url, None, False, out=again) == 0
        assert "unchanged" in again.getvalue() and len(github.issues) == 1
        body = next(iter(github.issues.values()))["body"]
        assert "https://gf.example/groups/brown/flamegraph?focus=" in body
    table = io.StringIO()
    assert status_command(out=table) == 0
    lines = table.getvalue().splitlines()
    assert lines[0].split()[:3] == ["GROUP", "CHANNEL", "TICKET"]
    assert lines[1].split()[:5] == ["brown", f"github:acme/shop@{github.url.split('//')[1]}", "1", "open", "created"]


def test_failed_push_exits_1_and_shows_in_status(profile_file: str, env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENFLAME_GITHUB_TOKEN", "ghp_wrong_token_xyz")
    with FakeGitHub(TOKEN) as github:
        out = io.StringIO()
        assert push_command([profile_file], "github:acme/shop", github.url, None, False, out=out) == 1
    assert "rejected the credentials" in out.getvalue() and "ghp_wrong_token_xyz" not in out.getvalue()
    table = io.StringIO()
    status_command(out=table)
    assert "FAILED: GitHub rejected the credentials" in table.getvalue()


def test_dry_run_prints_the_tickets_and_sends_nothing(
    profile_file: str, env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GREENFLAME_GITHUB_TOKEN")
    out = io.StringIO()
    assert push_command([profile_file], "github:acme/shop", None, None, True, out=out) == 0
    text = out.getvalue()
    assert "--- would post to github:acme/shop: greenflame:" in text and "### Fix" in text
    assert "dry run: 1 ticket(s) would be posted" in text
    skipped = io.StringIO()
    push_command([profile_file], "github:acme/shop", None, 1e9, True, out=skipped)
    assert "skip (below --min-usd)" in skipped.getvalue() and "0 ticket(s)" in skipped.getvalue()


@pytest.mark.parametrize(
    ("to", "message"),
    [
        ("github", "--to must be one of"),
        ("jira", "--to must be one of"),
        ("bitbucket:x/y", "--to must be one of"),
        ("github:acme", "github destination must be OWNER/REPO"),
        ("jira-dc:OPS", "API URL (--api-url)"),
    ],
)
def test_bad_destination_is_one_line(profile_file: str, env: None, to: str, message: str) -> None:
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        push_command([profile_file], to, None, None, False)
    assert "\n" not in str(caught.value)


def test_missing_token_is_one_line(profile_file: str, env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GREENFLAME_GITHUB_TOKEN")
    with pytest.raises(UserError, match="set GREENFLAME_GITHUB_TOKEN"):
        push_command([profile_file], "github:acme/shop", None, None, False)
