"""Rollup buckets: per group, the hourly and daily profiles that raw profiles were compacted into.

Written by retention (``greenflame.server.retention``): once a group's raw profiles are older
than ``GREENFLAME_RAW_RETENTION_S`` their hour is merged into one call-path rollup in the blob
store (named here with its totals), and the raw bodies and index rows are deleted; hours older
than ``GREENFLAME_HOURLY_RETENTION_S`` are merged into days the same way.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 09:00:00
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "rollup_buckets",
        sa.Column("group_name", sa.String(length=128), nullable=False),
        sa.Column("resolution_s", sa.Integer(), nullable=False),
        sa.Column("bucket_start_unix_s", sa.BigInteger(), nullable=False),
        sa.Column("blob_key", sa.String(length=200), nullable=False),
        sa.Column("profile_count", sa.Integer(), nullable=False),
        sa.Column("wall_samples", sa.BigInteger(), nullable=False),
        sa.Column("cpu_samples", sa.BigInteger(), nullable=False),
        sa.Column("start_time_unix_ns", sa.BigInteger(), nullable=False),
        sa.Column("end_time_unix_ns", sa.BigInteger(), nullable=False),
        sa.Column("updated_unix_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["group_name"], ["groups.name"], name=op.f("rollup_buckets_group_name_fkey")),
        sa.PrimaryKeyConstraint("group_name", "resolution_s", "bucket_start_unix_s", name=op.f("rollup_buckets_pkey")),
    )


def downgrade() -> None:
    op.drop_table("rollup_buckets")
