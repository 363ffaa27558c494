"""engine failures of one instance are recorded: process_incident

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 16:05:00.000000

A step that fails in the engine (an expression of the diagram that cannot be evaluated on one instance's data)
rolls back the user's request and is recorded here, with the element and the error, for the analysts' incidents
page; every other instance of the province goes on.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.core.db import UTCDateTime

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "process_incident",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("instance_id", sa.Integer(), sa.ForeignKey("process_instance.id", ondelete="CASCADE"),
                  nullable=True),
        sa.Column("version_id", sa.Integer(), sa.ForeignKey("process_version.id"), nullable=False),
        sa.Column("process_key", sa.String(length=64), nullable=False),
        sa.Column("province_code", sa.String(length=6), nullable=True),
        sa.Column("element_id", sa.String(length=128), nullable=False),
        sa.Column("element_name", sa.String(length=256), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("first_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", UTCDateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_process_incident_instance_id", "process_incident", ["instance_id"])
    op.create_index("ix_process_incident_open", "process_incident", ["resolved_at", "last_at"])


def downgrade() -> None:
    op.drop_index("ix_process_incident_open", table_name="process_incident")
    op.drop_index("ix_process_incident_instance_id", table_name="process_incident")
    op.drop_table("process_incident")
