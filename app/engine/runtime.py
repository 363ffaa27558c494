"""Run process instances: start, load under a row lock, act, save; keep task tables in step."""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimeDateEventDefinition
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.spiff.specs.defaults import UserTask
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app import clock, rowwrites
from app.core.transactions import after_commit, after_end, held, hold
from app.engine.expressions import ExpressionError, evaluate
from app.engine.script_engine import SAFE_ENGINE, names_of
from app.engine.service_task import DeferredServiceTask
from app.engine.specs import SPEC_CACHE, InvalidProcess, ParsedProcess, parse_process, read_vocabulary
from app.engine.state import compact, dump_state, load_state
from app.engine.vocabulary import Vocabulary
from app.processes.models import HumanTask, ProcessIncident, ProcessInstance, ProcessVersion, ServiceCall
from app.rowwrites import RowWrite

HELD_INSTANCES = "process instances"  # app.core.transactions: instances the transaction holds locked


class EngineError(Exception):
    """A process step could not be taken; the message is for the user."""


class TaskNotAvailable(EngineError):
    """The task is no longer waiting for this user (done by someone else, or not theirs)."""


class StepFailed(EngineError):
    """The diagram failed on one instance's data (an expression that cannot be evaluated): the step is rolled back
    and recorded as an incident; other instances are not affected."""

    def __init__(self, error: str, element_id: str = "", element_name: str = "") -> None:
        where = f"“{element_name or element_id}”一步" if element_id else "流程中"
        super().__init__(f"该事项的办理流程在{where}出错，已记录为故障并通知流程分析员处理，请稍后再试。"
                         f"其他事项不受影响。")
        self.error = error
        self.element_id = element_id
        self.element_name = element_name




# Built once and run with parameters: a kept statement skips SQLAlchemy's construction and cache-key walk.
_LOCK = (select(ProcessInstance).where(ProcessInstance.id == bindparam("instance_id")).with_for_update()
         .execution_options(populate_existing=True))
_CALL_AND_LOCK = (select(ServiceCall, ProcessInstance).join(ProcessInstance, ProcessInstance.id == ServiceCall.instance_id)
                  .where(ServiceCall.id == bindparam("call_id")).with_for_update(of=ProcessInstance)
                  .execution_options(populate_existing=True))




@dataclass
class Hooks:
    """What the engine asks of the rest of the app after a commit."""

    service_calls_ready: Callable[[], None] = lambda: None  # new pending service_call rows were committed
    schedule_wake: Callable[[int, datetime], None] = lambda instance_id, at: None
    # remember(session, key, compute): a value derived from stored versions, kept by the app between requests
    # for as long as the versions in force do not change (default: compute every time)
    remember: Callable[[Session, Any, Callable[[], Any]], Any] = lambda session, key, compute: compute()
    # followed(subject_type, subject_id, outcome, previous_status): the subject's own writes after a step that no
    # caller took for it (a timer fired, a service task completed) and that changed its status or open tasks
    followed: Callable[[str, int, StepOutcome, str], list[SubjectWrite]] = lambda kind, subject_id, outcome, previous: []


@dataclass(frozen=True)
class VersionRef:
    """A stored process version without its diagram text (versions never change once stored)."""

    id: int
    process_key: str
    province_code: str | None
    content_hash: str
    forms: dict[str, Any]


@dataclass
class OpenTask:
    """A READY user task as the app sees it."""

    task_id: str
    name: str
    title: str
    lane: str
    form: str | None
    data: dict[str, Any]


@dataclass
class StepOutcome:
    """What a step left behind."""

    instance_id: int
    status: str
    completed: bool
    open_tasks: list[OpenTask] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    meaning: str | None = None  # of the status, in the vocabulary of the instance's version

    def waits_for(self, lane: str) -> bool:
        """Tell whether a task of this lane is open after the step."""
        return any(t.lane == lane for t in self.open_tasks)


@dataclass(frozen=True)
class Change:
    """New column values of a row (the step's subject, say), written with the step. row: a loaded object, on which
    the values are then shown as its saved state, or (model, primary key) of a row not loaded."""

    row: Any
    values: dict[str, Any]


@dataclass(frozen=True)
class Insert:
    """A new row of a model (a history entry, say), written with the step."""

    model: Any
    values: dict[str, Any]


SubjectWrite = Change | Insert
# The caller's own writes that follow from a step (its subject's row, its history), made from the step's outcome
# and written with the step: on PostgreSQL as more CTEs of the one statement that saves it.
SideWrites = Callable[[StepOutcome], list[SubjectWrite]]


def _row_writes(writes: Iterable[SubjectWrite]) -> list[RowWrite]:
    """Turn a caller's writes into the engine's row writes (one statement shape each, compiled once)."""
    rows = []
    for write in writes:
        if isinstance(write, Change):
            model, ident = write.row if isinstance(write.row, tuple) else (type(write.row), None)
            mapper: Any = sa_inspect(model)
            key = mapper.primary_key[0].key
            rows.append(RowWrite(cast(Table, mapper.local_table), write.values,
                                 {key: getattr(write.row, key) if ident is None else ident}))
        else:
            rows.append(RowWrite(cast(Table, write.model.__table__), write.values))
    return rows


def _show_saved(writes: Iterable[SubjectWrite]) -> None:
    """Show the written values on the changed objects as their saved state (the unit of work has nothing to flush)."""
    for write in writes:
        if isinstance(write, Change) and not isinstance(write.row, tuple):
            for name, value in write.values.items():
                set_committed_value(write.row, name, value)


class TaskScan:
    """One pass over a workflow's tasks: open user tasks, started service calls, status, path."""

    def __init__(self, parsed: ParsedProcess, workflow: BpmnWorkflow) -> None:
        self.parsed = parsed
        self.open_tasks: list[OpenTask] = []
        self.started: dict[str, Any] = {}
        self.completed_ids: list[str] = []
        live_status: list[Any] = []
        done_status: list[Any] = []
        completed: list[Any] = []
        info = parsed.task_info
        for task in workflow.get_tasks():
            state = task.state
            spec = task.task_spec
            has_status = bool(info.get(spec.name, {}).get("status"))
            if state == TaskState.COMPLETED:
                completed.append(task)
                if has_status:
                    done_status.append(task)
            elif state & (TaskState.READY | TaskState.STARTED | TaskState.WAITING | TaskState.ERROR):
                if has_status:
                    live_status.append(task)
                if state == TaskState.READY and spec.manual:
                    meta = info.get(spec.name, {})
                    self.open_tasks.append(OpenTask(str(task.id), spec.name, meta.get("title") or spec.name,
                                                    spec.lane or "", meta.get("form"), task.data))
                elif state == TaskState.STARTED and isinstance(spec, DeferredServiceTask):
                    self.started[str(task.id)] = task
        completed.sort(key=lambda t: t.last_state_change)
        self.completed_ids = [t.task_spec.bpmn_id for t in completed if t.task_spec.bpmn_id]
        # The newest change wins, done or live: a timer that fired beside a waiting task (a reminder that marks a
        # draft 即将截止, say) sets the status until the next step.
        self._candidates = live_status + done_status

    def status(self, previous: str) -> str:
        """Return the status label of the task with a status whose state changed last (evaluated on its data)."""
        if not self._candidates:
            return previous
        newest = max(self._candidates, key=lambda t: t.last_state_change)
        try:
            return str(evaluate(self.parsed.task_info[newest.task_spec.name]["status"], names_of(newest)))[:32]
        except ExpressionError:
            return previous


def _failure(exc: Exception, spec: Any = None) -> StepFailed:
    """Describe a failure of the engine with the element it failed at."""
    spec = getattr(exc, "task_spec", None) or spec
    return StepFailed(str(exc) or type(exc).__name__, str(getattr(spec, "bpmn_id", "") or ""),
                      str(getattr(spec, "bpmn_name", "") or ""))


def _snapshot(workflow: BpmnWorkflow) -> tuple[frozenset[str], frozenset[str]]:
    ready = frozenset(str(t.id) for t in workflow.get_tasks(state=TaskState.READY) if t.task_spec.manual)
    started = frozenset(str(t.id) for t in workflow.get_tasks(state=TaskState.STARTED)
                        if isinstance(t.task_spec, DeferredServiceTask))
    return ready, started


class _AnyLane(set):  # type: ignore[type-arg]
    """Accept every lane name (used to read a stored, already checked diagram)."""

    def __contains__(self, item: object) -> bool:
        return True


class ProcessEngine:
    """The app's single entry to SpiffWorkflow."""

    def __init__(self, lanes: Iterable[str], operations: Mapping[str, Iterable[str]], hooks: Hooks | None = None):
        self.lanes = set(lanes)
        self.operations = {k: list(v) for k, v in operations.items()}
        self.hooks = hooks or Hooks()
        self._by_version: dict[int, ParsedProcess] = {}
        self._refs: dict[int, VersionRef] = {}
        self._vocabularies: dict[int, Vocabulary] = {}

    # -- specs -----------------------------------------------------------------------------
    def parse(self, xml: str, forms: Mapping[str, Any], lanes: Iterable[str] | None = None) -> ParsedProcess:
        """Validate and parse a diagram (raises InvalidProcess); lanes default to the built-in roles."""
        return parse_process(xml, forms, lanes=self.lanes if lanes is None else set(lanes) | self.lanes,
                             operations=self.operations)

    def parsed(self, version: ProcessVersion) -> ParsedProcess:
        """Return the cached parse of a stored version."""
        hit = SPEC_CACHE.get(version.content_hash)
        if hit is not None:
            return hit
        # A stored version was checked when published; its lanes may name roles added since.
        return SPEC_CACHE.put(parse_process(version.bpmn_xml, version.forms, lanes=_AnyLane(),
                                            operations=self.operations, strict=False))

    def current_version(self, session: Session, process_key: str, province_code: str | None) -> VersionRef:
        """Return the version in force (the province's own, else the national one) with one light query."""
        def in_force() -> int | None:
            scope: Any = ProcessVersion.province_code.is_(None)
            if province_code:
                scope = or_(scope, ProcessVersion.province_code == province_code)
            return session.scalar(select(ProcessVersion.id).where(
                ProcessVersion.process_key == process_key, ProcessVersion.active.is_(True), scope)
                .order_by(ProcessVersion.province_code.is_(None), ProcessVersion.id.desc()).limit(1))

        version_id = self.hooks.remember(session, ("version in force", process_key, province_code), in_force)
        if version_id is None:
            raise EngineError(f"流程 {process_key} 尚未发布")
        ref = self._refs.get(version_id)
        if ref is None:
            row = session.get(ProcessVersion, version_id)
            assert row is not None
            ref = VersionRef(row.id, row.process_key, row.province_code, row.content_hash, dict(row.forms))
            self._refs[version_id] = ref
        return ref

    def vocabulary(self, session: Session, process_key: str, province_code: str | None) -> Vocabulary:
        """Return the statuses of the version in force for the province (read from the diagram alone when this
        process has not parsed the version: a closing job or a dashboard need no more)."""
        ref = self.current_version(session, process_key, province_code)
        parsed = self._by_version.get(ref.id) or SPEC_CACHE.get(ref.content_hash)
        if parsed is not None:
            return parsed.vocabulary
        found = self._vocabularies.get(ref.id)
        if found is None:
            xml = session.scalar(select(ProcessVersion.bpmn_xml).where(ProcessVersion.id == ref.id))
            found = self._vocabularies[ref.id] = read_vocabulary(xml or "", process_key)
        return found

    @staticmethod
    def resolve_version(session: Session, process_key: str, province_code: str | None) -> ProcessVersion:
        """Return the version in force: the province's own, else the national one."""
        for scope in ([province_code] if province_code else []) + [None]:
            stmt = select(ProcessVersion).where(
                ProcessVersion.process_key == process_key, ProcessVersion.active.is_(True),
                ProcessVersion.province_code.is_(None) if scope is None else ProcessVersion.province_code == scope,
            ).order_by(ProcessVersion.id.desc()).limit(1)
            found = session.scalars(stmt).first()
            if found is not None:
                return found
        raise EngineError(f"流程 {process_key} 尚未发布")

    # -- instances -------------------------------------------------------------------------
    def start(self, session: Session, process_key: str, *, subject_type: str, subject_id: int,
              province_code: str | None, city_code: str | None = None, school_id: int | None = None,
              data: Mapping[str, Any] | None = None, shared: Mapping[str, Any] | None = None,
              first_step: tuple[str, Mapping[str, Any]] | None = None,
              side: SideWrites | None = None) -> StepOutcome:
        """Start an instance of the process in force for the province and run it to its first wait.

        data: each task's data at the start; shared: data every expression of the instance reads but no task
        changes (the plan's times), kept once per instance. first_step (lane, data) also completes the first user
        task of that lane before anything is saved: a declaration created and submitted in one request costs one
        save, not two. side: see SideWrites.
        """
        version = self.current_version(session, process_key, province_code)
        parsed = self._parsed_by_id(session, version.id)
        workflow = BpmnWorkflow(parsed.spec, parsed.subprocess_specs, script_engine=SAFE_ENGINE)
        workflow._xpilot_before = (frozenset(), frozenset())  # type: ignore[attr-defined]
        workflow.data.update(copy.deepcopy(dict(shared or {})))
        workflow.task_tree.data.update(copy.deepcopy(dict(data or {})))
        for task in workflow.task_tree.children:
            task.data.update(copy.deepcopy(dict(data or {})))
        try:
            try:
                self._run_engine(workflow)
                if first_step is not None:
                    self._complete_ready(workflow, *first_step)
            except (WorkflowException, ExpressionError) as exc:
                raise _failure(exc) from exc
        except StepFailed as failure:
            self._incident_later(session, failure, "开始" if first_step is None else "开始并办理",
                                 version_id=version.id, process_key=process_key, province_code=province_code)
            raise
        now = clock.now()
        values = {"version_id": version.id, "process_key": process_key, "province_code": province_code,
                  "city_code": city_code, "school_id": school_id, "subject_type": subject_type,
                  "subject_id": subject_id, "state": "{}", "path": [], "status": "", "completed": False,
                  "lock_version": 0, "next_wake_at": None, "created_at": now, "updated_at": now}
        instance = rowwrites.insert_loaded(session, ProcessInstance, values)
        self.hold(session, instance)  # nobody else can see the row before this transaction commits
        return self._save(session, instance, parsed, workflow, actor_id=None, side=side)

    def lock(self, session: Session, instance_id: int) -> ProcessInstance:
        """Load the instance row under a write lock for a load-act-save.

        The lock lasts until the transaction ends, so a second lock of the same instance in the same
        transaction returns the row already held instead of asking the database again.
        """
        instance = held(session, HELD_INSTANCES, instance_id) or self._lock_where(session, instance_id)
        if instance is None:
            raise EngineError("流程实例不存在")
        return instance

    def lock_of_call(self, session: Session, call_id: int) -> ServiceCall | None:
        """Lock the instance a service call belongs to and return the call, in one statement (None: no such call)."""
        row = session.execute(_CALL_AND_LOCK, {"call_id": call_id}).first()
        if row is None:
            return None
        call, instance = row
        self.hold(session, instance)
        return call  # type: ignore[no-any-return]

    @staticmethod
    def hold(session: Session, instance: ProcessInstance) -> None:
        """Record an instance row the caller read fresh under a write lock in a statement of its own (SELECT ...
        FOR UPDATE OF process_instance, populate_existing), so that steps in this transaction use it as locked."""
        hold(session, HELD_INSTANCES, instance.id, instance)

    def _lock_where(self, session: Session, instance_id: Any) -> ProcessInstance | None:
        instance = session.scalars(_LOCK, {"instance_id": instance_id}).first()
        if instance is not None:
            self.hold(session, instance)
        return instance

    def _parsed_by_id(self, session: Session, version_id: int) -> ParsedProcess:
        parsed = self._by_version.get(version_id)
        if parsed is None:
            version = session.get(ProcessVersion, version_id)
            assert version is not None
            parsed = self.parsed(version)
            self._by_version[version_id] = parsed
        return parsed

    @staticmethod
    def _complete_ready(workflow: BpmnWorkflow, lane: str, data: Mapping[str, Any]) -> None:
        ready = [t for t in workflow.get_tasks(state=TaskState.READY, manual=True) if t.task_spec.lane == lane]
        if not ready:
            raise TaskNotAvailable("流程开始后没有等待该角色处理的任务")
        ready[0].data.update(copy.deepcopy(dict(data)))
        ready[0].run()
        ProcessEngine._run_engine(workflow)

    def load(self, session: Session, instance: ProcessInstance) -> tuple[ParsedProcess, BpmnWorkflow]:
        """Restore the workflow of an instance row (versions never change, so their parse is kept by id)."""
        parsed = self._parsed_by_id(session, instance.version_id)
        workflow = load_state(parsed, instance.state)
        workflow._xpilot_before = _snapshot(workflow)  # type: ignore[attr-defined]
        return parsed, workflow

    def open_tasks(self, session: Session, instance_id: int) -> list[OpenTask]:
        """Return the READY user tasks of an instance (read only)."""
        instance = session.get(ProcessInstance, instance_id)
        if instance is None:
            return []
        parsed, workflow = self.load(session, instance)
        return TaskScan(parsed, workflow).open_tasks

    def complete_task(self, session: Session, instance_id: int, task_id: str, *, actor_id: int | None,
                      lanes: Iterable[str], data: Mapping[str, Any], side: SideWrites | None = None) -> StepOutcome:
        """Complete a READY user task in one of the actor's lanes with the submitted data (side: see SideWrites)."""
        instance = self.lock(session, instance_id)
        if instance.completed:
            raise TaskNotAvailable(f"该事项已结束（{instance.status}）")
        parsed, workflow = self.load(session, instance)
        try:
            task = workflow.get_task_from_id(UUID(task_id))
        except (ValueError, WorkflowException, KeyError):
            task = None
        if task is None or task.state != TaskState.READY or not isinstance(task.task_spec, UserTask):
            raise TaskNotAvailable("该事项已被处理或已不在待办中，请刷新页面查看最新状态")
        if task.task_spec.lane not in set(lanes):
            raise TaskNotAvailable("无权处理该事项")
        # Replace values rather than deep-merge: a resubmission with fewer items must not keep old ones.
        task.data.update(copy.deepcopy(dict(data)))
        try:
            task.run()
            self._run_engine(workflow)
        except (WorkflowException, ExpressionError) as exc:
            failure = _failure(exc, task.task_spec)
            self._failed(session, failure, f"办理“{parsed.task_info.get(task.task_spec.name, {}).get('title', '')}”",
                         instance)
            raise failure from exc
        except StepFailed as failure:
            self._failed(session, failure, f"办理“{parsed.task_info.get(task.task_spec.name, {}).get('title', '')}”",
                         instance)
            raise
        return self._save(session, instance, parsed, workflow, actor_id=actor_id, side=side)

    def complete_service(self, session: Session, call: ServiceCall, result: Mapping[str, Any]) -> bool:
        """Complete a STARTED service task with its result and mark its call done; return False if it no longer
        waits (the call is left as it is)."""
        instance = self.lock(session, call.instance_id)
        if instance.completed:
            return False
        parsed, workflow = self.load(session, instance)
        try:
            task = workflow.get_task_from_id(UUID(call.task_id))
        except (WorkflowException, KeyError):
            task = None
        if task is None or task.state != TaskState.STARTED:
            return False
        spec = task.task_spec
        task.data[spec.result_variable] = copy.deepcopy(dict(result))
        task.complete()
        try:
            self._run_engine(workflow)
        except StepFailed as failure:
            self._failed(session, failure, f"服务任务“{spec.bpmn_name or spec.name}”完成后", instance)
            raise
        # The call's own row is written with the step as done (rather than closed as a call that stopped waiting).
        open_before, calls_before = workflow._xpilot_before  # type: ignore[attr-defined]
        workflow._xpilot_before = (open_before, calls_before - {call.task_id})  # type: ignore[attr-defined]
        done = {"status": "done", "attempts": call.attempts + 1, "result": copy.deepcopy(dict(result)),
                "updated_at": clock.now()}
        self._save(session, instance, parsed, workflow, actor_id=None, own=[Change(call, done)])
        return True

    def wake(self, session: Session, instance_id: int) -> StepOutcome | None:
        """Fire due timers of an instance; a finished instance is left alone."""
        instance = self.lock(session, instance_id)
        if instance.completed:
            return None
        parsed, workflow = self.load(session, instance)
        try:
            workflow.refresh_timers()
            self._run_engine(workflow)
        except (WorkflowException, ExpressionError) as exc:
            failure = _failure(exc)
            self._failed(session, failure, "定时器到时", instance, park=True)
            raise failure from exc
        except StepFailed as failure:
            self._failed(session, failure, "定时器到时", instance, park=True)
            raise
        return self._save(session, instance, parsed, workflow, actor_id=None)

    def read_data(self, session: Session, instance_id: int) -> dict[str, Any]:
        """Return the data of the newest task of an instance (read only)."""
        instance = session.get(ProcessInstance, instance_id)
        if instance is None:
            return {}
        _, workflow = self.load(session, instance)
        return dict(workflow.last_task.data) if workflow.last_task is not None else dict(workflow.data)

    def update_waiting(self, session: Session, instance_id: int, data: Mapping[str, Any]) -> bool:
        """Replace values of an instance's data (so later steps see them): its shared data, and the live tasks' own
        copies of these names; then recompute the waiting date timers from the new data (a deadline moved moves
        every timer set from it)."""
        instance = self.lock(session, instance_id)
        if instance.completed:
            return False
        parsed, workflow = self.load(session, instance)
        workflow.data.update(copy.deepcopy(dict(data)))
        live = TaskState.READY | TaskState.WAITING | TaskState.FUTURE | TaskState.LIKELY | TaskState.MAYBE
        for task in workflow.get_tasks(state=live):
            task.data.update(copy.deepcopy({k: v for k, v in data.items() if k in task.data}))
            event = getattr(task.task_spec, "event_definition", None)
            if task.state == TaskState.WAITING and isinstance(event, TimeDateEventDefinition):
                try:
                    task._set_internal_data(event_value=workflow.script_engine.evaluate(task, event.expression))
                except (WorkflowException, ExpressionError) as exc:
                    failure = _failure(exc, task.task_spec)
                    self._failed(session, failure, "更新数据后重算定时器", instance)
                    raise failure from exc
        self._save(session, instance, parsed, workflow, actor_id=None)
        return True

    @staticmethod
    def terminate_many(session: Session, instance_ids: list[int], status: str) -> int:
        """End many instances at once without loading them (bulk expiry at a deadline); return how many.

        The instances are marked completed with the given status and their open tasks and calls closed;
        the engine never acts on a completed instance again.
        """
        if not instance_ids:
            return 0
        now = clock.now()
        total = 0
        for start in range(0, len(instance_ids), 500):
            chunk = instance_ids[start:start + 500]
            total += session.execute(update(ProcessInstance).where(  # type: ignore[attr-defined]
                ProcessInstance.id.in_(chunk), ProcessInstance.completed.is_(False)).values(
                completed=True, status=status, updated_at=now, next_wake_at=None,
                lock_version=ProcessInstance.lock_version + 1)).rowcount or 0
            session.execute(update(HumanTask).where(HumanTask.instance_id.in_(chunk),
                                                    HumanTask.completed_at.is_(None)).values(completed_at=now))
            session.execute(update(ServiceCall).where(ServiceCall.instance_id.in_(chunk),
                                                      ServiceCall.status == "pending").values(status="cancelled"))
        return total

    def cancel(self, session: Session, instance_id: int) -> None:
        """Cancel an instance and close its open tasks and calls."""
        instance = self.lock(session, instance_id)
        parsed, workflow = self.load(session, instance)
        workflow.cancel()
        self._save(session, instance, parsed, workflow, actor_id=None)

    def save(self, session: Session, instance: ProcessInstance, parsed: ParsedProcess, workflow: BpmnWorkflow) -> StepOutcome:
        """Save a workflow changed outside a step (a migration) and bring the task tables in line."""
        return self._save(session, instance, parsed, workflow, actor_id=None)

    @staticmethod
    def element_states(workflow: BpmnWorkflow) -> tuple[list[str], list[str]]:
        """Return the BPMN ids of elements completed and of those waiting now."""
        done = [t.task_spec.bpmn_id for t in workflow.get_tasks(state=TaskState.COMPLETED) if t.task_spec.bpmn_id]
        live = TaskState.READY | TaskState.STARTED | TaskState.WAITING | TaskState.ERROR
        current = [t.task_spec.bpmn_id for t in workflow.get_tasks(state=live) if t.task_spec.bpmn_id]
        return sorted(set(done)), sorted(set(current))

    # -- internals -------------------------------------------------------------------------
    @staticmethod
    def _run_engine(workflow: BpmnWorkflow) -> None:
        try:
            workflow.do_engine_steps()
        except (WorkflowException, ExpressionError) as exc:
            raise _failure(exc) from exc

    @staticmethod
    def _incident_later(session: Session, failure: StepFailed, action: str, *, version_id: int, process_key: str,
                        province_code: str | None, instance_id: int | None = None, park: bool = False) -> None:
        """Record a failed step once the request or job is over (its own transaction rolls back).

        park: the instance's due timers failed: stop waking it (a wake would fail again) until a step or a migration
        saves it anew.
        """
        bind = session.get_bind()
        now = clock.now()

        def record() -> None:
            with Session(bind=bind) as own, own.begin():
                same = own.scalars(select(ProcessIncident).where(
                    ProcessIncident.instance_id.is_(None) if instance_id is None
                    else ProcessIncident.instance_id == instance_id,
                    ProcessIncident.version_id == version_id, ProcessIncident.element_id == failure.element_id,
                    ProcessIncident.error == failure.error, ProcessIncident.resolved_at.is_(None)).limit(1)).first()
                if same is not None:
                    same.occurrences += 1
                    same.last_at = now
                else:
                    own.add(ProcessIncident(instance_id=instance_id, version_id=version_id, process_key=process_key,
                                            province_code=province_code, element_id=failure.element_id,
                                            element_name=failure.element_name, action=action,
                                            error=failure.error[:4000], first_at=now, last_at=now))
                if park and instance_id is not None:
                    own.execute(update(ProcessInstance).where(ProcessInstance.id == instance_id)
                                .values(next_wake_at=None))
        after_end(session, record)

    def _failed(self, session: Session, failure: StepFailed, action: str, instance: ProcessInstance,
                park: bool = False) -> None:
        self._incident_later(session, failure, action, version_id=instance.version_id,
                             process_key=instance.process_key, province_code=instance.province_code,
                             instance_id=instance.id, park=park)


    def _save(self, session: Session, instance: ProcessInstance, parsed: ParsedProcess, workflow: BpmnWorkflow,
              *, actor_id: int | None, side: SideWrites | None = None,
              own: list[SubjectWrite] | None = None) -> StepOutcome:
        now = clock.now()
        scan = TaskScan(parsed, workflow)
        known = set(instance.path or [])
        fresh = [bpmn_id for bpmn_id in scan.completed_ids if bpmn_id not in known]
        previous_status = instance.status
        status = scan.status(previous_status)
        compact(workflow)
        # The new column values are written below and then shown on the instance as saved (set_committed_value),
        # never set as changes: the unit of work has nothing to flush for the instance afterwards.
        values = {"state": dump_state(workflow), "status": status,
                  "completed": workflow.is_completed(), "lock_version": instance.lock_version + 1, "updated_at": now,
                  "next_wake_at": self._schedule_timers(session, instance.id, workflow),
                  "path": list(instance.path or []) + list(dict.fromkeys(fresh)) if fresh else instance.path}
        data = dict(workflow.last_task.data) if workflow.last_task is not None else {}
        outcome = StepOutcome(instance.id, values["status"], values["completed"], scan.open_tasks, data,
                              parsed.vocabulary.meaning_of(status))
        before = getattr(workflow, "_xpilot_before", None)
        if before is None:
            open_before = self._open_task_ids(session, instance)
            calls_before = self._call_task_ids(session, instance)
        else:
            open_before, calls_before = before
        writes = self._human_task_writes(instance, values["status"], scan.open_tasks, open_before, actor_id, now,
                                         before is None or previous_status != values["status"])
        writes += self._service_call_writes(instance, scan.started, calls_before, now)
        writes += self._new_service_calls(session, instance,
                                          {k: v for k, v in scan.started.items() if k not in calls_before}, now)
        subject: list[SubjectWrite] = list(own or [])  # own: the engine's writes of the step (a call done)
        if side is not None:
            subject += side(outcome)
        elif previous_status != values["status"] or open_before != {t.task_id for t in scan.open_tasks}:
            subject += self.hooks.followed(instance.subject_type, instance.subject_id, outcome, previous_status)
        self._write(session, instance, values, writes + _row_writes(subject))
        _show_saved(subject)
        workflow._xpilot_before = (frozenset(t.task_id for t in scan.open_tasks), frozenset(scan.started))  # type: ignore[attr-defined]
        return outcome

    @staticmethod
    def _write(session: Session, instance: ProcessInstance, values: dict[str, Any], writes: list[RowWrite]) -> None:
        """Write the instance row and the step's other rows (task tables, the caller's side writes).

        On PostgreSQL all of it goes in one statement (the other rows as data-modifying CTEs of the instance
        UPDATE), so a step costs the same round trips as a plain row update: lock, write, commit.
        """
        table = cast(Table, ProcessInstance.__table__)
        rowwrites.execute(session.connection(), writes, head=RowWrite(table, values, {"id": instance.id}))
        for name, value in values.items():
            set_committed_value(instance, name, value)

    @staticmethod
    def _new_human_task(instance: ProcessInstance, status: str, task: OpenTask, now: datetime) -> dict[str, Any]:
        due = task.data.get("due_at")
        return {"instance_id": instance.id, "task_id": task.task_id, "task_name": task.name, "title": task.title,
                "lane": task.lane, "province_code": instance.province_code, "city_code": instance.city_code,
                "school_id": instance.school_id, "subject_type": instance.subject_type,
                "subject_id": instance.subject_id, "form": task.form, "status_label": status,
                "created_at": now, "due_at": datetime.fromisoformat(due) if isinstance(due, str) else None}

    def _human_task_writes(self, instance: ProcessInstance, status: str, open_tasks: list[OpenTask],
                           before: frozenset[str], actor_id: int | None, now: datetime,
                           status_changed: bool) -> list[RowWrite]:
        """Return the writes that bring human_task rows in line with the step, without reading them."""
        table = cast(Table, HumanTask.__table__)
        after = {t.task_id for t in open_tasks}
        writes = [RowWrite(table, {"completed_at": now, "completed_by_id": actor_id},
                           {"instance_id": instance.id, "task_id": task_id}, "open")
                  for task_id in sorted(before - after)]
        if status_changed:
            writes.extend(RowWrite(table, {"status_label": status},
                                   {"instance_id": instance.id, "task_id": task_id}, "open")
                          for task_id in sorted(before & after))
        writes.extend(RowWrite(table, self._new_human_task(instance, status, t, now))
                      for t in open_tasks if t.task_id not in before)
        return writes

    @staticmethod
    def _open_task_ids(session: Session, instance: ProcessInstance) -> frozenset[str]:
        """The open human_task rows of an instance (read when a workflow changed outside a step)."""
        return frozenset(session.scalars(select(HumanTask.task_id).where(
            HumanTask.instance_id == instance.id, HumanTask.completed_at.is_(None))).all())

    @staticmethod
    def _call_task_ids(session: Session, instance: ProcessInstance) -> frozenset[str]:
        return frozenset(session.scalars(select(ServiceCall.task_id).where(
            ServiceCall.instance_id == instance.id, ServiceCall.status.in_(("pending", "failed", "done")))).all())

    @staticmethod
    def _service_call_writes(instance: ProcessInstance, started: dict[str, Any], before: frozenset[str],
                             now: datetime) -> list[RowWrite]:
        """Return the writes that close the calls of service tasks that no longer wait."""
        table = cast(Table, ServiceCall.__table__)
        return [RowWrite(table, {"status": "cancelled", "updated_at": now},
                         {"instance_id": instance.id, "task_id": task_id}, "live call")
                for task_id in sorted(before - set(started))]

    def _new_service_calls(self, session: Session, instance: ProcessInstance, started: dict[str, Any],
                           now: datetime) -> list[RowWrite]:
        """Return the INSERTs of the calls of newly started service tasks; the worker is told after the commit."""
        table = cast(Table, ServiceCall.__table__)
        writes = []
        for task_id, task in started.items():
            call = task._get_internal_data("service_call") or {}
            spec = task.task_spec
            retries = int(spec.retries) if str(spec.retries or "").isdigit() else 3
            writes.append(RowWrite(table, {
                "instance_id": instance.id, "task_id": task_id, "task_name": spec.name,
                "operation": call.get("operation", spec.operation_name), "params": call.get("params", {}),
                "status": "pending", "attempts": 0, "max_retries": retries, "created_at": now, "updated_at": now}))
        if writes:
            after_commit(session, self.hooks.service_calls_ready)
        return writes

    def _schedule_timers(self, session: Session, instance_id: int, workflow: BpmnWorkflow) -> datetime | None:
        """Return when the instance's earliest waiting timer is due (None: none waits); its wake job is scheduled
        after the commit."""
        due: list[datetime] = []
        for event in workflow.waiting_events():
            value = event.value
            if isinstance(value, str):
                try:
                    due.append(datetime.fromisoformat(value))
                except ValueError:
                    continue
        at = min(due) if due else None
        if at is not None:
            after_commit(session, lambda: self.hooks.schedule_wake(instance_id, at))
        return at


__all__ = ["Change", "EngineError", "Hooks", "Insert", "InvalidProcess", "OpenTask", "ProcessEngine", "StepFailed",
           "StepOutcome", "SubjectWrite", "TaskNotAvailable"]
