"""mask generated passwords kept in stored text messages

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 18:00:00.000000

Messages carrying a generated password (account issued, reset, legacy import, registration) kept it in plain
text in their body and params. From now on the body is stored masked and the params lose the password once the
message is delivered (app.sms.services). This migration does the same to the messages already stored: every
body is masked, and the params of delivered ones. Undelivered messages keep the password in their params, so
that they can still be delivered; there is nothing to restore on downgrade.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

MASK = "******"


def upgrade() -> None:
    conn = op.get_bind()
    message = sa.table("sms_message", sa.column("id", sa.Integer), sa.column("template", sa.String),
                       sa.column("status", sa.String), sa.column("params", sa.JSON), sa.column("body", sa.Text))
    rows = conn.execute(sa.select(message.c.id, message.c.status, message.c.params, message.c.body)
                        .where(message.c.template.in_(("account_issued", "account_reset")))).all()
    for row in rows:
        password = (row.params or {}).get("password")
        if not password or password == MASK:
            continue
        values: dict[str, object] = {"body": row.body.replace(password, MASK)}
        if row.status == "sent":
            values["params"] = {**row.params, "password": MASK}
        conn.execute(message.update().where(message.c.id == row.id).values(**values))


def downgrade() -> None:
    """Nothing to undo: a masked password is gone for good."""
