"""review queue indexes: open review tasks in queue order, open tasks by subject

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 05:20:00.000000

The province's review queue (app/services/review.py) at 50,000 waiting declarations (bench/closure.py):

- ix_human_task_review serves the unfiltered queue: its count and its pages in submission order.
  PostgreSQL: a partial index over open tasks only (small; it stays small as tasks complete), ordered by
  (created_at, id) after the equality columns, so a page is an index range scan and the count an index-only scan.
  PostgreSQL cannot use the order of an index across a `completed_at IS NULL` column, hence the partial form.
  SQLite: a full index with completed_at among the equality columns. SQLite's planner ignores the partial form
  (it prefers ix_human_task_queue, which it wrongly believes selective), and unlike PostgreSQL it treats
  `IS NULL` as an equality, so the order after it is usable.
- ix_human_task_open_subject finds a declaration's open task by subject: the filtered queue counts the matching
  declarations that have an open review task, one probe each.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

OPEN = sa.text("completed_at IS NULL")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_human_task_review", "human_task",
                        ["lane", "province_code", "subject_type", "created_at", "id"], postgresql_where=OPEN)
    else:
        op.create_index("ix_human_task_review", "human_task",
                        ["lane", "province_code", "completed_at", "subject_type", "created_at"])
    op.create_index("ix_human_task_open_subject", "human_task", ["subject_type", "subject_id", "lane"],
                    postgresql_where=OPEN, sqlite_where=OPEN)


def downgrade() -> None:
    op.drop_index("ix_human_task_open_subject", table_name="human_task")
    op.drop_index("ix_human_task_review", table_name="human_task")
