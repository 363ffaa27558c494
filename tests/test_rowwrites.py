"""Row writes built once per shape: the values stored are what the ORM would store, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app import clock, rowwrites
from app.processes.models import HumanTask, ProcessInstance, ProcessVersion, ServiceCall
from app.rowwrites import RowWrite


def _instance(session) -> ProcessInstance:
    version = session.scalars(select(ProcessVersion)).first()
    now = clock.now()
    return rowwrites.insert_loaded(session, ProcessInstance, {
        "version_id": version.id, "process_key": "declaration", "province_code": "440000", "city_code": "440100",
        "school_id": None, "subject_type": "declaration", "subject_id": 7, "state": "{}", "path": ["start"],
        "status": "草稿", "completed": False, "lock_version": 0, "next_wake_at": None, "created_at": now,
        "updated_at": now})


def test_an_inserted_row_reads_back_as_the_orm_stores_it_and_is_attached_as_loaded(session):
    instance = _instance(session)
    assert instance in session and instance not in session.dirty and instance.id is not None
    session.commit()
    session.expire_all()
    again = session.get(ProcessInstance, instance.id)
    assert (again.path, again.status, again.province_code, again.completed) == (["start"], "草稿", "440000", False)
    assert again.created_at.tzinfo is not None  # stored as UTC and read back aware, like every datetime column


def test_updates_match_their_columns_and_guard_and_share_one_compiled_statement(session, monkeypatch):
    instance = _instance(session)
    table = HumanTask.__table__
    now = clock.now()
    for task_id in ("t-open", "t-done"):
        rowwrites.run_one(session.connection(), RowWrite(table, {
            "instance_id": instance.id, "task_id": task_id, "task_name": "review", "title": "审核", "lane": "province_reviewer",
            "province_code": "440000", "city_code": None, "school_id": None, "subject_type": "declaration",
            "subject_id": 7, "form": None, "status_label": "待审核", "created_at": now, "due_at": None}))
    done_at = datetime(2026, 11, 29, 1, 2, 3, tzinfo=UTC)
    close = [RowWrite(table, {"completed_at": done_at, "completed_by_id": None},
                      {"instance_id": instance.id, "task_id": task_id}, "open") for task_id in ("t-done", "t-none")]
    compiled: dict = {}
    monkeypatch.setattr(rowwrites, "_COMPILED", compiled)
    rowwrites.execute(session.connection(), close, head=RowWrite(
        ProcessInstance.__table__, {"status": "待审核", "updated_at": now + timedelta(seconds=1)}, {"id": instance.id}))
    # PostgreSQL: one statement for the step; elsewhere one per shape (both closes share theirs).
    assert len(compiled) == (1 if session.get_bind().dialect.name == "postgresql" else 2)
    session.expire_all()
    rows = {t.task_id: t.completed_at for t in session.scalars(select(HumanTask))}
    assert rows == {"t-open": None, "t-done": done_at}
    assert session.get(ProcessInstance, instance.id).status == "待审核"


def test_a_live_call_guard_leaves_finished_calls_alone(session):
    instance = _instance(session)
    table = ServiceCall.__table__
    now = clock.now()
    for task_id, status in (("a", "pending"), ("b", "done")):
        rowwrites.run_one(session.connection(), RowWrite(table, {
            "instance_id": instance.id, "task_id": task_id, "task_name": "sms", "operation": "sms_send",
            "params": {"phone": "13800000000"}, "status": status, "attempts": 0, "max_retries": 3,
            "created_at": now, "updated_at": now}))
    for task_id in ("a", "b"):
        rowwrites.run_one(session.connection(), RowWrite(table, {"status": "cancelled", "updated_at": now},
                                                         {"instance_id": instance.id, "task_id": task_id}, "live call"))
    session.expire_all()
    calls = {c.task_id: (c.status, c.params) for c in session.scalars(select(ServiceCall))}
    assert calls == {"a": ("cancelled", {"phone": "13800000000"}), "b": ("done", {"phone": "13800000000"})}
