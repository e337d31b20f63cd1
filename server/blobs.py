"""Blob stores: where the server keeps profile bodies (gzipped wire-format JSON).

A local folder (the default), or any S3-compatible object store (``s3://bucket/prefix``,
through boto3: AWS S3, MinIO, Ceph, ...); both implement the :class:`BlobStore` protocol.
"""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path
from typing import Any, Optional, Protocol, Set, Tuple
from urllib.parse import unquote, urlparse

from greenflame.analyzer.errors import UserError

from .private_files import FILE_MODE, private_dir

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
#: A new file for a blob's bytes (binary: Windows would otherwise turn each \n into \r\n).
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
#: Attempts per S3 call (boto3's "standard" retry mode backs off between them).
S3_ATTEMPTS = 5


def checked_key(key: str) -> str:
    """``key`` if it is a valid blob key (path-like, no ``..``); else ValueError."""
    if not _KEY.match(key) or ".." in key:
        raise ValueError(f"invalid blob key {key!r}")
    return key


class BlobStore(Protocol):
    """Stores opaque bytes under keys such as ``profiles/ab/abcdef.json.gz``."""

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, replacing what was there."""

    def get(self, key: str) -> bytes:
        """The bytes under ``key``; KeyError if there are none."""

    def delete(self, key: str) -> None:
        """Remove ``key``; no error if it is absent."""


class FolderBlobStore:
    """Blobs as files under one folder, written atomically (temporary file, then rename).

    A put is four system calls (open, write, close, rename) once its folder is known to exist:
    each lets go of the interpreter lock, and under ingest every hand-over costs the others time.
    """

    def __init__(self, root: Path) -> None:
        self.root = private_dir(root)
        #: Folders made or seen by this store (a folder removed since is made again on demand).
        self._folders: Set[Path] = set()
        self._temp_names = itertools.count()

    def _path(self, key: str) -> Path:
        return self.root / checked_key(key)

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``; readers never see a half-written file."""
        path = self._path(key)
        if path.parent not in self._folders:
            self._folders.add(private_dir(path.parent))
        temp, fd = self._create_temp(path.parent)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def _create_temp(self, folder: Path) -> Tuple[Path, int]:
        """A new private file in ``folder`` (made again if it was removed), open for writing."""
        while True:
            # Unique in this process by the counter, among processes by the pid; O_EXCL makes sure.
            temp = folder / f".tmp-{os.getpid()}-{next(self._temp_names)}"
            try:
                return temp, os.open(temp, _NEW_FILE_FLAGS, FILE_MODE)
            except FileExistsError:
                continue
            except FileNotFoundError:
                private_dir(folder)

    def get(self, key: str) -> bytes:
        """The bytes under ``key``; KeyError if there are none."""
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def delete(self, key: str) -> None:
        """Remove ``key``; no error if it is absent."""
        self._path(key).unlink(missing_ok=True)


class S3BlobStore:
    """Blobs as objects under ``prefix`` in an S3 bucket; a PutObject that returned is durable.

    The endpoint is AWS's unless ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` names another
    (an S3-compatible store, addressed path-style); credentials and region come from boto3's
    usual chain (environment, shared files, instance role).
    """

    def __init__(self, bucket: str, prefix: str = "", client: Optional[Any] = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client if client is not None else _s3_client()

    def object_key(self, key: str) -> str:
        """The object key of blob ``key``: under the prefix."""
        checked_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def check(self) -> None:
        """UserError unless the bucket exists and these credentials can reach it."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as error:
            raise UserError(f"cannot use S3 bucket {self.bucket!r}: {error}") from None

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (S3 writes are atomic: readers see the old or new object)."""
        self.client.put_object(Bucket=self.bucket, Key=self.object_key(key), Body=data)

    def get(self, key: str) -> bytes:
        """The bytes under ``key``; KeyError if there are none."""
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        except self.client.exceptions.NoSuchKey:
            raise KeyError(key) from None
        data: bytes = answer["Body"].read()
        return data

    def delete(self, key: str) -> None:
        """Remove ``key``; no error if it is absent."""
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))


def _s3_client() -> Any:
    import boto3
    from botocore.config import Config

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
    config = Config(
        retries={"max_attempts": S3_ATTEMPTS, "mode": "standard"},
        # S3-compatible stores are reached by one host name, not one per bucket.
        s3={"addressing_style": "path" if endpoint else "auto"},
    )
    return boto3.client("s3", endpoint_url=endpoint, config=config)


def open_blob_store(url: str) -> BlobStore:
    """A blob store for ``url``: a folder path, a ``file://`` URL or ``s3://bucket/prefix``."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise UserError(f"blob store URL {url!r} names no bucket: use s3://bucket/prefix")
        store = S3BlobStore(parsed.netloc, unquote(parsed.path))
        store.check()
        return store
    if parsed.scheme in ("", "file"):
        path = unquote(parsed.path) if parsed.scheme == "file" else url
        if not path:
            raise UserError(f"blob store URL {url!r} names no folder")
        return FolderBlobStore(Path(path).expanduser().resolve())
    if len(parsed.scheme) == 1:  # a Windows drive letter, not a scheme
        return FolderBlobStore(Path(url).resolve())
    raise UserError(f"blob store {url!r} is not supported: use a folder path, a file:// URL or s3://bucket/prefix")
