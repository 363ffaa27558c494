"""Declaration plans published by provinces."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clock import now
from app.models.base import Base
from app.models.masterdata import Certificate

PLAN_DRAFT = "draft"
PLAN_PUBLISHED = "published"
PLAN_WITHDRAWN = "withdrawn"
PLAN_CLOSED = "closed"


class PlanCertificate(Base):
    """A certificate offered by a plan."""

    __tablename__ = "plan_certificate"

    plan_id: Mapped[int] = mapped_column(ForeignKey("declaration_plan.id", ondelete="CASCADE"), primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificate.id"), primary_key=True)

    certificate: Mapped[Certificate] = relationship()


class DeclarationPlan(Base):
    """A province's declaration plan (申报计划) with its window."""

    __tablename__ = "declaration_plan"
    __table_args__ = (Index("ix_plan_province_status", "province_code", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    province_code: Mapped[str] = mapped_column(String(6), ForeignKey("division.code"))
    name: Mapped[str] = mapped_column(String(128))
    starts_at: Mapped[datetime] = mapped_column()
    ends_at: Mapped[datetime] = mapped_column()
    review_deadline: Mapped[datetime | None] = mapped_column(nullable=True)
    announce_days: Mapped[int] = mapped_column(default=7)
    contact_name: Mapped[str] = mapped_column(String(64), default="")
    contact_phone: Mapped[str] = mapped_column(String(32), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=PLAN_DRAFT)
    created_at: Mapped[datetime] = mapped_column(default=now)
    published_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)

    certificates: Mapped[list[PlanCertificate]] = relationship(
        cascade="all, delete-orphan", order_by="PlanCertificate.certificate_id"
    )

    def is_open(self, at: datetime) -> bool:
        """Return whether schools may declare at the given time."""
        return self.status == PLAN_PUBLISHED and self.starts_at <= at < self.ends_at
