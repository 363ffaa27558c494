"""Declarations of certificate pilots and their history."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clock import now
from app.core.db import Base
from app.masterdata.models import Certificate, School
from app.plans.models import DeclarationPlan


class Declaration(Base):
    """One school's declaration of one certificate at one level in one plan."""

    __tablename__ = "declaration"
    __table_args__ = (
        UniqueConstraint("plan_id", "school_id", "certificate_id", "level", name="uq_declaration_once"),
        Index("ix_declaration_queue", "province_code", "status", "submitted_at"),
        Index("ix_declaration_school", "school_id", "plan_id"),
        Index("ix_declaration_plan_status", "plan_id", "status"),
        Index("ix_declaration_province_cert", "province_code", "certificate_id", "level"),
        Index("ix_declaration_province_city", "province_code", "city_code"),
        # results and the announcement: a plan's approved declarations (every index is written at each change of
        # status, so there is no other on the meaning)
        Index("ix_declaration_plan_meaning", "plan_id", "status_meaning"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("declaration_plan.id"))
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id"))
    province_code: Mapped[str] = mapped_column(String(6))
    city_code: Mapped[str | None] = mapped_column(String(6), nullable=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificate.id"))
    level: Mapped[str] = mapped_column(String(8))
    majors: Mapped[list[Any]] = mapped_column(default=list)  # major codes
    trainee_count: Mapped[int] = mapped_column()
    teachers: Mapped[str] = mapped_column(Text)
    facilities: Mapped[str] = mapped_column(Text)
    # The word of the declaration's process (shown) and its meaning (compared): app.engine.vocabulary.
    status: Mapped[str] = mapped_column(String(16), default="")
    status_meaning: Mapped[str] = mapped_column(String(16), default="draft")
    locked: Mapped[bool] = mapped_column(default=False)  # the school has no open task on it
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"), nullable=True)
    review_comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    submitted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now)
    revision: Mapped[int] = mapped_column(default=0)

    plan: Mapped[DeclarationPlan] = relationship()
    school: Mapped[School] = relationship()
    certificate: Mapped[Certificate] = relationship()


class DeclarationEvent(Base):
    """A line of a declaration's history: who did what, when, with which comment."""

    __tablename__ = "declaration_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    declaration_id: Mapped[int] = mapped_column(ForeignKey("declaration.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=now)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    actor_name: Mapped[str] = mapped_column(String(128), default="")
    action: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="")
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    # How the step names what was done, in the words of its form (省级审核：退回修改); empty: the action's own name.
    label: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # a decision's entry: the declaration's content as decided (lifecycle.CONTENT_FIELDS), to show what changed since
    snapshot: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
