"""Play a scenario on a draft in memory: do user tasks with given form values, fire timers, and record at each step
the path taken, the status, the service calls that would be made (text messages among them) and the data."""
from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.specs.defaults import UserTask
from SpiffWorkflow.util.task import TaskState

from app.engine.runtime import TaskScan
from app.engine.script_engine import SAFE_ENGINE
from app.engine.specs import ParsedProcess
from app.engine.versions import run_to_wait

TASK, TIMER, DEADLINE = "task", "timer", "deadline"
ANY_REVIEW = "*review"  # a lane wildcard of the built-in scenarios: each waiting review stage, in diagram order
MAX_DATA_CHARS = 4000


@dataclass(frozen=True)
class Move:
    """One step of a scenario: do a user task (by element id, or by lane) with form values, or fire a timer (by
    element id), or let every waiting timer fire (the deadline passes)."""

    kind: str
    target: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)
    by_lane: bool = False
    label: str = ""


@dataclass
class Call:
    """A service call the step would make: the element, its operation and its evaluated parameters."""

    element_id: str
    element_name: str
    operation: str
    params: dict[str, Any]


@dataclass
class Played:
    """What one step did: the path it took, the status after it, what waits, the calls it made, the data."""

    action: str
    path: list[str]
    status: str
    waiting_for: list[str]
    calls: list[Call] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    element_id: str = ""


@dataclass
class Outline:
    """What a scenario of a draft can name: its user tasks (with their lane and form) and its timers."""

    tasks: list[dict[str, Any]]
    timers: list[dict[str, str]]


def outline(parsed: ParsedProcess) -> Outline:
    """Return the user tasks and timers of a draft, in diagram order."""
    tasks, timers = [], []
    for spec in _walk(parsed.spec):
        if isinstance(spec, UserTask):
            info = parsed.task_info.get(spec.name, {})
            tasks.append({"id": spec.bpmn_id or spec.name, "title": str(info.get("title") or spec.name),
                          "lane": spec.lane or "", "form": info.get("form") or ""})
        elif isinstance(getattr(spec, "event_definition", None), TimerEventDefinition) and spec.bpmn_id:
            timers.append({"id": spec.bpmn_id, "title": spec.bpmn_name or spec.bpmn_id})
    return Outline(tasks, timers)


def lane_order(parsed: ParsedProcess) -> list[str]:
    """Return the lanes of the draft's user tasks in diagram order."""
    order: list[str] = []
    for spec in _walk(parsed.spec):
        if isinstance(spec, UserTask) and spec.lane and spec.lane not in order:
            order.append(spec.lane)
    return order


def play(parsed: ParsedProcess, start_data: Mapping[str, Any], moves: Sequence[Move],
         fill: Callable[[str, Mapping[str, Any]], dict[str, Any]] | None = None) -> list[Played]:
    """Run a draft in memory through the moves; stop at the first that cannot be done or that fails.

    fill(task element id, values): the data a task completes with (the form's values with what the app adds).
    """
    workflow = BpmnWorkflow(parsed.spec, parsed.subprocess_specs, script_engine=SAFE_ENGINE)
    workflow.task_tree.data.update(copy.deepcopy(dict(start_data)))
    for task in workflow.task_tree.children:
        task.data.update(copy.deepcopy(dict(start_data)))
    results: list[Played] = []
    seen: set[Any] = set()
    status = [""]

    def advance(label: str) -> Played:
        calls: list[Call] = []

        def record(task: Any) -> None:
            call = task._get_internal_data("service_call") or {}
            calls.append(Call(task.task_spec.bpmn_id or task.task_spec.name, _title(parsed, task.task_spec.name),
                              str(call.get("operation") or task.task_spec.operation_name),
                              dict(call.get("params") or {})))
        error, element_id = "", ""
        try:
            run_to_wait(workflow, on_call=record)
        except Exception as exc:  # the analyst needs to see any engine failure of the draft, with its element
            error = f"{type(exc).__name__}: {exc}"
            element_id = getattr(getattr(exc, "task_spec", None), "bpmn_id", "") or ""
        path = []
        for task in sorted(workflow.get_tasks(state=TaskState.COMPLETED), key=lambda t: t.last_state_change):
            if task.id not in seen and task.task_spec.bpmn_id and not _internal(task.task_spec.name):
                seen.add(task.id)
                path.append(_title(parsed, task.task_spec.name))
        status[0] = TaskScan(parsed, workflow).status(status[0])
        waiting = [f"{_title(parsed, t.task_spec.name)}（{t.task_spec.lane}）"
                   for t in workflow.get_tasks(state=TaskState.READY, manual=True)]
        played = Played(label, path, status[0], waiting, calls, _data(workflow), error, element_id)
        results.append(played)
        return played

    if advance("开始").error:
        return results
    for move in moves:
        refusal = _do(parsed, workflow, move, fill)
        if refusal:
            results.append(Played(move.label, [], status[0], [], error=refusal))
            break
        if advance(move.label).error:
            break
    return results


def _do(parsed: ParsedProcess, workflow: BpmnWorkflow, move: Move,
        fill: Callable[[str, Mapping[str, Any]], dict[str, Any]] | None) -> str:
    """Do one move; return why it cannot be done (empty if done)."""
    if move.kind == TASK:
        ready = [t for t in workflow.get_tasks(state=TaskState.READY, manual=True) if isinstance(t.task_spec, UserTask)
                 and (t.task_spec.lane == move.target if move.by_lane else
                      move.target in (t.task_spec.bpmn_id, t.task_spec.name))]
        if not ready:
            waiting = [_title(parsed, t.task_spec.name) for t in workflow.get_tasks(state=TaskState.READY, manual=True)]
            what = f"泳道“{move.target}”的任务" if move.by_lane else f"“{_title(parsed, move.target)}”"
            return (f"此时没有等待办理的{what}（等待办理的是：{'、'.join(waiting)}）" if waiting
                    else f"此时没有等待办理的{what}：流程已结束或只在等待定时器")
        task = ready[0]
        values = fill(task.task_spec.bpmn_id or task.task_spec.name, move.values) if fill else dict(move.values)
        task.data.update(copy.deepcopy(values))
        try:
            task.run()
        except Exception as exc:  # a failing condition or status expression after the task, shown as the step's error
            return f"{type(exc).__name__}: {exc}"
        return ""
    timers = [t for t in workflow.get_tasks(state=TaskState.WAITING)
              if isinstance(getattr(t.task_spec, "event_definition", None), TimerEventDefinition)
              and (move.kind == DEADLINE or t.task_spec.bpmn_id == move.target)]
    if not timers:
        waiting = [t.task_spec.bpmn_name or t.task_spec.bpmn_id for t in workflow.get_tasks(state=TaskState.WAITING)
                   if isinstance(getattr(t.task_spec, "event_definition", None), TimerEventDefinition)]
        what = "定时器" if move.kind == DEADLINE else f"定时器“{_title(parsed, move.target)}”"
        return f"此时没有在等待的{what}" + (f"（在等待的定时器：{'、'.join(waiting)}）" if waiting else "")
    for timer in timers:
        timer._set_internal_data(event_fired=True)
    workflow.refresh_timers()
    return ""


def _data(workflow: BpmnWorkflow) -> dict[str, Any]:
    """Return the instance's data after a step: the newest live task's data over the shared data, JSON-safe."""
    live = workflow.get_tasks(state=TaskState.READY | TaskState.WAITING | TaskState.STARTED)
    done = workflow.get_tasks(state=TaskState.COMPLETED)
    newest = max(live or done or [workflow.task_tree], key=lambda t: t.last_state_change)
    merged = {**workflow.data, **newest.data}
    safe = json.loads(json.dumps(merged, ensure_ascii=False, default=str))
    return {k: v for k, v in sorted(safe.items()) if len(json.dumps(v, ensure_ascii=False)) <= MAX_DATA_CHARS}


def _title(parsed: ParsedProcess, name: str) -> str:
    return str(parsed.task_info.get(name, {}).get("title") or name)


def _internal(name: str) -> bool:
    return any(name == n or name.endswith("." + n) for n in ("Start", "End", "EndJoin", "Root"))


def _walk(spec: Any) -> list[Any]:
    """Return the task specs of a process breadth-first from its start (diagram order)."""
    seen: list[Any] = []
    names: set[str] = set()
    queue = [spec.start]
    while queue:
        ts = queue.pop(0)
        if ts.name in names:
            continue
        names.add(ts.name)
        seen.append(ts)
        queue.extend(ts.outputs)
    return seen
