"""``greenflame tokens create|list|revoke`` on a real SQLite database, as an admin runs them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from greenflame.cli.main import main
from greenflame.server.db import make_engine
from greenflame.server.tokens import TokenStore


def test_create_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'greenflame.db'}"
    assert main(["tokens", "create", "--scope", "read", "--name", "grafana", "--db", db]) == 0
    out = capsys.readouterr().out
    secret = re.search(r"token:\s+(gft_\S+)", out).group(1)  # type: ignore[union-attr]
    token_id = re.search(r"id:\s+([0-9a-f]{32})", out).group(1)  # type: ignore[union-attr]
    engine = make_engine(db)
    try:
        store = TokenStore(engine)
        assert store.find_bearer(secret) is not None  # the printed secret works
        assert main(["tokens", "create", "--scope", "admin", "--link", "--db", db]) == 0
        assert "/sign-in/link/gfl_" in capsys.readouterr().out
        assert main(["tokens", "list", "--db", db]) == 0
        listing = capsys.readouterr().out
        assert token_id in listing and "grafana" in listing and secret not in listing
        assert main(["tokens", "revoke", token_id, "--db", db]) == 0
        assert store.find_bearer(secret) is None
        assert "revoked" in (capsys.readouterr().out)
    finally:
        engine.dispose()


def test_mistakes_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'greenflame.db'}"
    assert main(["tokens", "revoke", "0" * 32, "--db", db]) == 2
    assert main(["tokens", "create", "--scope", "read", "--group", "nope", "--db", db]) == 2
    assert main(["tokens", "create", "--scope", "ingest", "--link", "--db", db]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(line.startswith("greenflame: error: ") for line in errors)
    assert "Traceback" not in "".join(errors)
