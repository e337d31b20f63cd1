"""The folder blob store: atomic, private files, folders made again when removed."""

from __future__ import annotations

import os
import shutil
import stat
import threading
from pathlib import Path

import pytest

from greenflame.server.blobs import FolderBlobStore


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_put_reads_back_private_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = FolderBlobStore(tmp_path / "blobs")
    store.put("profiles/ab/one.json.gz", b"first")
    store.put("profiles/ab/one.json.gz", b"second, longer")
    assert store.get("profiles/ab/one.json.gz") == b"second, longer"
    written = tmp_path / "blobs" / "profiles" / "ab" / "one.json.gz"
    assert _mode(written) == 0o600 and _mode(written.parent) == 0o700
    assert [p.name for p in written.parent.iterdir()] == ["one.json.gz"]


def test_a_removed_folder_is_made_again(tmp_path: Path) -> None:
    store = FolderBlobStore(tmp_path / "blobs")
    store.put("profiles/cd/one.json.gz", b"one")
    shutil.rmtree(tmp_path / "blobs" / "profiles")
    store.put("profiles/cd/two.json.gz", b"two")
    assert store.get("profiles/cd/two.json.gz") == b"two"
    assert _mode(tmp_path / "blobs" / "profiles" / "cd") == 0o700
    with pytest.raises(KeyError):
        store.get("profiles/cd/one.json.gz")


def test_a_large_blob_is_written_whole(tmp_path: Path) -> None:
    store = FolderBlobStore(tmp_path / "blobs")
    data = bytes(range(256)) * 40_000  # 10 MB: more than one write may take
    store.put("profiles/ef/big.json.gz", data)
    assert store.get("profiles/ef/big.json.gz") == data


def test_a_stale_temporary_name_is_skipped(tmp_path: Path) -> None:
    store = FolderBlobStore(tmp_path / "blobs")
    store.put("profiles/gh/one.json.gz", b"one")
    folder = tmp_path / "blobs" / "profiles" / "gh"
    for n in range(1, 4):  # left by a process that had the same pid, say
        (folder / f".tmp-{os.getpid()}-{n}").write_bytes(b"stale")
    store.put("profiles/gh/two.json.gz", b"two")
    assert store.get("profiles/gh/two.json.gz") == b"two"
    assert (folder / f".tmp-{os.getpid()}-1").read_bytes() == b"stale"


def test_concurrent_puts_of_one_key_leave_one_whole_blob(tmp_path: Path) -> None:
    store = FolderBlobStore(tmp_path / "blobs")
    bodies = [bytes([n]) * 200_000 for n in range(8)]
    threads = [threading.Thread(target=store.put, args=("profiles/ij/same.json.gz", body)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.get("profiles/ij/same.json.gz") in bodies
    assert [p.name for p in (tmp_path / "blobs" / "profiles" / "ij").iterdir()] == ["same.json.gz"]
