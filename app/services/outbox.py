"""The outbox backend's messages, as staff and the command line read them."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models.sms import SmsMessage


def newest_messages(session: Session, phone: str | None = None, limit: int = 50) -> list[SmsMessage]:
    """Return the newest messages, optionally for one phone."""
    stmt = select(SmsMessage).order_by(SmsMessage.id.desc()).limit(max(1, min(limit, 500)))
    if phone:
        stmt = stmt.where(SmsMessage.phone == phone)
    return list(session.scalars(stmt))
