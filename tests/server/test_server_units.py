"""Pure pieces of the server: time ranges, bounded decompression, settings and their documentation."""

from __future__ import annotations

import gzip
import io
import re
import zlib
from pathlib import Path
from typing import Optional

import pytest
from support.paths import ROOT

from greenflame.analyzer.errors import UserError
from greenflame.server.bodies import BadEncoding, BodyTooLarge, gunzip_limited, read_limited
from greenflame.server.errors import ApiError
from greenflame.server.settings import Settings, describe, load_or_create_admin_token
from greenflame.server.timerange import parse_range, parse_time

NOW = 1_800_000_000 * 10**9
DOCS = ROOT / "docs" / "api.md"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1700000000", 1_700_000_000 * 10**9),
        ("1700000000.5", 1_700_000_000 * 10**9 + 500_000_000),
        ("2023-11-14T22:13:20Z", 1_700_000_000 * 10**9),
        ("2023-11-14T23:13:20+01:00", 1_700_000_000 * 10**9),
        ("2023-11-14T22:13:20.25", 1_700_000_000 * 10**9 + 250_000_000),
        ("now", NOW),
        ("now-90s", NOW - 90 * 10**9),
        ("now-2h", NOW - 7200 * 10**9),
        ("now-1w", NOW - 604800 * 10**9),
        ("", None),
        (None, None),
    ],
)
def test_parse_time(text: Optional[str], expected: Optional[int]) -> None:
    assert parse_time("from", text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "now-1y", "now+1h", "nan", "inf", "1e400", "2023-13-01"])
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_time("from", text, NOW)
    assert caught.value.status == 400 and "from must be" in caught.value.message


def test_parse_range_order() -> None:
    assert parse_range("1", "2") == (10**9, 2 * 10**9)
    with pytest.raises(ApiError):
        parse_range("2", "1")


def test_gunzip_limited_round_trip_and_multiple_members() -> None:
    assert gunzip_limited(gzip.compress(b"abc"), 3) == b"abc"
    assert gunzip_limited(gzip.compress(b"ab") + gzip.compress(b"cd"), 10) == b"abcd"


def test_gunzip_limited_stops_at_the_limit_without_inflating_everything() -> None:
    bomb = gzip.compress(b"\0" * 50_000_000)  # 50 MB of zeros in about 50 KB
    with pytest.raises(BodyTooLarge):
        gunzip_limited(bomb, 1_000_000)
    with pytest.raises(BodyTooLarge):
        gunzip_limited(gzip.compress(b"abcd"), 3)


@pytest.mark.parametrize(
    "data",
    [b"", b"plain text", gzip.compress(b"hello")[:-3], gzip.compress(b"x") + b"trailing", zlib.compress(b"zlib")],
)
def test_gunzip_limited_rejects_bad_gzip(data: bytes) -> None:
    with pytest.raises(BadEncoding):
        gunzip_limited(data, 1000)


def test_read_limited() -> None:
    assert read_limited(io.BytesIO(b"12345"), None, 5) == b"12345"
    with pytest.raises(BodyTooLarge):
        read_limited(io.BytesIO(b"123456"), None, 5)
    with pytest.raises(BodyTooLarge):
        read_limited(io.BytesIO(b""), 6, 5)  # refused on the declared length alone


def test_settings_from_environment_and_overrides(tmp_path: Path) -> None:
    env = {"GREENFLAME_PORT": "9000", "GREENFLAME_DATA_DIR": str(tmp_path), "GREENFLAME_MAX_UPLOAD_BYTES": "1_024"}
    settings = Settings.from_env({"port": 9001, "host": None}, environ=env)
    assert (settings.port, settings.host, settings.max_upload_bytes) == (9001, "127.0.0.1", 1024)
    assert settings.resolved_database_url() == f"sqlite:///{tmp_path.resolve()}/greenflame.db"
    assert settings.resolved_blobs_url() == str(tmp_path.resolve() / "profiles")
    with pytest.raises(UserError, match="GREENFLAME_PORT must be a whole number"):
        Settings.from_env(environ={"GREENFLAME_PORT": "eighty"})
    with pytest.raises(UserError, match="max_upload_bytes must be above zero"):
        Settings.from_env({"max_upload_bytes": 0}, environ={})
    with pytest.raises(UserError, match="unknown server setting"):
        Settings.from_env({"colour": "green"}, environ={})


def test_admin_token_file(tmp_path: Path) -> None:
    token = load_or_create_admin_token(tmp_path / "data")
    assert len(token) >= 32 and (tmp_path / "data" / "admin-token").stat().st_mode & 0o777 == 0o600
    assert load_or_create_admin_token(tmp_path / "data") == token
    (tmp_path / "data" / "admin-token").write_text("\n")
    with pytest.raises(UserError, match="is empty"):
        load_or_create_admin_token(tmp_path / "data")


def test_docs_list_every_setting() -> None:
    text = DOCS.read_text(encoding="utf-8")
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(GREENFLAME_\w+)` \| ([^|]+) \|", text, re.MULTILINE)}
    declared = {env: kind for _, env, kind, _, _ in describe()}
    assert {env: kind.strip() for env, kind in rows.items()} == declared
