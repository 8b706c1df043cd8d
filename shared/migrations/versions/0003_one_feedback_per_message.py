"""one feedback row per message (a later rating replaces the earlier one)

Revision ID: 0003
Revises: 0002_report
Create Date: 2026-11-29

Issue 16: feedback had no bound (150 comments on one message were all stored). Rows already
duplicated keep only the latest rating of each message.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002_report"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        sa.text(
            "DELETE FROM feedback WHERE EXISTS (SELECT 1 FROM feedback AS later"
            " WHERE later.message_id = feedback.message_id AND (later.created_at >"
            " feedback.created_at OR (later.created_at = feedback.created_at"
            " AND later.id > feedback.id)))"
        )
    )
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feedback_message_id"))
        batch_op.create_index(batch_op.f("ix_feedback_message_id"), ["message_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feedback_message_id"))
        batch_op.create_index(batch_op.f("ix_feedback_message_id"), ["message_id"], unique=False)
