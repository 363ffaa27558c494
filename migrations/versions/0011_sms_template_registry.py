"""SMS templates become data: the sms_template registry with its history; messages keep their provider code

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-01 19:45:00.000000

The templates were a fixed list in Python. They are now rows that analysts edit in the browser, national or one
province's own text of a template, every save kept in sms_template_revision. The national templates are written
from the shipped bpmn/sms-templates.json when the shipped processes are installed (app.sms.templates), so this
migration only creates the tables. A message keeps the text rendered when it was queued, and now also the
provider's template code of that moment (provider_template), and the sms_many call that sent it, if any.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.core.db import UTCDateTime

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sms_template",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=6), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("provider_code", sa.String(length=64), nullable=False),
        sa.Column("system_variables", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.UniqueConstraint("name", "scope", name="uq_sms_template_scope"),
    )
    op.create_table(
        "sms_template_revision",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("template_id", sa.Integer(), sa.ForeignKey("sms_template.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("provider_code", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("changed_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(length=64), nullable=False),
        sa.UniqueConstraint("template_id", "version", name="uq_sms_template_revision"),
    )
    with op.batch_alter_table("sms_message") as batch:
        batch.add_column(sa.Column("provider_template", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("service_call_id", sa.Integer(), nullable=True))
        batch.create_index("ix_sms_message_service_call_id", ["service_call_id"])


def downgrade() -> None:
    with op.batch_alter_table("sms_message") as batch:
        batch.drop_index("ix_sms_message_service_call_id")
        batch.drop_column("service_call_id")
        batch.drop_column("provider_template")
    op.drop_table("sms_template_revision")
    op.drop_table("sms_template")
