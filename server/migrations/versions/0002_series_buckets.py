"""Series buckets: per group and 5-minute bucket, the summed per-frame counts of its profiles.

Written once per stored profile (``greenflame.server.series``), so anomaly detection reads
series from here instead of decoding every profile of the group's history. Existing profiles
are added to their buckets when an analysis first needs them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 17:16:17.761108
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "series_buckets",
        sa.Column("group_name", sa.String(length=128), nullable=False),
        sa.Column("resolution_s", sa.Integer(), nullable=False),
        sa.Column("bucket_start_unix_s", sa.BigInteger(), nullable=False),
        sa.Column("profile_count", sa.Integer(), nullable=False),
        sa.Column("counts", sa.LargeBinary(), nullable=False),
        sa.Column("updated_unix_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["group_name"], ["groups.name"], name=op.f("series_buckets_group_name_fkey")),
        sa.PrimaryKeyConstraint("group_name", "resolution_s", "bucket_start_unix_s", name=op.f("series_buckets_pkey")),
    )


def downgrade() -> None:
    op.drop_table("series_buckets")
