"""Ticket credentials at rest (issue 17, item 3): sealed with Fernet, opened for use, keys rotated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from greenflame.analyzer.errors import UserError
from greenflame.server.app import create_app
from greenflame.server.crypto import SECRET_KEY_FILE, SecretBox, is_sealed, key_folder, load_or_create_key
from greenflame.server.pipeline_store import PipelineStore
from greenflame.server.schema import group_channels
from greenflame.server.storage import Storage

TOKEN = "ghp_atRestToken0123456789"
CHANNEL = {"to": "github:acme/shop", "token": TOKEN, "labels": ["perf"]}


def _stored_json(store: PipelineStore) -> str:
    with store.engine.connect() as conn:
        return "".join(conn.execute(select(group_channels.c.channels_json)).scalars())


def _store(tmp_path: Path, box: SecretBox | None) -> PipelineStore:
    storage = Storage.open(f"sqlite:///{tmp_path / 'g.db'}", str(tmp_path / "blobs"))
    return PipelineStore(storage.engine, box)


def test_tokens_are_sealed_in_the_database_and_opened_for_use(tmp_path: Path) -> None:
    store = _store(tmp_path, SecretBox([Fernet.generate_key()]))
    store.set_channels("g", [CHANNEL])
    raw = json.loads(_stored_json(store))
    assert TOKEN not in _stored_json(store) and is_sealed(raw[0]["token"]) and raw[0]["labels"] == ["perf"]
    assert store.channels("g") == [CHANNEL]


def test_clear_tokens_of_older_versions_are_sealed_at_start_and_keys_rotate(tmp_path: Path) -> None:
    PipelineStore(_store(tmp_path, None).engine).set_channels("g", [CHANNEL])  # as 0.1 stored it
    old, new = Fernet.generate_key(), Fernet.generate_key()
    store = _store(tmp_path, SecretBox([old]))
    assert TOKEN in _stored_json(store) and store.channels("g") == [CHANNEL]  # still readable
    assert store.reseal_channels() == 1 and TOKEN not in _stored_json(store)
    sealed_with_old = _stored_json(store)

    rotated = _store(tmp_path, SecretBox([new, old]))  # the new key first, the old one still opens
    rotated.reseal_channels()
    assert _stored_json(rotated) != sealed_with_old
    assert _store(tmp_path, SecretBox([new])).channels("g") == [CHANNEL]  # the old key can go
    with pytest.raises(UserError, match="cannot be opened"):
        _store(tmp_path, SecretBox([old])).channels("g")


def test_a_tampered_value_is_refused() -> None:
    box = SecretBox([Fernet.generate_key()])
    sealed = box.seal("secret")
    assert box.open(sealed) == "secret"
    with pytest.raises(UserError):
        box.open(sealed[:-4] + "AAAA")


def test_bad_keys_are_a_user_error() -> None:
    with pytest.raises(UserError, match="Fernet keys"):
        SecretBox([b"not-a-key"])


def test_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "data")
    path = tmp_path / "data" / SECRET_KEY_FILE
    assert path.stat().st_mode & 0o777 == 0o600 and load_or_create_key(tmp_path / "data") == key
    Fernet(key)  # a valid key


def test_key_lives_beside_a_sqlite_database(tmp_path: Path) -> None:
    assert key_folder(f"sqlite:///{tmp_path / 'shared' / 'g.db'}", tmp_path / "data") == tmp_path / "shared"
    assert key_folder("postgresql+psycopg://u@h/db", tmp_path / "data") == tmp_path / "data"


def test_the_channels_api_stores_sealed_tokens(tmp_path: Path) -> None:
    app = create_app({"data_dir": str(tmp_path), "admin_token": "admin"})
    client = app.test_client()
    client.post("/api/v1/groups", json={"name": "g"}, headers={"Authorization": "Bearer admin"})
    put = client.put(
        "/api/v1/groups/g/channels", json={"channels": [CHANNEL]}, headers={"Authorization": "Bearer admin"}
    )
    assert put.status_code == 200 and TOKEN not in put.get_data(as_text=True)
    assert TOKEN.encode() not in (tmp_path / "greenflame.db").read_bytes()
    assert (tmp_path / SECRET_KEY_FILE).stat().st_mode & 0o777 == 0o600
