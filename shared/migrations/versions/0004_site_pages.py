"""the site's pages as Markdown (shared/site_pages.py): llms.txt, the .md pages, MCP get_page

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "site_page",
        sa.Column("site", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
        sa.Column("url_path", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
        sa.Column("path", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("markdown", sa.Text(), nullable=False),
        sa.Column("section", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("version", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("locale", sqlmodel.sql.sqltypes.AutoString(length=35), nullable=True),
        sa.Column("last_version", sa.Boolean(), nullable=False),
        sa.Column("content_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("site", "url"),
    )
    with op.batch_alter_table("site_page", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_site_page_path"), ["path"], unique=False)
        batch_op.create_index("ix_site_page_site_url_path", ["site", "url_path"], unique=False)

    op.create_table(
        "site_summary",
        sa.Column("site", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("tagline", sa.Text(), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("site"),
    )


def downgrade() -> None:
    op.drop_table("site_summary")
    with op.batch_alter_table("site_page", schema=None) as batch_op:
        batch_op.drop_index("ix_site_page_site_url_path")
        batch_op.drop_index(batch_op.f("ix_site_page_path"))

    op.drop_table("site_page")
