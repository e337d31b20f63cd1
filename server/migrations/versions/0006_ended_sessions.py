"""Ended sessions: web UI sessions signed out before their end.

A session is a signed cookie that names a session id; signing out records the id here until the
session would have ended by itself, so a copy of the cookie (or a response already on its way
that sets it again) no longer signs anyone in.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 01:00:00
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "ended_sessions",
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("ended_unix_ns", sa.BigInteger(), nullable=False),
        sa.Column("expires_unix_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("session_id", name=op.f("ended_sessions_pkey")),
    )


def downgrade() -> None:
    op.drop_table("ended_sessions")
