"""the commit of the index an answer was drawn from

Revision ID: 0005_index_commit
Revises: 0004
Create Date: 2026-12-07

Issue 25: a site indexed from its git repository records, with each answer, the commit its
index was built from (`message.index_commit`; NULL for a site read from a folder).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005_index_commit"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("index_commit", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_column("index_commit")
