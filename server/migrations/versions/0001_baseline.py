"""Baseline: the schema of greenflame 0.1.0, the last release without migrations.

That release created each store's tables on its own when the store opened, so a database it
left holds all of these tables, or some of them (only ``ticket_links`` after ``greenflame
tickets push`` alone): this revision creates the ones missing and leaves the others as they are
(``greenflame.server.db`` has checked their columns first). On an empty database it creates all.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

from typing import Callable, Dict, Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _groups() -> None:
    op.create_table(
        "groups",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("ingest_key_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_unix_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("groups_pkey")),
        sa.UniqueConstraint("ingest_key_sha256", name=op.f("groups_ingest_key_sha256_key")),
    )


def _profiles() -> None:
    op.create_table(
        "profiles",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("group_name", sa.String(length=128), nullable=False),
        sa.Column("start_time_unix_ns", sa.BigInteger(), nullable=False),
        sa.Column("duration_ns", sa.BigInteger(), nullable=False),
        sa.Column("received_unix_ns", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("blob_key", sa.String(length=200), nullable=False),
        sa.Column("stack_count", sa.Integer(), nullable=False),
        sa.Column("wall_samples", sa.BigInteger(), nullable=False),
        sa.Column("cpu_samples", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["group_name"], ["groups.name"], name=op.f("profiles_group_name_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("profiles_pkey")),
        sa.UniqueConstraint("group_name", "idempotency_key", name="uq_profiles_group_idempotency"),
    )
    op.create_index("ix_profiles_group_start", "profiles", ["group_name", "start_time_unix_ns"], unique=False)


def _analysis_state() -> None:
    op.create_table(
        "analysis_state",
        sa.Column("group_name", sa.String(length=128), nullable=False),
        sa.Column("lease_token", sa.String(length=32), nullable=True),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_until_unix_ns", sa.BigInteger(), nullable=True),
        sa.Column("analysed_count", sa.BigInteger(), nullable=False),
        sa.Column("analysed_received_ns", sa.BigInteger(), nullable=False),
        sa.Column("force_serial", sa.Integer(), nullable=False),
        sa.Column("analysed_force_serial", sa.Integer(), nullable=False),
        sa.Column("last_started_unix_ns", sa.BigInteger(), nullable=True),
        sa.Column("last_finished_unix_ns", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_summary_json", sa.Text(), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("group_name", name=op.f("analysis_state_pkey")),
    )


def _analysis_runs() -> None:
    op.create_table(
        "analysis_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("group_name", sa.String(length=128), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("generation_count", sa.BigInteger(), nullable=False),
        sa.Column("generation_received_ns", sa.BigInteger(), nullable=False),
        sa.Column("started_unix_ns", sa.BigInteger(), nullable=False),
        sa.Column("finished_unix_ns", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("analysis_runs_pkey")),
    )
    op.create_index("ix_analysis_runs_group", "analysis_runs", ["group_name", "id"], unique=False)


def _finding_states() -> None:
    op.create_table(
        "finding_states",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("group_name", sa.String(length=128), nullable=False),
        sa.Column("fingerprint_key", sa.String(length=32), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("rule", sa.String(length=128), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("first_seen_unix_ns", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_unix_ns", sa.BigInteger(), nullable=False),
        sa.Column("resolved_unix_ns", sa.BigInteger(), nullable=True),
        sa.Column("finding_json", sa.Text(), nullable=False),
        sa.Column("record_json", sa.Text(), nullable=False),
        sa.Column("updated_unix_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("finding_states_pkey")),
        sa.UniqueConstraint("group_name", "fingerprint_key", name="uq_finding_states_finding"),
    )


def _anomalies() -> None:
    op.create_table(
        "anomalies",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("group_name", sa.String(length=128), nullable=False),
        sa.Column("frame", sa.Text(), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("start_unix_s", sa.BigInteger(), nullable=False),
        sa.Column("end_unix_s", sa.BigInteger(), nullable=True),
        sa.Column("current", sa.Integer(), nullable=False),
        sa.Column("data_json", sa.Text(), nullable=False),
        sa.Column("first_reported_unix_ns", sa.BigInteger(), nullable=False),
        sa.Column("last_reported_unix_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("anomalies_pkey")),
    )
    op.create_index("ix_anomalies_group", "anomalies", ["group_name", "start_unix_s"], unique=False)


def _anomaly_votes() -> None:
    op.create_table(
        "anomaly_votes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("anomaly_id", sa.String(length=32), nullable=False),
        sa.Column("group_name", sa.String(length=128), nullable=False),
        sa.Column("useful", sa.Integer(), nullable=False),
        sa.Column("created_unix_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["anomaly_id"], ["anomalies.id"], name=op.f("anomaly_votes_anomaly_id_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("anomaly_votes_pkey")),
    )
    op.create_index("ix_anomaly_votes_group", "anomaly_votes", ["group_name", "id"], unique=False)


def _group_channels() -> None:
    op.create_table(
        "group_channels",
        sa.Column("group_name", sa.String(length=128), nullable=False),
        sa.Column("channels_json", sa.Text(), nullable=False),
        sa.Column("updated_unix_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("group_name", name=op.f("group_channels_pkey")),
    )


def _ticket_links() -> None:
    op.create_table(
        "ticket_links",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("group_name", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=300), nullable=False),
        sa.Column("fingerprint_key", sa.String(length=32), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("rule", sa.String(length=128), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("ticket_id", sa.String(length=128), nullable=True),
        sa.Column("url", sa.String(length=1000), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=True),
        sa.Column("numbers_json", sa.Text(), nullable=True),
        sa.Column("last_action", sa.String(length=16), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_unix_ns", sa.BigInteger(), nullable=True),
        sa.Column("lease_token", sa.String(length=32), nullable=True),
        sa.Column("lease_until_unix_ns", sa.BigInteger(), nullable=True),
        sa.Column("created_unix_ns", sa.BigInteger(), nullable=False),
        sa.Column("updated_unix_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("ticket_links_pkey")),
        sa.UniqueConstraint("group_name", "channel", "fingerprint_key", name="uq_ticket_links_finding"),
    )


# In creation order: a table after the tables its foreign keys name.
TABLES: Dict[str, Callable[[], None]] = {
    "groups": _groups,
    "profiles": _profiles,
    "analysis_state": _analysis_state,
    "analysis_runs": _analysis_runs,
    "finding_states": _finding_states,
    "anomalies": _anomalies,
    "anomaly_votes": _anomaly_votes,
    "group_channels": _group_channels,
    "ticket_links": _ticket_links,
}


def upgrade() -> None:
    present = set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in TABLES.items():
        if name not in present:
            create()


def downgrade() -> None:
    for name in reversed(list(TABLES)):
        op.drop_table(name)
