"""registration codes and accounts waiting for the registration process

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 19:30:00.000000

A registration proves its phone with a code sent by SMS: phone_code keeps a keyed hash of each code, when it
expires and when it was used. An account now stays 'pending' until the registration process activates it (or
'refused' when the process refuses it); every account stored before this is active.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.core.db import UTCDateTime

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user_account") as batch:
        batch.add_column(sa.Column("account_status", sa.String(length=16), nullable=False, server_default="active"))
    op.create_table(
        "phone_code",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("phone", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", UTCDateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_phone_code_phone", "phone_code", ["phone", "purpose", "id"])


def downgrade() -> None:
    op.drop_index("ix_phone_code_phone", table_name="phone_code")
    op.drop_table("phone_code")
    with op.batch_alter_table("user_account") as batch:
        batch.drop_column("account_status")
