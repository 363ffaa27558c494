"""Compare process versions, run a draft in memory, and move waiting instances to a new version."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from SpiffWorkflow.bpmn.util.diff import SpecDiff, diff_workflow, migrate_workflow
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from app.engine.service_task import DeferredServiceTask
from app.engine.specs import ParsedProcess
from app.engine.state import SERIALIZER

_INTERNAL = ("Start", "End", "EndJoin", "Root")
_FIELD_LABELS = {"lane": "泳道/角色", "extensions": "属性（表单/状态/服务参数）", "operation_params": "服务参数",
                 "operation_name": "服务操作", "cond_task_specs": "条件", "outputs": "后续流向", "inputs": "前序流向",
                 "bpmn_name": "名称", "event_definition": "事件定义", "default_task_spec": "默认流向"}


@dataclass
class TaskChange:
    """One task spec that differs between two versions."""

    task_id: str
    title: str
    fields: list[str] = field(default_factory=list)


@dataclass
class VersionDiff:
    """Tasks added, removed and changed from one version to another."""

    added: list[TaskChange]
    removed: list[TaskChange]
    changed: list[TaskChange]

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def _visible(name: str) -> bool:
    return not any(name == n or name.endswith("." + n) for n in _INTERNAL)


def _title(parsed: ParsedProcess, name: str) -> str:
    return str(parsed.task_info.get(name, {}).get("title") or name)


def diff_versions(old: ParsedProcess, new: ParsedProcess) -> VersionDiff:
    """Return what changed from old to new, by task."""
    spec_diff = SpecDiff(SERIALIZER.registry, old.spec, new.spec)
    added = [TaskChange(ts.name, _title(new, ts.name)) for ts in spec_diff.added if _visible(ts.name)]
    removed = [TaskChange(ts.name, _title(old, ts.name)) for ts in spec_diff.removed if _visible(ts.name)]
    changed = [TaskChange(ts.name, _title(old, ts.name), [_FIELD_LABELS.get(f, f) for f in fields])
               for ts, fields in spec_diff.changed.items() if _visible(ts.name)]
    return VersionDiff(added, removed, changed)


def migration_blockers(workflow: BpmnWorkflow, new: ParsedProcess) -> tuple[Any, list[str]]:
    """Return the workflow diff and the reasons an instance cannot move to the new version (empty if it can)."""
    top_diff, sub_diffs = diff_workflow(SERIALIZER.registry, workflow, new.spec, new.subprocess_specs)
    reasons = []
    if any(d is None for d in sub_diffs.values()):
        reasons.append("子流程在新版本中不存在")
    for task in top_diff.changed:
        # A task waiting to run (READY/WAITING) picks up its new definition; one that ran or runs cannot.
        if task.has_state(TaskState.COMPLETED | TaskState.STARTED | TaskState.ERROR) and task.task_spec.bpmn_id:
            reasons.append(f"已执行或正在执行的任务“{task.task_spec.bpmn_name or task.task_spec.name}”在新版本中被修改")
    for task in top_diff.removed:
        if not task.has_state(TaskState.PREDICTED_MASK | TaskState.CANCELLED):
            reasons.append(f"任务“{task.task_spec.bpmn_name or task.task_spec.name}”已执行或正在执行，但在新版本中被删除")
    return top_diff, sorted(set(reasons))


def migrate(workflow: BpmnWorkflow, new: ParsedProcess, top_diff: Any) -> None:
    """Move a workflow onto the new spec (callers check migration_blockers first)."""
    migrate_workflow(top_diff, workflow, new.spec)
    workflow.subprocess_specs = new.subprocess_specs
    workflow.do_engine_steps()


def run_to_wait(workflow: BpmnWorkflow, max_steps: int = 50, on_call: Callable[[Any], None] | None = None) -> None:
    """Run a workflow in memory until it waits for a person or a timer; service tasks succeed at once.

    on_call(task): told of each service task before it completes (its evaluated call is in its internal data).
    """
    workflow.do_engine_steps()
    for _ in range(max_steps):
        started = [t for t in workflow.get_tasks(state=TaskState.STARTED) if isinstance(t.task_spec, DeferredServiceTask)]
        if not started:
            break
        for task in started:
            if on_call is not None:
                on_call(task)
            task.data[task.task_spec.result_variable] = {"dry_run": True}
            task.complete()
        workflow.do_engine_steps()
