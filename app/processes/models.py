"""Process versions, instances, human tasks and service calls of the BPMN engine."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import now
from app.core.db import Base


class ProcessVersion(Base):
    """One published version of a process diagram, national or for one province."""

    __tablename__ = "process_version"
    __table_args__ = (Index("ix_process_version_scope", "process_key", "province_code", "active"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    process_key: Mapped[str] = mapped_column(String(64))  # registration / declaration / plan
    province_code: Mapped[str | None] = mapped_column(String(6), nullable=True)  # None = national
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    bpmn_xml: Mapped[str] = mapped_column(Text)
    forms: Mapped[dict[str, Any]] = mapped_column(default=dict)  # file name -> JSON schema
    active: Mapped[bool] = mapped_column(default=True)
    note: Mapped[str] = mapped_column(Text, default="")
    published_at: Mapped[datetime] = mapped_column(default=now)
    published_by: Mapped[str] = mapped_column(String(64), default="")


class ProcessInstance(Base):
    """A running or finished process; holds only the engine state, not the spec."""

    __tablename__ = "process_instance"
    __table_args__ = (Index("ix_process_instance_subject", "subject_type", "subject_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("process_version.id"))
    process_key: Mapped[str] = mapped_column(String(64))
    province_code: Mapped[str | None] = mapped_column(String(6), nullable=True)
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int] = mapped_column()
    school_id: Mapped[int | None] = mapped_column(nullable=True)
    city_code: Mapped[str | None] = mapped_column(String(6), nullable=True)
    state: Mapped[str] = mapped_column(Text)
    # BPMN element ids the instance has passed, oldest first (kept here because old history is compacted away).
    path: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(32), default="")
    completed: Mapped[bool] = mapped_column(default=False)
    lock_version: Mapped[int] = mapped_column(default=0)
    next_wake_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now)


class HumanTask(Base):
    """A READY user task, as inboxes and queues read it."""

    __tablename__ = "human_task"
    __table_args__ = (
        UniqueConstraint("instance_id", "task_id", name="uq_human_task_task"),
        Index("ix_human_task_queue", "lane", "province_code", "completed_at", "created_at"),
        Index("ix_human_task_school", "school_id", "completed_at"),
        # Created by migration 0004 with a different shape per database (see there); declared so that
        # autogenerate keeps them.
        Index("ix_human_task_review", "lane", "province_code", "subject_type", "created_at", "id",
              postgresql_where=text("completed_at IS NULL")),
        Index("ix_human_task_open_subject", "subject_type", "subject_id", "lane",
              postgresql_where=text("completed_at IS NULL"), sqlite_where=text("completed_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"))
    task_id: Mapped[str] = mapped_column(String(36))
    task_name: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(256))
    lane: Mapped[str] = mapped_column(String(64))
    province_code: Mapped[str | None] = mapped_column(String(6), nullable=True)
    city_code: Mapped[str | None] = mapped_column(String(6), nullable=True)
    school_id: Mapped[int | None] = mapped_column(nullable=True)
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int] = mapped_column()
    form: Mapped[str | None] = mapped_column(String(128), nullable=True)
    status_label: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(default=now)
    due_at: Mapped[datetime | None] = mapped_column(nullable=True)
    claimed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)


class ServiceCall(Base):
    """A STARTED service task waiting for (or done by) an RQ job."""

    __tablename__ = "service_call"
    __table_args__ = (UniqueConstraint("instance_id", "task_id", name="uq_service_call_task"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"))
    task_id: Mapped[str] = mapped_column(String(36))
    task_name: Mapped[str] = mapped_column(String(128))
    operation: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # pending/done/failed/cancelled
    attempts: Mapped[int] = mapped_column(default=0)
    max_retries: Mapped[int] = mapped_column(default=3)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now)

    @property
    def job_id(self) -> str:
        return f"svc-{self.instance_id}-{self.task_id}"


class ProcessIncident(Base):
    """A step of one instance that failed in the engine (an expression that cannot be evaluated on its data): shown
    on the incidents page with its element and error, while every other instance goes on."""

    __tablename__ = "process_incident"
    __table_args__ = (Index("ix_process_incident_open", "resolved_at", "last_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # None: the instance failed while starting, so it was never stored
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"),
                                                    nullable=True, index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("process_version.id"))
    process_key: Mapped[str] = mapped_column(String(64))
    province_code: Mapped[str | None] = mapped_column(String(6), nullable=True)
    element_id: Mapped[str] = mapped_column(String(128), default="")
    element_name: Mapped[str] = mapped_column(String(256), default="")
    action: Mapped[str] = mapped_column(String(64), default="")  # what was being done: 提交, 审核, 定时器 ...
    error: Mapped[str] = mapped_column(Text, default="")
    occurrences: Mapped[int] = mapped_column(default=1)
    first_at: Mapped[datetime] = mapped_column(default=now)
    last_at: Mapped[datetime] = mapped_column(default=now)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ProcessScenario(Base):
    """A dry-run scenario an analyst wrote for a process, national or for one province: its steps (user tasks done
    with form values, timers fired, deadlines passed) and what it expects at the end. The saved scenarios of a scope
    run whenever a version is published to it."""

    __tablename__ = "process_scenario"
    __table_args__ = (Index("ix_process_scenario_scope", "process_key", "province_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    process_key: Mapped[str] = mapped_column(String(64))
    province_code: Mapped[str | None] = mapped_column(String(6), nullable=True)  # None = national
    name: Mapped[str] = mapped_column(String(100))
    steps: Mapped[list[Any]] = mapped_column(default=list)
    expect_status: Mapped[str] = mapped_column(String(32), default="")
    expect_sms: Mapped[str] = mapped_column(String(64), default="")
    created_by: Mapped[str] = mapped_column(String(64), default="")
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now)
