"""What the analysis pipeline keeps in the server's database.

Tables (declared in :mod:`.schema`; SQLite or PostgreSQL, shared by every server process):

- ``analysis_state``: one row per group: the lease that lets one process at a time analyse the
  group, and the generation of data (profile count, latest receive time) last analysed;
- ``analysis_runs``: one row per analysis run (who, when, what it covered, how it ended);
- ``finding_states``: each finding fingerprint's state across time (new, ongoing, resolved,
  reopened) with its latest numbers;
- ``anomalies`` and ``anomaly_votes``: the detector's anomalies with stable ids, and the
  users' useful/not useful votes on them;
- ``group_channels``: each group's ticket destinations (credentials included: never shown back).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from greenflame.analyzer.anomalies import Anomaly
from greenflame.analyzer.rules.finding import Finding

from .crypto import SecretBox
from .db import upgrade_database
from .pipeline_channels import open_tokens, seal_tokens
from .schema import (
    analysis_runs,
    analysis_state,
    anomalies,
    anomaly_votes,
    finding_states,
    group_channels,
    profiles,
)


@dataclass(frozen=True)
class Generation:
    """How much data a group has: profile count and latest receive time (changes on every ingest)."""

    count: int
    received_ns: int


@dataclass(frozen=True)
class Lease:
    """The right to analyse one group until released or expired, and what was analysed before.

    ``force_serial`` counts requests to re-analyse unchanged data (:meth:`PipelineStore.invalidate`);
    a run covers those made before it took the lease.
    """

    group: str
    token: str
    owner: str
    analysed: Generation
    force_serial: int
    analysed_force_serial: int

    def is_current(self, generation: Generation) -> bool:
        """True when ``generation`` was already analysed and no re-analysis was asked for."""
        return generation == self.analysed and self.force_serial == self.analysed_force_serial


@dataclass(frozen=True)
class FindingState:
    """One finding fingerprint's state across analysis runs.

    ``record`` is :mod:`greenflame.analyzer.finding_state`'s record (times in Unix seconds);
    the ``*_unix_ns`` fields repeat its times, ``finding`` is the latest finding (stored as its JSON).
    """

    group: str
    key: str
    fingerprint: str
    rule: str
    title: str
    state: str
    first_seen_unix_ns: int
    last_seen_unix_ns: int
    resolved_unix_ns: Optional[int]
    finding: Finding
    record: Dict[str, Any]


@dataclass(frozen=True)
class StoredAnomaly:
    """The detector's anomaly as stored: with a stable id, and whether the latest run reported it."""

    id: str
    group: str
    anomaly: Anomaly
    current: bool
    first_reported_unix_ns: int
    last_reported_unix_ns: int


@dataclass(frozen=True)
class Vote:
    """One user's feedback on one anomaly."""

    anomaly_id: str
    group: str
    frame: str
    related_frames: Tuple[str, ...]
    start_unix_s: int
    useful: bool
    created_unix_ns: int = 0


class PipelineStore:
    """The pipeline's tables on the server's engine; safe across threads and processes."""

    def __init__(self, engine: Engine, box: Optional[SecretBox] = None) -> None:
        """``box`` seals channel credentials at rest (none: stored as given, as before 0.2)."""
        self.engine = engine
        self.box = box
        upgrade_database(engine)

    # -- leases and generations -------------------------------------------------
    def generation(self, group: str) -> Generation:
        """The group's current data generation."""
        p = profiles.c
        query = select(func.count(), func.max(p.received_unix_ns)).where(p.group_name == group)
        with self.engine.connect() as conn:
            row: Any = conn.execute(query).one()
        return Generation(int(row[0] or 0), int(row[1] or 0))

    def stale_groups(self) -> List[str]:
        """Groups whose data changed since their last analysis (or that were never analysed)."""
        p, s = profiles.c, analysis_state.c
        stats = (
            select(p.group_name, func.count().label("n"), func.max(p.received_unix_ns).label("r"))
            .group_by(p.group_name)
            .subquery()
        )
        query = (
            select(stats.c.group_name)
            .select_from(stats.outerjoin(analysis_state, s.group_name == stats.c.group_name))
            .where(
                or_(
                    s.group_name.is_(None),
                    s.analysed_count != stats.c.n,
                    s.analysed_received_ns != stats.c.r,
                    s.force_serial != s.analysed_force_serial,
                )
            )
        )
        with self.engine.connect() as conn:
            return [row[0] for row in conn.execute(query)]

    def acquire(self, group: str, owner: str, lease_s: float) -> Optional[Lease]:
        """Take the group's analysis lease, or None when another process holds it."""
        self._insert_state(group)
        now = time.time_ns()
        token = uuid.uuid4().hex
        s = analysis_state.c
        free = or_(s.lease_token.is_(None), s.lease_until_unix_ns < now)
        statement = (
            update(analysis_state)
            .where(and_(s.group_name == group, free))
            .values(lease_token=token, lease_owner=owner[:200], lease_until_unix_ns=now + int(lease_s * 1e9))
        )
        with self.engine.begin() as conn:
            if conn.execute(statement).rowcount != 1:
                return None
            row = conn.execute(select(analysis_state).where(s.group_name == group)).mappings().one()
        if row["lease_token"] != token:
            return None
        analysed = Generation(row["analysed_count"], row["analysed_received_ns"])
        return Lease(group, token, owner, analysed, row["force_serial"], row["analysed_force_serial"])

    def extend(self, lease: Lease, lease_s: float) -> bool:
        """Push the lease's expiry ``lease_s`` from now; False if it was lost."""
        s = analysis_state.c
        statement = (
            update(analysis_state)
            .where(and_(s.group_name == lease.group, s.lease_token == lease.token))
            .values(lease_until_unix_ns=time.time_ns() + int(lease_s * 1e9))
        )
        with self.engine.begin() as conn:
            return bool(conn.execute(statement).rowcount == 1)

    def release(self, lease: Lease, **changes: Any) -> bool:
        """Give the lease back, writing ``changes`` (column names) in the same statement."""
        s = analysis_state.c
        statement = (
            update(analysis_state)
            .where(and_(s.group_name == lease.group, s.lease_token == lease.token))
            .values(lease_token=None, lease_owner=None, lease_until_unix_ns=None, **changes)
        )
        with self.engine.begin() as conn:
            return bool(conn.execute(statement).rowcount == 1)

    def invalidate(self, group: str) -> None:
        """Make the next analysis of ``group`` run even if no profile arrived (settings or feedback changed)."""
        self._insert_state(group)
        s = analysis_state.c
        statement = update(analysis_state).where(s.group_name == group).values(force_serial=s.force_serial + 1)
        with self.engine.begin() as conn:
            conn.execute(statement)

    def state(self, group: str) -> Optional[Dict[str, Any]]:
        """The group's analysis state row (without the lease token), or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(analysis_state).where(analysis_state.c.group_name == group)).mappings().first()
        if row is None:
            return None
        out = {key: row[key] for key in row if key not in ("lease_token", "last_summary_json")}
        out["summary"] = json.loads(row["last_summary_json"]) if row["last_summary_json"] else None
        return out

    def _insert_state(self, group: str) -> None:
        with self.engine.connect() as conn:
            exists = conn.execute(
                select(analysis_state.c.group_name).where(analysis_state.c.group_name == group)
            ).first()
        if exists is not None:
            return
        row = {
            "group_name": group,
            "analysed_count": 0,
            "analysed_received_ns": 0,
            "force_serial": 0,
            "analysed_force_serial": 0,
            "runs": 0,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(analysis_state).values(**row))
        except IntegrityError:
            pass  # another process inserted it first

    # -- run log ------------------------------------------------------------------
    def start_run(self, group: str, owner: str, generation: Generation) -> int:
        """Log the start of a run; return its id."""
        row = {
            "group_name": group,
            "owner": owner[:200],
            "generation_count": generation.count,
            "generation_received_ns": generation.received_ns,
            "started_unix_ns": time.time_ns(),
        }
        with self.engine.begin() as conn:
            key: Any = conn.execute(insert(analysis_runs).values(**row)).inserted_primary_key
            return int(key[0])

    def finish_run(self, run_id: int, error: Optional[str]) -> None:
        """Log the end of run ``run_id``."""
        statement = (
            update(analysis_runs)
            .where(analysis_runs.c.id == run_id)
            .values(finished_unix_ns=time.time_ns(), error=error)
        )
        with self.engine.begin() as conn:
            conn.execute(statement)

    def runs(self, group: Optional[str] = None) -> List[Dict[str, Any]]:
        """Logged runs, oldest first."""
        query = select(analysis_runs).order_by(analysis_runs.c.id)
        if group is not None:
            query = query.where(analysis_runs.c.group_name == group)
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    # -- finding states -------------------------------------------------------------
    def finding_states(self, group: str) -> List[FindingState]:
        """Every finding ever seen in ``group``, oldest first."""
        query = select(finding_states).where(finding_states.c.group_name == group).order_by(finding_states.c.id)
        with self.engine.connect() as conn:
            return [_finding_state(row) for row in conn.execute(query).mappings()]

    def save_finding_states(self, states: Sequence[FindingState]) -> None:
        """Insert or update each state (by group and key), in one transaction."""
        now = time.time_ns()
        f = finding_states.c
        with self.engine.begin() as conn:
            for state in states:
                values = {
                    "fingerprint": state.fingerprint,
                    "rule": state.rule[:128],
                    "title": state.title[:300],
                    "state": state.state,
                    "first_seen_unix_ns": state.first_seen_unix_ns,
                    "last_seen_unix_ns": state.last_seen_unix_ns,
                    "resolved_unix_ns": state.resolved_unix_ns,
                    "finding_json": json.dumps(state.finding.to_dict(), sort_keys=True, default=str),
                    "record_json": json.dumps(state.record, sort_keys=True, default=str),
                    "updated_unix_ns": now,
                }
                where = and_(f.group_name == state.group, f.fingerprint_key == state.key)
                if conn.execute(update(finding_states).where(where).values(**values)).rowcount == 0:
                    conn.execute(
                        insert(finding_states).values(group_name=state.group, fingerprint_key=state.key, **values)
                    )

    # -- anomalies --------------------------------------------------------------------
    def anomalies(self, group: Optional[str] = None, current_only: bool = True) -> List[StoredAnomaly]:
        """Stored anomalies, oldest start first; by default only those the latest run reported."""
        a = anomalies.c
        query = select(anomalies).order_by(a.start_unix_s, a.id)
        if group is not None:
            query = query.where(a.group_name == group)
        if current_only:
            query = query.where(a.current == 1)
        with self.engine.connect() as conn:
            return [_stored_anomaly(row) for row in conn.execute(query).mappings()]

    def anomaly(self, anomaly_id: str) -> Optional[StoredAnomaly]:
        """One anomaly by id, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(anomalies).where(anomalies.c.id == anomaly_id)).mappings().first()
        return _stored_anomaly(row) if row is not None else None

    def replace_anomalies(self, group: str, found: Sequence[Anomaly]) -> List[StoredAnomaly]:
        """Record the latest detection for ``group``; earlier anomalies it no longer reports stop being current.

        A found anomaly keeps the id of a stored one with the same frame and metric whose time
        range overlaps it, so ids (and the feedback given on them) survive reruns.
        """
        now = time.time_ns()
        existing = self.anomalies(group, current_only=False)
        kept: List[str] = []
        with self.engine.begin() as conn:
            for item in found:
                match = _overlapping(existing, item, exclude=kept)
                anomaly_id = match.id if match is not None else uuid.uuid4().hex
                values = {
                    "frame": item.frame,
                    "metric": item.metric,
                    "start_unix_s": item.start_unix_s,
                    "end_unix_s": item.end_unix_s,
                    "current": 1,
                    "data_json": json.dumps(item.to_dict(), sort_keys=True),
                    "last_reported_unix_ns": now,
                }
                if match is None:
                    conn.execute(
                        insert(anomalies).values(id=anomaly_id, group_name=group, first_reported_unix_ns=now, **values)
                    )
                else:
                    conn.execute(update(anomalies).where(anomalies.c.id == anomaly_id).values(**values))
                kept.append(anomaly_id)
            stale = update(anomalies).where(anomalies.c.group_name == group)
            if kept:
                stale = stale.where(anomalies.c.id.notin_(kept))
            conn.execute(stale.values(current=0))
        return [a for a in self.anomalies(group) if a.id in kept]

    def add_vote(self, anomaly: StoredAnomaly, useful: bool) -> None:
        """Record one feedback vote on ``anomaly``."""
        row = {
            "anomaly_id": anomaly.id,
            "group_name": anomaly.group,
            "useful": 1 if useful else 0,
            "created_unix_ns": time.time_ns(),
        }
        with self.engine.begin() as conn:
            conn.execute(insert(anomaly_votes).values(**row))

    def votes(self, group: str) -> List[Vote]:
        """Every vote on the group's anomalies, oldest first, with the frames they apply to."""
        v, a = anomaly_votes.c, anomalies.c
        query = (
            select(v.anomaly_id, v.useful, a.frame, a.start_unix_s, a.data_json, v.created_unix_ns)
            .select_from(anomaly_votes.join(anomalies, a.id == v.anomaly_id))
            .where(v.group_name == group)
            .order_by(v.id)
        )
        with self.engine.connect() as conn:
            rows: List[Any] = list(conn.execute(query).all())
        out = []
        for anomaly_id, useful, frame, start, data_json, created in rows:
            related = tuple(str(r) for r in json.loads(data_json).get("related_frames") or [])
            out.append(Vote(anomaly_id, group, frame, related, int(start), bool(useful), int(created or 0)))
        return out

    def vote_counts(self, group: str) -> Dict[str, Dict[str, int]]:
        """Anomaly id -> {"useful": n, "not_useful": n} for the group."""
        v = anomaly_votes.c
        query = (
            select(v.anomaly_id, v.useful, func.count()).where(v.group_name == group).group_by(v.anomaly_id, v.useful)
        )
        counts: Dict[str, Dict[str, int]] = {}
        with self.engine.connect() as conn:
            rows: List[Any] = list(conn.execute(query).all())
            for anomaly_id, useful, n in rows:
                entry = counts.setdefault(anomaly_id, {"useful": 0, "not_useful": 0})
                entry["useful" if useful else "not_useful"] += int(n)
        return counts

    # -- channels ---------------------------------------------------------------------
    def channels(self, group: str) -> List[Dict[str, Any]]:
        """The group's ticket destinations as stored (with credentials: never send these to a client)."""
        query = select(group_channels.c.channels_json).where(group_channels.c.group_name == group)
        with self.engine.connect() as conn:
            raw = conn.execute(query).scalar_one_or_none()
        loaded: Any = json.loads(raw) if raw else []
        items = [dict(item) for item in loaded if isinstance(item, dict)]
        return open_tokens(items, self.box) if self.box else items

    def set_channels(self, group: str, channels: Sequence[Mapping[str, Any]]) -> None:
        """Replace the group's ticket destinations (credentials sealed when the store has a box)."""
        if self.box:
            channels = seal_tokens(channels, self.box)
        values = {"channels_json": json.dumps(list(channels), sort_keys=True), "updated_unix_ns": time.time_ns()}
        where = group_channels.c.group_name == group
        with self.engine.begin() as conn:
            if conn.execute(update(group_channels).where(where).values(**values)).rowcount == 0:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(group_channels).values(group_name=group, **values))
                except IntegrityError:  # another process inserted it first: write over it
                    conn.execute(update(group_channels).where(where).values(**values))

    def reseal_channels(self) -> int:
        """Seal every stored credential with the box's first key (clear ones from older versions
        included); return how many groups were rewritten. Run at start: this is key rotation."""
        if self.box is None:
            return 0
        with self.engine.connect() as conn:
            groups: List[str] = list(conn.execute(select(group_channels.c.group_name)).scalars())
        for group in groups:
            self.set_channels(group, self.channels(group))
        return len(groups)


def _finding_state(row: Any) -> FindingState:
    return FindingState(
        group=row["group_name"],
        key=row["fingerprint_key"],
        fingerprint=row["fingerprint"],
        rule=row["rule"],
        title=row["title"],
        state=row["state"],
        first_seen_unix_ns=row["first_seen_unix_ns"],
        last_seen_unix_ns=row["last_seen_unix_ns"],
        resolved_unix_ns=row["resolved_unix_ns"],
        finding=Finding.from_dict(json.loads(row["finding_json"])),
        record=json.loads(row["record_json"]),
    )


def _stored_anomaly(row: Any) -> StoredAnomaly:
    return StoredAnomaly(
        id=row["id"],
        group=row["group_name"],
        anomaly=Anomaly.from_dict(json.loads(row["data_json"])),
        current=bool(row["current"]),
        first_reported_unix_ns=row["first_reported_unix_ns"],
        last_reported_unix_ns=row["last_reported_unix_ns"],
    )


def _overlapping(existing: Sequence[StoredAnomaly], item: Anomaly, exclude: Sequence[str]) -> Optional[StoredAnomaly]:
    """The stored anomaly on the same frame and metric whose time range overlaps ``item``'s."""
    far = 2**62
    start, end = item.start_unix_s, item.end_unix_s
    for stored in existing:
        old = stored.anomaly
        if stored.id in exclude or old.frame != item.frame or old.metric != item.metric:
            continue
        old_end = old.end_unix_s if old.end_unix_s is not None else far
        if old.start_unix_s <= (end if end is not None else far) and start <= old_end:
            return stored
    return None
