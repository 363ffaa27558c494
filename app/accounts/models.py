"""Accounts of schools and staff."""
from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from app.accounts.role_models import Role
from app.clock import now
from app.core.db import Base
from app.masterdata.models import School

ROLE_SCHOOL = "school"
ROLE_PROVINCE_REVIEWER = "province_reviewer"
ROLE_PROVINCE_ADMIN = "province_admin"
ROLE_ANALYST = "analyst"
ROLE_MINISTRY_ADMIN = "ministry_admin"
STAFF_ROLES = (ROLE_PROVINCE_REVIEWER, ROLE_PROVINCE_ADMIN, ROLE_ANALYST, ROLE_MINISTRY_ADMIN)
# Where a school account stands in its registration process: waiting for the process to activate it, activated
# (every staff account and every account made by staff), or refused by the process.
ACCOUNT_PENDING = "pending"
ACCOUNT_ACTIVE = "active"
ACCOUNT_REFUSED = "refused"
ACCOUNT_STATUS_LABELS = {ACCOUNT_PENDING: "注册待审核", ACCOUNT_ACTIVE: "已开通", ACCOUNT_REFUSED: "注册未通过"}
ROLE_LABELS = {
    ROLE_SCHOOL: "院校",
    ROLE_PROVINCE_REVIEWER: "省级审核员",
    ROLE_PROVINCE_ADMIN: "省级管理员",
    ROLE_ANALYST: "流程分析员",
    ROLE_MINISTRY_ADMIN: "部级管理员",
}


class User(UserMixin, Base):
    """A login: one per school, or a staff member with a role and a scope."""

    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(32), index=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    province_code: Mapped[str | None] = mapped_column(String(6), ForeignKey("division.code"), nullable=True)
    city_code: Mapped[str | None] = mapped_column(String(6), ForeignKey("division.code"), nullable=True)
    school_id: Mapped[int | None] = mapped_column(ForeignKey("school.id"), unique=True, nullable=True)
    # A member of a training-evaluation organisation sees only the organisation's certificates.
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(16), nullable=True)
    must_change_password: Mapped[bool] = mapped_column(default=False)
    is_active_account: Mapped[bool] = mapped_column(default=True)
    account_status: Mapped[str] = mapped_column(String(16), default=ACCOUNT_ACTIVE, server_default=ACCOUNT_ACTIVE)
    # Bumped whenever the password changes so that old sessions end.
    session_token: Mapped[int] = mapped_column(default=0)
    origin: Mapped[str] = mapped_column(String(16), default="registered")  # registered/legacy/staff
    created_at: Mapped[datetime] = mapped_column(default=now)
    last_login_at: Mapped[datetime | None] = mapped_column(nullable=True)

    school: Mapped[School | None] = relationship()

    @property
    def is_active(self) -> bool:  # type: ignore[override]
        return self.is_active_account

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"

    def set_password(self, password: str) -> None:
        """Store a salted hash of the password and end other sessions."""
        self.password_hash = generate_password_hash(password)
        self.session_token = (self.session_token or 0) + 1

    def check_password(self, password: str) -> bool:
        """Return whether password matches the stored hash."""
        return check_password_hash(self.password_hash, password)

    @property
    def role_label(self) -> str:
        if self.role in ROLE_LABELS:
            return ROLE_LABELS[self.role]
        from sqlalchemy.orm import object_session

        session = object_session(self)
        role = session.get(Role, self.role) if session is not None else None
        return role.name if role is not None else self.role


class PhoneCode(Base):
    """A code texted to a phone to prove it (registration): only a keyed hash of the code is kept."""

    __tablename__ = "phone_code"
    __table_args__ = (Index("ix_phone_code_phone", "phone", "purpose", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(16))
    code_hash: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[int | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=now)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)
