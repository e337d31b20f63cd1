"""Every table of the server's database, on one :class:`~sqlalchemy.MetaData`.

The stores (:mod:`.storage`, :mod:`.pipeline_store`, :mod:`.tickets.store`) import their tables
from here; :mod:`.db` brings a database to this schema with the Alembic revisions in
``migrations/versions``. A change to a table here needs a new revision there (the tests compare
the two on SQLite and PostgreSQL).

Constraints are named by one convention, PostgreSQL's own defaults (``groups_pkey``,
``profiles_group_name_fkey``, ``groups_ingest_key_sha256_key``), so that a database created by
the release before migrations and one created by the revisions carry the same names, which later
revisions (and Alembic's batch mode on SQLite) can then refer to.

Tables:

- ``groups``, ``profiles``: profiling groups with their hashed ingest keys, and the index of
  stored profiles (bodies live in the blob store);
- ``rollup_buckets``: per group, the hourly and daily profiles that raw profiles past their
  retention were merged into (:mod:`.retention`; call-path counts in the blob store);
- ``series_buckets``: per group and 5-minute bucket, the summed per-frame counts of its profiles
  (:mod:`.series`), written once per profile, so anomaly detection never re-reads the profiles;
- ``anomaly_fits``: per group and UTC day, the anomaly detector's seasonal fits of that day
  (:mod:`.anomaly_fits`), so a process's first run scores only new points;
- ``analysis_state``, ``analysis_runs``: the per-group analysis lease and generation, and each run;
- ``finding_states``: each finding fingerprint's state across time;
- ``anomalies``, ``anomaly_votes``: the detector's anomalies and the users' votes on them;
- ``group_channels``: each group's ticket destinations;
- ``ticket_links``: each finding's ticket on each channel;
- ``api_tokens``: API tokens (hashed) with their scope, group, and revocation; also one-time
  sign-in links (:mod:`.tokens`);
- ``ended_sessions``: web UI sessions signed out before their end, kept until that end so a copy
  of the signed cookie is refused (:mod:`.web_sessions`).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING_CONVENTION = {
    "pk": "%(table_name)s_pkey",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "fk": "%(table_name)s_%(column_0_N_name)s_fkey",
    "ix": "ix_%(column_0_label)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# -- storage: groups and the profile index ----------------------------------------------------

groups = Table(
    "groups",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("ingest_key_sha256", String(64), nullable=False, unique=True),
    Column("created_unix_ns", BigInteger, nullable=False),
)

profiles = Table(
    "profiles",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("group_name", String(128), ForeignKey("groups.name"), nullable=False),
    Column("start_time_unix_ns", BigInteger, nullable=False),
    Column("duration_ns", BigInteger, nullable=False),
    Column("received_unix_ns", BigInteger, nullable=False),
    Column("idempotency_key", String(128), nullable=True),
    Column("blob_key", String(200), nullable=False),
    Column("stack_count", Integer, nullable=False),
    Column("wall_samples", BigInteger, nullable=False),
    Column("cpu_samples", BigInteger, nullable=False),
    UniqueConstraint("group_name", "idempotency_key", name="uq_profiles_group_idempotency"),
    Index("ix_profiles_group_start", "group_name", "start_time_unix_ns"),
)

rollup_buckets = Table(
    "rollup_buckets",
    metadata,
    Column("group_name", String(128), ForeignKey("groups.name"), primary_key=True),
    Column("resolution_s", Integer, primary_key=True),
    Column("bucket_start_unix_s", BigInteger, primary_key=True),
    Column("blob_key", String(200), nullable=False),
    Column("profile_count", Integer, nullable=False),
    Column("wall_samples", BigInteger, nullable=False),
    Column("cpu_samples", BigInteger, nullable=False),
    Column("start_time_unix_ns", BigInteger, nullable=False),
    Column("end_time_unix_ns", BigInteger, nullable=False),
    Column("updated_unix_ns", BigInteger, nullable=False),
)

series_buckets = Table(
    "series_buckets",
    metadata,
    Column("group_name", String(128), ForeignKey("groups.name"), primary_key=True),
    Column("resolution_s", Integer, primary_key=True),
    Column("bucket_start_unix_s", BigInteger, primary_key=True),
    Column("profile_count", Integer, nullable=False),
    Column("counts", LargeBinary, nullable=False),
    Column("updated_unix_ns", BigInteger, nullable=False),
)

anomaly_fits = Table(
    "anomaly_fits",
    metadata,
    Column("group_name", String(128), ForeignKey("groups.name"), primary_key=True),
    Column("day_unix_s", BigInteger, primary_key=True),
    Column("config", String(64), nullable=False),
    Column("fit_count", Integer, nullable=False),
    Column("fits", LargeBinary, nullable=False),
    Column("updated_unix_ns", BigInteger, nullable=False),
)

# -- the analysis pipeline ----------------------------------------------------------------------

analysis_state = Table(
    "analysis_state",
    metadata,
    Column("group_name", String(128), primary_key=True),
    Column("lease_token", String(32), nullable=True),
    Column("lease_owner", String(200), nullable=True),
    Column("lease_until_unix_ns", BigInteger, nullable=True),
    Column("analysed_count", BigInteger, nullable=False, default=0),
    Column("analysed_received_ns", BigInteger, nullable=False, default=0),
    Column("force_serial", Integer, nullable=False, default=0),
    Column("analysed_force_serial", Integer, nullable=False, default=0),
    Column("last_started_unix_ns", BigInteger, nullable=True),
    Column("last_finished_unix_ns", BigInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_summary_json", Text, nullable=True),
    Column("runs", Integer, nullable=False, default=0),
)

analysis_runs = Table(
    "analysis_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("group_name", String(128), nullable=False),
    Column("owner", String(200), nullable=False),
    Column("generation_count", BigInteger, nullable=False),
    Column("generation_received_ns", BigInteger, nullable=False),
    Column("started_unix_ns", BigInteger, nullable=False),
    Column("finished_unix_ns", BigInteger, nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_analysis_runs_group", "group_name", "id"),
)

finding_states = Table(
    "finding_states",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("group_name", String(128), nullable=False),
    Column("fingerprint_key", String(32), nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("rule", String(128), nullable=False),
    Column("title", String(300), nullable=False),
    Column("state", String(16), nullable=False),
    Column("first_seen_unix_ns", BigInteger, nullable=False),
    Column("last_seen_unix_ns", BigInteger, nullable=False),
    Column("resolved_unix_ns", BigInteger, nullable=True),
    Column("finding_json", Text, nullable=False),
    Column("record_json", Text, nullable=False),
    Column("updated_unix_ns", BigInteger, nullable=False),
    UniqueConstraint("group_name", "fingerprint_key", name="uq_finding_states_finding"),
)

anomalies = Table(
    "anomalies",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("group_name", String(128), nullable=False),
    Column("frame", Text, nullable=False),
    Column("metric", String(64), nullable=False),
    Column("start_unix_s", BigInteger, nullable=False),
    Column("end_unix_s", BigInteger, nullable=True),
    Column("current", Integer, nullable=False, default=1),
    Column("data_json", Text, nullable=False),
    Column("first_reported_unix_ns", BigInteger, nullable=False),
    Column("last_reported_unix_ns", BigInteger, nullable=False),
    Index("ix_anomalies_group", "group_name", "start_unix_s"),
)

anomaly_votes = Table(
    "anomaly_votes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("anomaly_id", String(32), ForeignKey("anomalies.id"), nullable=False),
    Column("group_name", String(128), nullable=False),
    Column("useful", Integer, nullable=False),
    Column("created_unix_ns", BigInteger, nullable=False),
    Index("ix_anomaly_votes_group", "group_name", "id"),
)

group_channels = Table(
    "group_channels",
    metadata,
    Column("group_name", String(128), primary_key=True),
    Column("channels_json", Text, nullable=False),
    Column("updated_unix_ns", BigInteger, nullable=False),
)

# -- tickets ------------------------------------------------------------------------------------

ticket_links = Table(
    "ticket_links",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("group_name", String(128), nullable=False),
    Column("channel", String(300), nullable=False),
    Column("fingerprint_key", String(32), nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("rule", String(128), nullable=False),
    Column("title", String(300), nullable=False),
    Column("ticket_id", String(128), nullable=True),
    Column("url", String(1000), nullable=True),
    Column("state", String(16), nullable=True),
    Column("numbers_json", Text, nullable=True),
    Column("last_action", String(16), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_unix_ns", BigInteger, nullable=True),
    Column("lease_token", String(32), nullable=True),
    Column("lease_until_unix_ns", BigInteger, nullable=True),
    Column("created_unix_ns", BigInteger, nullable=False),
    Column("updated_unix_ns", BigInteger, nullable=False),
    UniqueConstraint("group_name", "channel", "fingerprint_key", name="uq_ticket_links_finding"),
)


# -- access -------------------------------------------------------------------------------------

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # "token" (a bearer token) or "link" (a one-time sign-in link)
    Column("scope", String(16), nullable=False),  # read, ingest or admin
    Column("group_name", String(128), nullable=True),  # None: every group
    Column("created_unix_ns", BigInteger, nullable=False),
    Column("expires_unix_ns", BigInteger, nullable=True),
    Column("used_unix_ns", BigInteger, nullable=True),
    Column("revoked_unix_ns", BigInteger, nullable=True),
)

ended_sessions = Table(
    "ended_sessions",
    metadata,
    Column("session_id", String(32), primary_key=True),
    Column("ended_unix_ns", BigInteger, nullable=False),
    Column("expires_unix_ns", BigInteger, nullable=False),  # the session's own end: the row goes after it
)
