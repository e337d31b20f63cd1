"""Anomaly fits: per group and UTC day, the detector's seasonal fits of that day, kept between runs.

Written by the analysis pipeline (``greenflame.server.anomaly_fits``) once a day's fits are made,
so that a process's first run of a group, after a restart or on another worker, scores only the
new points instead of refitting every series on the whole history.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 08:50:00
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "anomaly_fits",
        sa.Column("group_name", sa.String(length=128), nullable=False),
        sa.Column("day_unix_s", sa.BigInteger(), nullable=False),
        sa.Column("config", sa.String(length=64), nullable=False),
        sa.Column("fit_count", sa.Integer(), nullable=False),
        sa.Column("fits", sa.LargeBinary(), nullable=False),
        sa.Column("updated_unix_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["group_name"], ["groups.name"], name=op.f("anomaly_fits_group_name_fkey")),
        sa.PrimaryKeyConstraint("group_name", "day_unix_s", name=op.f("anomaly_fits_pkey")),
    )


def downgrade() -> None:
    op.drop_table("anomaly_fits")
