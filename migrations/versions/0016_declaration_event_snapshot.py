"""keep the declaration's content with each review decision

Revision ID: 0016
Revises: 0008
Create Date: 2026-12-01 20:00:00.000000

A decision's history entry keeps the declaration's fields as they were decided (certificate, level, majors,
trainee count, teachers, facilities), so that the review page of a resubmitted declaration shows, field by
field, what the school changed since it was returned. Entries written before have none (nothing is shown).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("declaration_event") as batch:
        batch.add_column(sa.Column("snapshot", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("declaration_event") as batch:
        batch.drop_column("snapshot")
