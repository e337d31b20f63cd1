"""Data files at rest (issue 17, item 3): folders 0700, files 0600, whatever the umask."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from greenflame.server.app import create_app
from greenflame.server.private_files import private_dir, private_file


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0o002)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_the_data_folder_and_everything_in_it_are_private(tmp_path: Path, open_umask: None) -> None:
    data = tmp_path / "new" / "data"
    app = create_app({"data_dir": str(data)})
    app.test_client().get("/api/v1/groups")
    modes = {path.name: _mode(path) for path in [data, *data.rglob("*")]}
    assert modes["data"] == modes["profiles"] == 0o700 and _mode(tmp_path / "new") == 0o700
    assert modes["greenflame.db"] == modes["admin-token"] == 0o600
    assert all(mode & 0o077 == 0 for mode in modes.values()), modes


def test_private_file_tightens_an_existing_file_and_keeps_its_content(tmp_path: Path) -> None:
    path = tmp_path / "db"
    path.write_text("kept")
    path.chmod(0o644)
    private_file(path)
    assert _mode(path) == 0o600 and path.read_text() == "kept"


def test_private_dir_leaves_existing_folders_alone(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    private_dir(tmp_path / "a" / "b")
    assert _mode(tmp_path) == 0o755 and _mode(tmp_path / "a") == _mode(tmp_path / "a" / "b") == 0o700
