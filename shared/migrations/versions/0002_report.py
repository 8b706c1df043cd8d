"""the maintainer's report: time to answer, cached question vectors, indexes for its queries

Revision ID: 0002_report
Revises: 0001
Create Date: 2026-11-29

Indexes serve shared/report.py (every section filters on a time window, and optionally the
session's site) and the retention task (deletes by age): message.created_at,
feedback.created_at, chat_session.site. bench/report_speed.py measured the report with them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002_report"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("answer_ms", sa.Integer(), nullable=True))
        batch_op.create_index("ix_message_created_at", ["created_at"], unique=False)
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.create_index("ix_feedback_created_at", ["created_at"], unique=False)
    with op.batch_alter_table("chat_session", schema=None) as batch_op:
        batch_op.create_index("ix_chat_session_site", ["site"], unique=False)
    op.create_table(
        "question_vector",
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["message.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("message_id"),
    )


def downgrade() -> None:
    op.drop_table("question_vector")
    with op.batch_alter_table("chat_session", schema=None) as batch_op:
        batch_op.drop_index("ix_chat_session_site")
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_index("ix_feedback_created_at")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index("ix_message_created_at")
        batch_op.drop_column("answer_ms")
