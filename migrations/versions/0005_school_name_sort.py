"""school names in pinyin order: school.name_sort and its index

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 12:00:00.000000

Lists of schools (the review queue sorted by 院校名称, the province's school accounts, exports) sort by the name's
pinyin, as Chinese readers expect, rather than by code point. The key is set by the model whenever a name is set
(app.masterdata.models.name_sort_key); this migration fills it for the schools already stored.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    from app.masterdata.models import name_sort_key

    op.add_column("school", sa.Column("name_sort", sa.String(length=512), nullable=False, server_default=""))
    conn = op.get_bind()
    school = sa.table("school", sa.column("id", sa.Integer), sa.column("name", sa.String),
                      sa.column("name_sort", sa.String))
    rows = conn.execute(sa.select(school.c.id, school.c.name)).all()
    for start in range(0, len(rows), 1000):
        conn.execute(school.update().where(school.c.id == sa.bindparam("school_id"))
                     .values(name_sort=sa.bindparam("key")),
                     [{"school_id": row.id, "key": name_sort_key(row.name)} for row in rows[start:start + 1000]])
    op.create_index("ix_school_province_name_sort", "school", ["province_code", "name_sort"])


def downgrade() -> None:
    op.drop_index("ix_school_province_name_sort", table_name="school")
    op.drop_column("school", "name_sort")
