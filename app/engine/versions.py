"""Compare process versions, try a draft in memory, and move waiting instances to a new version."""
from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from SpiffWorkflow.bpmn.util.diff import SpecDiff, diff_workflow, migrate_workflow
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.specs.defaults import UserTask
from SpiffWorkflow.util.task import TaskState

from app.engine.runtime import TaskScan
from app.engine.script_engine import SAFE_ENGINE
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


@dataclass
class DryRunStep:
    """One step of a dry run: what was done, the path it took, and what a school would see."""

    action: str
    path: list[str]
    status: str
    waiting_for: list[str]
    error: str = ""


def run_to_wait(workflow: BpmnWorkflow, max_steps: int = 50) -> None:
    """Run a workflow in memory until it waits for a person or a timer; service tasks succeed at once."""
    workflow.do_engine_steps()
    for _ in range(max_steps):
        started = [t for t in workflow.get_tasks(state=TaskState.STARTED) if isinstance(t.task_spec, DeferredServiceTask)]
        if not started:
            break
        for task in started:
            task.data[task.task_spec.result_variable] = {"dry_run": True}
            task.complete()
        workflow.do_engine_steps()


def dry_run(parsed: ParsedProcess, start_data: Mapping[str, Any], steps: Iterable[tuple[str, Mapping[str, Any]]],
            max_steps: int = 50) -> list[DryRunStep]:
    """Run a draft version in memory through a scenario of (lane, data) steps; service tasks succeed at once."""
    workflow = BpmnWorkflow(parsed.spec, parsed.subprocess_specs, script_engine=SAFE_ENGINE)
    workflow.task_tree.data.update(copy.deepcopy(dict(start_data)))
    for task in workflow.task_tree.children:
        task.data.update(copy.deepcopy(dict(start_data)))
    results: list[DryRunStep] = []
    seen: set[Any] = set()

    def advance(label: str) -> None:
        try:
            run_to_wait(workflow, max_steps)
            error = ""
        except Exception as exc:  # the analyst needs to see any engine failure of the draft
            error = f"{type(exc).__name__}: {exc}"
        path = []
        for task in sorted(workflow.get_tasks(state=TaskState.COMPLETED), key=lambda t: t.last_state_change):
            if task.id not in seen and _visible(task.task_spec.name) and task.task_spec.bpmn_id:
                seen.add(task.id)
                path.append(_title(parsed, task.task_spec.name))
        waiting = [f"{_title(parsed, t.task_spec.name)}（{t.task_spec.lane}）"
                   for t in workflow.get_tasks(state=TaskState.READY, manual=True)]
        results.append(DryRunStep(label, path, _status(parsed, workflow), waiting, error))

    advance("开始")
    for lane, data in steps:
        ready = [t for t in workflow.get_tasks(state=TaskState.READY, manual=True)
                 if isinstance(t.task_spec, UserTask) and t.task_spec.lane == lane]
        if not ready:
            results.append(DryRunStep(f"{lane}：{dict(data)}", [], _status(parsed, workflow), [],
                                      f"此时没有等待“{lane}”处理的任务"))
            break
        # A scenario names the choices that matter; the form's other required fields get plausible values.
        schema = parsed.forms.get(parsed.task_info.get(ready[0].task_spec.name, {}).get("form") or "") or {}
        props = schema.get("properties") or {}
        filled = {n: sample_value(props[n]) for n in schema.get("required") or []
                  if n in props and n not in data and n not in ready[0].data}
        ready[0].data.update(copy.deepcopy({**filled, **dict(data)}))
        ready[0].run()
        advance(f"{lane}：{_describe(data)}")
        if results[-1].error:
            break
    return results


def sample_value(prop: Mapping[str, Any]) -> Any:
    """Return a plausible value for a form field from its schema."""
    if "enum" in prop:
        return prop["enum"][0]
    kind = prop.get("type")
    if kind == "integer":
        return int(prop.get("minimum", 1))
    if kind == "number":
        return float(prop.get("minimum", 1))
    if kind == "boolean":
        return True
    if prop.get("format") == "date":
        return "2026-09-01"
    if kind == "array":
        item = prop.get("items") or {}
        return [sample_value(item)] if item else []
    return "试运行" * max(1, -(-int(prop.get("minLength", 0)) // 3))


def _describe(data: Mapping[str, Any]) -> str:
    decision = data.get("decision")
    return f"审核结论 {decision}" if decision else "提交"


def _status(parsed: ParsedProcess, workflow: BpmnWorkflow) -> str:
    return TaskScan(parsed, workflow).status("")
