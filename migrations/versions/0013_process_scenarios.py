"""dry-run scenarios analysts save per process and scope; decision names in declaration history

Revision ID: 0013
Revises: 0008
Create Date: 2026-12-01 20:00:00.000000

process_scenario holds the scenarios analysts write in the editor's 场景 panel; those of a scope run whenever a
version is published to it. declaration_event.label keeps how a step names what was done in the words of its form
(x-enum-labels, e.g. 省级审核：退回修改), so the history never shows a raw choice value.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.core.db import UTCDateTime

revision = '0013'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "process_scenario",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("process_key", sa.String(length=64), nullable=False),
        sa.Column("province_code", sa.String(length=6), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("expect_status", sa.String(length=32), nullable=False),
        sa.Column("expect_sms", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_process_scenario")),
    )
    op.create_index("ix_process_scenario_scope", "process_scenario", ["process_key", "province_code"])
    with op.batch_alter_table("declaration_event") as batch:
        batch.add_column(sa.Column("label", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("declaration_event") as batch:
        batch.drop_column("label")
    op.drop_index("ix_process_scenario_scope", table_name="process_scenario")
    op.drop_table("process_scenario")
