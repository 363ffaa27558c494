"""Declaration plans published by provinces."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clock import now
from app.core.db import Base
from app.masterdata.models import Certificate

PLAN_DRAFT = "draft"
PLAN_PUBLISHED = "published"
PLAN_WITHDRAWN = "withdrawn"
PLAN_CLOSED = "closed"  # 申报已截止, review goes on
PLAN_ANNOUNCING = "announcing"  # results computed, 公示期
PLAN_FINISHED = "finished"  # 公示结束; the results stay as the final record
PLAN_STATUS_LABELS = {PLAN_DRAFT: "未发布", "published": "已发布", PLAN_WITHDRAWN: "已撤回", PLAN_CLOSED: "申报已截止",
                      PLAN_ANNOUNCING: "结果公示中", PLAN_FINISHED: "公示结束"}


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
    instance_id: Mapped[int | None] = mapped_column(nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    results_at: Mapped[datetime | None] = mapped_column(nullable=True)
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

    @property
    def announce_ends_at(self) -> datetime:
        """Return when the announcement period ends."""
        return (self.review_deadline or self.ends_at) + timedelta(days=self.announce_days)

    def is_open(self, at: datetime) -> bool:
        """Return whether schools may declare at the given time."""
        return self.status == PLAN_PUBLISHED and self.starts_at <= at < self.ends_at


class PlanResult(Base):
    """A school's result in a plan once results are computed: 试点院校 or not."""

    __tablename__ = "plan_result"

    plan_id: Mapped[int] = mapped_column(ForeignKey("declaration_plan.id", ondelete="CASCADE"), primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id"), primary_key=True)
    approved_count: Mapped[int] = mapped_column(default=0)
    declared_count: Mapped[int] = mapped_column(default=0)
    is_pilot: Mapped[bool] = mapped_column(default=False)
    computed_at: Mapped[datetime] = mapped_column(default=now)
