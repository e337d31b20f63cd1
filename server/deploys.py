"""The deploys seen in a group's profiles: each version with when it was first and last profiled.

A deploy's version is the Lambda function version the agent reports
(``metadata.lambda.function_version``, agent 0.2 and later); the wire format carries no version
for other services, so their profiles belong to no deploy. The profile index does not hold the
version, so it is read from the newest profile bodies once each and kept in memory per profile
id (a stored profile never changes).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional

from sqlalchemy import select

from .lru import LruCache
from .schema import profiles
from .storage import Storage

#: Profile id -> its deploy version ("" when it has none); ids are cheap, bodies are not.
_VERSIONS: LruCache[str, str] = LruCache(200_000)


@dataclass(frozen=True)
class Deploy:
    """One deploy version and the span of the profiles that carry it."""

    version: str
    first_seen_unix_ns: int
    last_seen_unix_ns: int
    profile_count: int

    def to_dict(self) -> Dict[str, Any]:
        """The API form."""
        return {
            "version": self.version,
            "first_seen_unix_ns": self.first_seen_unix_ns,
            "last_seen_unix_ns": self.last_seen_unix_ns,
            "profile_count": self.profile_count,
        }


@dataclass(frozen=True)
class GroupDeploys:
    """The deploys of a group's newest ``scanned`` profiles, newest first; ``complete`` if that was all."""

    deploys: List[Deploy]
    scanned: int
    complete: bool


def deploy_version(metadata: Mapping[str, Any]) -> Optional[str]:
    """The deploy version a profile's metadata names, or None."""
    facts = metadata.get("lambda")
    version = facts.get("function_version") if isinstance(facts, Mapping) else None
    return version if isinstance(version, str) and version else None


def group_deploys(storage: Storage, group: str, max_profiles: int) -> GroupDeploys:
    """The deploys seen in ``group``'s newest ``max_profiles`` profiles, the latest deploy first."""
    p = profiles.c
    query = (
        select(p.id, p.start_time_unix_ns, p.duration_ns, p.blob_key)
        .where(p.group_name == group)
        .order_by(p.start_time_unix_ns.desc(), p.id.desc())
        .limit(max_profiles + 1)
    )
    with storage.engine.connect() as conn:
        rows = conn.execute(query).all()
    spans: Dict[str, Deploy] = {}
    for row in rows[:max_profiles]:
        version = _version(storage, row[0], row[3])
        if version:
            spans[version] = _widened(spans.get(version), version, row[1], row[1] + row[2])
    deploys = list(spans.values())
    deploys.sort(key=lambda deploy: (deploy.last_seen_unix_ns, deploy.first_seen_unix_ns), reverse=True)
    return GroupDeploys(deploys, min(len(rows), max_profiles), len(rows) <= max_profiles)


def _widened(deploy: Optional[Deploy], version: str, start_ns: int, end_ns: int) -> Deploy:
    """``deploy`` (None: none yet) with one more profile spanning ``start_ns``..``end_ns``."""
    if deploy is None:
        return Deploy(version, start_ns, end_ns, 1)
    first = min(deploy.first_seen_unix_ns, start_ns)
    return Deploy(version, first, max(deploy.last_seen_unix_ns, end_ns), deploy.profile_count + 1)


def _version(storage: Storage, profile_id: str, blob_key: str) -> str:
    known = _VERSIONS.get(profile_id)
    if known is not None:
        return known
    document = json.loads(gzip.decompress(storage.blobs.get(blob_key)))
    metadata = document.get("metadata") if isinstance(document, dict) else None
    version = deploy_version(metadata) if isinstance(metadata, dict) else None
    _VERSIONS.put(profile_id, version or "")
    return version or ""
