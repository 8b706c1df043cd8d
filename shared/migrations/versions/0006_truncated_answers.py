"""answers cut off by the model's token limit are marked (`message.truncated`)

Revision ID: 0006_truncated
Revises: 0005_index_commit
Create Date: 2026-12-07

Issue 26: an answer the token limit cut off was stored, and counted, as a complete answer.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_truncated"
down_revision: str | None = "0005_index_commit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("truncated", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_column("truncated")
