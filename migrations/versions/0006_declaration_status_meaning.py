"""declarations carry the meaning of their status: declaration.status_meaning and its index by plan

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 16:30:00.000000

A process declares its statuses, each with a meaning the app knows (draft, waiting, returned, approved, rejected,
expired; app.engine.vocabulary). The queue, closure, results, the announcement and the dashboards ask for meanings,
so that a province may name its statuses as it likes. This migration fills the meaning of the declarations stored
under the national process's words; any other word counts as waiting when the declaration is locked, else as a draft.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# The national process's statuses at the time of this migration (app.engine.vocabulary.NATIONAL_DEFAULTS).
NATIONAL = {"草稿": "draft", "待审核": "waiting", "审核通过": "approved", "已过期": "expired"}
NATIONAL_RETURNED = "审核不通过"


def upgrade() -> None:
    op.add_column("declaration", sa.Column("status_meaning", sa.String(length=16), nullable=False, server_default=""))
    decl = sa.table("declaration", sa.column("status", sa.String), sa.column("locked", sa.Boolean),
                    sa.column("status_meaning", sa.String))
    conn = op.get_bind()
    for word, meaning in NATIONAL.items():
        conn.execute(decl.update().where(decl.c.status == word).values(status_meaning=meaning))
    conn.execute(decl.update().where(decl.c.status == NATIONAL_RETURNED)
                 .values(status_meaning=sa.case((decl.c.locked.is_(True), "rejected"), else_="returned")))
    conn.execute(decl.update().where(decl.c.status_meaning == "")
                 .values(status_meaning=sa.case((decl.c.locked.is_(True), "waiting"), else_="draft")))
    op.create_index("ix_declaration_plan_meaning", "declaration", ["plan_id", "status_meaning"])


def downgrade() -> None:
    op.drop_index("ix_declaration_plan_meaning", table_name="declaration")
    op.drop_column("declaration", "status_meaning")
