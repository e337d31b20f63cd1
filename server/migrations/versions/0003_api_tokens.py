"""API tokens: scoped (read, ingest, admin), per group or every group, stored as SHA-256 only.

The same table holds one-time sign-in links (``kind`` "link"), which sign a browser in once and
are never accepted as bearer tokens. See ``greenflame.server.tokens`` and docs/security.md.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 07:40:00
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("group_name", sa.String(length=128), nullable=True),
        sa.Column("created_unix_ns", sa.BigInteger(), nullable=False),
        sa.Column("expires_unix_ns", sa.BigInteger(), nullable=True),
        sa.Column("used_unix_ns", sa.BigInteger(), nullable=True),
        sa.Column("revoked_unix_ns", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("api_tokens_pkey")),
        sa.UniqueConstraint("token_sha256", name=op.f("api_tokens_token_sha256_key")),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
