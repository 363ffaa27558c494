"""Process versions for analysts: validate, diff, dry-run, publish, migrate waiting instances, incidents."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy import true as sa_true
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import ROLE_ANALYST, ROLE_MINISTRY_ADMIN, User
from app.accounts.roles import lane_roles
from app.core.errors import Forbidden, NotFound
from app.core.transactions import after_commit
from app.engine import engine
from app.engine.runtime import EngineError
from app.engine.specs import InvalidProcess, ParsedProcess, Problem
from app.engine.state import load_state
from app.engine.versions import VersionDiff, diff_versions, migrate, migration_blockers
from app.masterdata.models import Division, School
from app.processes import publish_gate
from app.processes.jobs import enqueue_service_call
from app.processes.models import HumanTask, ProcessIncident, ProcessInstance, ProcessVersion, ServiceCall
from app.processes.scenarios import saved_scenarios
from app.processes.services import publish_version
from app.sms.models import AuditEntry
from app.sms.templates import texts_for_scope


def require_analyst(user: User) -> None:
    """Allow analysts (and the ministry admin) only."""
    if user.role not in (ROLE_ANALYST, ROLE_MINISTRY_ADMIN):
        raise Forbidden("只有流程分析员可以管理流程")


@dataclass
class ProcessOverview:
    """One process with the national version and each province's own version in force."""

    key: str
    national: ProcessVersion | None
    provincial: list[tuple[ProcessVersion, str]] = field(default_factory=list)
    running: int = 0


def overview(session: Session, user: User) -> list[ProcessOverview]:
    """Return every process with its versions in force and running instance counts."""
    require_analyst(user)
    active = session.scalars(select(ProcessVersion).where(ProcessVersion.active.is_(True))
                             .order_by(ProcessVersion.process_key, ProcessVersion.province_code)).all()
    names = {d.code: d.name for d in session.scalars(select(Division).where(Division.level == "province"))}
    running = dict(session.execute(select(ProcessInstance.process_key, func.count()).where(
        ProcessInstance.completed.is_(False)).group_by(ProcessInstance.process_key)).all())
    result: dict[str, ProcessOverview] = {}
    for version in active:
        item = result.setdefault(version.process_key, ProcessOverview(version.process_key, None,
                                                                      running=running.get(version.process_key, 0)))
        if version.province_code is None:
            item.national = version
        else:
            item.provincial.append((version, names.get(version.province_code, version.province_code)))
    return list(result.values())


def versions(session: Session, user: User, process_key: str) -> list[ProcessVersion]:
    """Return every version of a process, newest first."""
    require_analyst(user)
    return list(session.scalars(select(ProcessVersion).where(ProcessVersion.process_key == process_key)
                                .order_by(ProcessVersion.id.desc())))


def get_version(session: Session, user: User, version_id: int) -> ProcessVersion:
    """Return one version."""
    require_analyst(user)
    version = session.get(ProcessVersion, version_id)
    if version is None:
        raise NotFound("流程版本不存在")
    return version


def version_in_force(session: Session, user: User, process_key: str, province_code: str | None) -> ProcessVersion:
    """Return the version new instances of a scope start on: the province's own, else the national one."""
    require_analyst(user)

    try:
        return _engine().resolve_version(session, process_key, province_code)  # type: ignore[no-any-return]
    except EngineError:
        raise NotFound(f"流程 {process_key} 尚未发布") from None


def _engine() -> Any:
    return engine()


def known_lanes(session: Session) -> list[str]:
    """Return the roles a lane may name."""
    return lane_roles(session)


def validate(session: Session, process_key: str, xml: str, forms: Mapping[str, Any],
             province_code: str | None = None) -> ParsedProcess:
    """Validate a draft as publishing to the scope would (the publish gate, with the scope's templates and saved
    scenarios); raise InvalidProcess with every problem."""
    return publish_gate.checked(_engine(), process_key, xml, forms, known_lanes(session),
                                texts_for_scope(session, province_code),
                                saved_scenarios(session, process_key, province_code))


def diff_against_current(session: Session, process_key: str, province_code: str | None,
                         parsed: ParsedProcess) -> VersionDiff | None:
    """Compare a draft with the version in force for its scope."""
    try:
        current = _engine().resolve_version(session, process_key, province_code)
    except Exception:
        return None
    return diff_versions(_engine().parsed(current), parsed)


def publish(session: Session, user: User, process_key: str, xml: str, forms: Mapping[str, Any],
            province_code: str | None, note: str) -> ProcessVersion:
    """Publish a validated draft nationally or for one province."""
    require_analyst(user)
    validate(session, process_key, xml, forms, province_code)
    if province_code and session.get(Division, province_code) is None:
        raise InvalidProcess([Problem("省份代码无效")])
    version = publish_version(session, process_key, xml, dict(forms), province_code=province_code,
                              published_by=user.username, note=note, lanes=known_lanes(session))
    session.add(AuditEntry(at=clock.now(), actor_id=user.id, action="publish_process", target=f"process:{version.id}",
                           detail=f"{user.display_name} 发布 {process_key} 版本 #{version.id}（{province_code or '全国'}）：{note}"))
    return version


def revert_to_national(session: Session, user: User, process_key: str, province_code: str) -> int:
    """Retire a province's own version so that its new instances use the national one; return versions retired."""
    require_analyst(user)
    rows = session.scalars(select(ProcessVersion).where(ProcessVersion.process_key == process_key,
                                                        ProcessVersion.province_code == province_code,
                                                        ProcessVersion.active.is_(True))).all()
    for row in rows:
        row.active = False
    session.add(AuditEntry(at=clock.now(), actor_id=user.id, action="revert_process", target=f"{process_key}:{province_code}",
                           detail=f"{user.display_name} 将 {province_code} 的 {process_key} 恢复为全国版本"))
    return len(rows)


@dataclass
class MigrationLine:
    """What happened to one waiting instance."""

    instance_id: int
    subject: str
    migrated: bool
    reasons: list[str]


def migrate_waiting(session: Session, user: User, version_id: int) -> list[MigrationLine]:
    """Move the waiting instances of the version's scope to it where safe; report each instance."""
    require_analyst(user)
    target = get_version(session, user, version_id)
    eng = _engine()
    new = eng.parsed(target)
    scope = ProcessInstance.province_code == target.province_code if target.province_code else sa_true()
    candidates = session.scalars(select(ProcessInstance.id).where(
        ProcessInstance.process_key == target.process_key, ProcessInstance.completed.is_(False),
        ProcessInstance.version_id != target.id, scope).order_by(ProcessInstance.id)).all()
    report = []
    for instance_id in candidates:
        instance = eng.lock(session, instance_id)
        old_version = session.get(ProcessVersion, instance.version_id)
        assert old_version is not None
        if target.province_code is None and old_version.province_code is not None:
            continue  # a province's own version is not replaced by a national one
        workflow = load_state(eng.parsed(old_version), instance.state)
        top_diff, reasons = migration_blockers(workflow, new)
        subject = f"{instance.subject_type} #{instance.subject_id}"
        if reasons:
            report.append(MigrationLine(instance_id, subject, False, reasons))
            continue
        migrate(workflow, new, top_diff)
        instance.version_id = target.id
        eng.save(session, instance, new, workflow)
        report.append(MigrationLine(instance_id, subject, True, []))
    session.add(AuditEntry(at=clock.now(), actor_id=user.id, action="migrate_instances", target=f"process:{version_id}",
                           detail=f"迁移 {sum(1 for r in report if r.migrated)} 个，拒绝 {sum(1 for r in report if not r.migrated)} 个"))
    return report


@dataclass
class InstanceView:
    """One instance for staff: its diagram, the path taken, what waits now, and its history."""

    instance: ProcessInstance
    version: ProcessVersion
    completed_ids: list[str]
    current_ids: list[str]
    tasks: list[HumanTask]
    calls: list[ServiceCall]
    actor_names: dict[int, str] = field(default_factory=dict)  # user id -> display name, for the history
    school_name: str = ""


def instance_view(session: Session, user: User, instance_id: int) -> InstanceView:
    """Return an instance with the ids of the elements it has passed and is waiting at."""
    require_analyst(user)
    instance = session.get(ProcessInstance, instance_id)
    if instance is None:
        raise NotFound("流程实例不存在")
    version = session.get(ProcessVersion, instance.version_id)
    assert version is not None
    workflow = load_state(_engine().parsed(version), instance.state)
    done, current = _engine().element_states(workflow)
    tasks = list(session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id).order_by(HumanTask.id)))
    calls = list(session.scalars(select(ServiceCall).where(ServiceCall.instance_id == instance_id).order_by(ServiceCall.id)))
    actor_ids = {t.completed_by_id for t in tasks if t.completed_by_id} | {t.claimed_by_id for t in tasks if t.claimed_by_id}
    names = dict(session.execute(select(User.id, User.display_name).where(User.id.in_(actor_ids))).all()) if actor_ids else {}
    school = session.get(School, instance.school_id) if instance.school_id else None
    return InstanceView(instance, version, done, current, tasks, calls, names, school.name if school else "")


@dataclass
class InstanceRow:
    """An instance as the process pages list it, with its school's name."""

    instance: ProcessInstance
    school_name: str


def recent_instances(session: Session, user: User, *, process_key: str | None = None, version_id: int | None = None,
                     limit: int = 20) -> list[InstanceRow]:
    """Return the newest instances of a process or of one version."""
    require_analyst(user)
    stmt = select(ProcessInstance, School.name).outerjoin(School, School.id == ProcessInstance.school_id)
    if process_key is not None:
        stmt = stmt.where(ProcessInstance.process_key == process_key)
    if version_id is not None:
        stmt = stmt.where(ProcessInstance.version_id == version_id)
    rows = session.execute(stmt.order_by(ProcessInstance.id.desc()).limit(limit)).all()
    return [InstanceRow(instance, name or "") for instance, name in rows]


def instance_counts(session: Session, user: User, process_key: str) -> dict[int, tuple[int, int]]:
    """Return (running, total) instance counts per version of a process."""
    require_analyst(user)
    rows = session.execute(select(ProcessInstance.version_id, ProcessInstance.completed, func.count())
                           .where(ProcessInstance.process_key == process_key)
                           .group_by(ProcessInstance.version_id, ProcessInstance.completed)).all()
    counts: dict[int, tuple[int, int]] = {}
    for version_id, completed, count in rows:
        running, total = counts.get(version_id, (0, 0))
        counts[version_id] = (running + (0 if completed else count), total + count)
    return counts


def incidents(session: Session, user: User) -> list[ServiceCall]:
    """Return service calls that failed after their retries."""
    require_analyst(user)
    return list(session.scalars(select(ServiceCall).where(ServiceCall.status == "failed").order_by(ServiceCall.updated_at.desc())))


def step_incidents(session: Session, user: User) -> list[ProcessIncident]:
    """Return the steps that failed in the engine and are not yet dealt with, newest first."""
    require_analyst(user)
    return list(session.scalars(select(ProcessIncident).where(ProcessIncident.resolved_at.is_(None))
                                .order_by(ProcessIncident.last_at.desc()).limit(500)))


def resolve_step_incident(session: Session, user: User, incident_id: int) -> ProcessIncident:
    """Mark a failed step as dealt with."""
    require_analyst(user)
    incident = session.get(ProcessIncident, incident_id)
    if incident is None or incident.resolved_at is not None:
        raise NotFound("该故障不存在或已处理")
    incident.resolved_at = clock.now()
    session.add(AuditEntry(at=clock.now(), actor_id=user.id, action="resolve_incident", target=f"incident:{incident_id}",
                           detail=f"{user.display_name} 将流程故障 #{incident_id}（{incident.element_name or incident.element_id}）"
                                  f"标记为已处理"))
    return incident


def retry_incident(session: Session, user: User, call_id: int) -> ServiceCall:
    """Put a failed service call back in the queue."""
    require_analyst(user)
    call = session.get(ServiceCall, call_id)
    if call is None or call.status != "failed":
        raise NotFound("该故障不存在或已处理")
    call.status = "pending"
    call.attempts = 0
    call.updated_at = clock.now()
    after_commit(session, lambda: enqueue_service_call(call_id))
    session.add(AuditEntry(at=clock.now(), actor_id=user.id, action="retry_service_call", target=f"call:{call_id}",
                           detail=f"{user.display_name} 重试服务任务 {call.task_name}（{call.operation}）"))
    return call
