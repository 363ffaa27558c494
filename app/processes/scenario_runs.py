"""Dry-run scenarios: what a scenario is, how its steps are named (by the forms' own words), how it runs on a draft,
and how its expectations are judged. The publish gate runs them; the editor's 场景 panel writes and runs them.

A scenario is a list of steps, each one of
- {"kind": "task", "task": <user task element id>, "values": {<form field>: <value>, ...}}: the task is done with
  these form values (fields left out take a plausible value from the form);
- {"kind": "timer", "timer": <timer element id>}: that timer fires;
- {"kind": "deadline"}: the deadline passes, so every timer waiting at that moment fires;
and what it expects at the end: the status word, and/or that a given SMS template was sent on the way.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.engine.checks import sample_value
from app.engine.scenarios import ANY_REVIEW, DEADLINE, TASK, TIMER, Move, Played, lane_order, outline, play
from app.engine.specs import ParsedProcess, Problem
from app.extensions import db
from app.forms import build_form
from app.sms import services as sms

SMS_OPERATION = "sms_send"
MAX_VALUE_CHARS = 2000
STEP_KINDS = {TASK: "办理任务", TIMER: "定时器到时", DEADLINE: "期限已过"}
# What the app itself adds when a lane completes a task of a process (as declarations.services does for a school's
# submission), so that a dry run sees the data a real step would give.
APP_STEP_DATA: dict[tuple[str, str], dict[str, Any]] = {("declaration", "school"): {"action": "submit"}}


@dataclass
class Scenario:
    """A scenario to run: its name, its steps and what it expects at the end."""

    name: str
    steps: list[dict[str, Any]]
    expect_status: str = ""
    expect_sms: str = ""
    key: str = ""  # a built-in's key, or "saved:<id>"
    builtin: bool = False


# The shipped defaults for the declaration process. They name lanes, not task ids, and expect only to run without an
# error, so that they fit every province's variant: "*review" stands for each review stage the draft has, in diagram
# order, all approving on the way to the decision under test.
BUILTINS: dict[str, Scenario] = {s.key: s for s in (
    Scenario("提交 → 通过", [{"kind": TASK, "lane": "school"}, {"kind": TASK, "lane": ANY_REVIEW,
                                                            "values": {"decision": "approve"}}],
             key="submit_approve", builtin=True),
    Scenario("提交 → 不通过 → 修改后重新提交 → 通过", [
        {"kind": TASK, "lane": "school"},
        {"kind": TASK, "lane": ANY_REVIEW, "values": {"decision": "reject", "comment": "请补充材料"}},
        {"kind": TASK, "lane": "school"}, {"kind": TASK, "lane": ANY_REVIEW, "values": {"decision": "approve"}}],
             key="submit_reject_resubmit_approve", builtin=True),
    Scenario("提交 → 不通过", [{"kind": TASK, "lane": "school"}, {"kind": TASK, "lane": ANY_REVIEW,
                                                             "values": {"decision": "reject", "comment": "请补充材料"}}],
             key="submit_reject", builtin=True),
)}
BUILTIN_PROCESSES = ("declaration",)  # the built-ins are a school declaring and reviewers deciding


def builtins(process_key: str) -> list[Scenario]:
    """Return the shipped default scenarios of a process."""
    return list(BUILTINS.values()) if process_key in BUILTIN_PROCESSES else []


@dataclass
class Message:
    """A text message a step would send: its template, phone and text as the SMS service renders it."""

    template: str
    phone: str
    text: str
    element_name: str


@dataclass
class StepView:
    """One step of a run as the analyst sees it."""

    number: int
    action: str
    path: list[str]
    status: str
    waiting_for: list[str]
    messages: list[Message] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    element_id: str = ""


@dataclass
class ScenarioRun:
    """A scenario run on a draft: each step, and each expectation that failed (in Chinese)."""

    name: str
    steps: list[StepView]
    failures: list[str]
    element_id: str = ""

    @property
    def passed(self) -> bool:
        return not self.failures


def would_send(template: str, params: Mapping[str, Any]) -> str:
    """Return a message's text as the SMS service would render it (the one place a dry run renders a template)."""
    return sms.render(db.session(), template, dict(params))


def choice_labels(parsed: ParsedProcess, task_id: str, values: Mapping[str, Any]) -> list[str]:
    """Return how the task's form names the choices among the values (x-enum-labels), in the form's order."""
    schema = parsed.forms.get(str(parsed.task_info.get(task_id, {}).get("form") or "")) or {}
    form = build_form(schema)
    return [form.choice_label(f.name, values[f.name]) for f in form.fields
            if f.options and f.name in values and values[f.name] not in (None, "")]


def step_label(parsed: ParsedProcess, step: Mapping[str, Any]) -> str:
    """Return a step's name for people: the task's name and the choices made, or which timer fires."""
    kind = step.get("kind")
    if kind == DEADLINE:
        return "期限已过（所有等待中的定时器到时）"
    if kind == TIMER:
        target = str(step.get("timer") or "")
        return f"定时器“{parsed.task_info.get(target, {}).get('title') or target}”到时"
    task_id = str(step.get("task") or "")
    title = str(parsed.task_info.get(task_id, {}).get("title") or task_id)
    labels = choice_labels(parsed, task_id, step.get("values") or {})
    return f"{title}：{'，'.join(labels)}" if labels else title


def moves(parsed: ParsedProcess, scenario: Scenario) -> list[Move]:
    """Return the engine's moves for a scenario: built-ins' lanes become the draft's first task of that lane."""
    tasks = outline(parsed).tasks
    first_of_lane = {}
    for task in reversed(tasks):
        first_of_lane[task["lane"]] = task["id"]
    reviews = [lane for lane in lane_order(parsed) if lane != "school"]
    result: list[Move] = []
    for step in scenario.steps:
        values = dict(step.get("values") or {})
        if step.get("lane") == ANY_REVIEW:
            for lane in reviews:  # earlier stages approve, the last one takes the decision under test
                stage = values if lane == reviews[-1] else {"decision": "approve"}
                label = step_label(parsed, {"kind": TASK, "task": first_of_lane.get(lane, lane), "values": stage})
                result.append(Move(TASK, lane, stage, by_lane=True, label=label))
        elif step.get("lane"):
            lane = str(step["lane"])
            label = step_label(parsed, {"kind": TASK, "task": first_of_lane.get(lane, lane), "values": values})
            result.append(Move(TASK, lane, values, by_lane=True, label=label))
        elif step.get("kind") == TASK:
            result.append(Move(TASK, str(step.get("task") or ""), values, label=step_label(parsed, step)))
        elif step.get("kind") == TIMER:
            result.append(Move(TIMER, str(step.get("timer") or ""), label=step_label(parsed, step)))
        else:
            result.append(Move(DEADLINE, label=step_label(parsed, step)))
    return result


def _filler(parsed: ParsedProcess, process_key: str) -> Callable[[str, Mapping[str, Any]], dict[str, Any]]:
    """Return what completes a task: a plausible value for each form field, what the app adds, the given values."""
    def fill(task_id: str, values: Mapping[str, Any]) -> dict[str, Any]:
        info = parsed.task_info.get(task_id, {})
        schema = parsed.forms.get(str(info.get("form") or "")) or {}
        sample = {name: sample_value(prop) for name, prop in (schema.get("properties") or {}).items()
                  if name not in values and "x-options" not in prop}
        if "comment" in sample:
            sample["comment"] = "试运行意见"
        return {**sample, **APP_STEP_DATA.get((process_key, str(info.get("lane") or "")), {}), **values}
    return fill


def run(parsed: ParsedProcess, process_key: str, scenario: Scenario, start_data: Mapping[str, Any]) -> ScenarioRun:
    """Run a scenario on a draft in memory and judge what it expects (a saved one is first checked against the
    draft: a step naming a task or choice the draft no longer has fails there)."""
    if not scenario.builtin:
        found = outline(parsed)
        tasks, timers = {t["id"]: t for t in found.tasks}, {t["id"] for t in found.timers}
        misfits = [f"第 {n} 步：{error}" for n, step in enumerate(scenario.steps, start=1)
                   for error in [read_step(parsed, step, tasks, timers)[1]] if error]
        if misfits:
            return ScenarioRun(scenario.name, [], misfits)
    played = play(parsed, start_data, moves(parsed, scenario), _filler(parsed, process_key))
    steps = [_view(number, p) for number, p in enumerate(played)]
    failures = [f"第 {s.number} 步（{s.action}）：{s.error}" if s.number else f"开始时：{s.error}"
                for s in steps if s.error]
    element_id = next((s.element_id for s in steps if s.error), "")
    if not failures:
        final = steps[-1].status if steps else ""
        if scenario.expect_status and final != scenario.expect_status:
            failures.append(f"预期最终状态为“{scenario.expect_status}”，实际为“{final or '（无状态）'}”")
        sent = [m.template for s in steps for m in s.messages]
        if scenario.expect_sms and scenario.expect_sms not in sent:
            failures.append(f"预期发送短信“{scenario.expect_sms}”，实际" +
                            (f"只发送了：{'、'.join(sent)}" if sent else "没有发送任何短信"))
    return ScenarioRun(scenario.name, steps, failures, element_id)


def _view(number: int, played: Played) -> StepView:
    messages, error = [], played.error
    for call in played.calls:
        if call.operation != SMS_OPERATION:
            continue
        template = str(call.params.get("template") or "")
        variables = call.params.get("vars") or {}
        try:
            text = would_send(template, variables if isinstance(variables, dict) else {})
        except (ValueError, KeyError) as exc:
            text = ""
            error = error or f"“{call.element_name}”的短信无法生成：{exc}"
        messages.append(Message(template, str(call.params.get("phone") or ""), text, call.element_name))
    return StepView(number, played.action, played.path, played.status, played.waiting_for, messages, played.data,
                    error, played.element_id)


def problems(parsed: ParsedProcess, process_key: str, scenarios: Sequence[Scenario],
             start_data: Mapping[str, Any]) -> list[Problem]:
    """Run the scenarios; return a problem naming the scenario and the step for each that fails."""
    found = []
    for scenario in scenarios:
        result = run(parsed, process_key, scenario, start_data)
        if not result.passed:
            found.append(Problem(f"场景“{scenario.name}”未通过：{'；'.join(result.failures)}", result.element_id,
                                 str(parsed.task_info.get(result.element_id, {}).get("title") or "")))
    return found


def read_step(parsed: ParsedProcess, raw: Any, tasks: Mapping[str, dict[str, Any]],
               timers: set[str]) -> tuple[dict[str, Any], str]:
    """Check one step against the draft (its task or timer exists, its values fit the task's form); return the step
    as stored, or why it does not fit."""
    if not isinstance(raw, Mapping) or raw.get("kind") not in STEP_KINDS:
        return {}, f"步骤类型应为：{'、'.join(STEP_KINDS.values())}"
    kind = raw["kind"]
    if kind == DEADLINE:
        return {"kind": DEADLINE}, ""
    if kind == TIMER:
        timer = str(raw.get("timer") or "")
        if timer not in timers:
            return {}, "请选择流程图中的一个定时器" if not timer else f"流程图中没有定时器 {timer}"
        return {"kind": TIMER, "timer": timer}, ""
    task_id = str(raw.get("task") or "")
    if task_id not in tasks:
        return {}, "请选择流程图中的一个用户任务" if not task_id else f"流程图中没有用户任务 {task_id}"
    title = tasks[task_id]["title"]
    schema = parsed.forms.get(tasks[task_id]["form"]) or {}
    props = schema.get("properties") or {}
    values: dict[str, Any] = {}
    raw_values = raw.get("values") or {}
    if not isinstance(raw_values, Mapping):
        return {}, f"“{title}”的表单值格式有误"
    for field_name, value in raw_values.items():
        prop = props.get(field_name)
        if prop is None:
            return {}, f"“{title}”的表单没有字段 {field_name}"
        if value in (None, ""):
            continue
        field_title = prop.get("title") or field_name
        if "enum" in prop:
            match = next((v for v in prop["enum"] if str(v) == str(value)), None)
            if match is None:
                labels = prop.get("x-enum-labels") or {}
                offered = "、".join(labels.get(str(v), str(v)) for v in prop["enum"])
                return {}, f"“{title}”的“{field_title}”只能选：{offered}"
            values[field_name] = match
        elif prop.get("type") in ("integer", "number"):
            try:
                values[field_name] = int(str(value)) if prop.get("type") == "integer" else float(str(value))
            except ValueError:
                return {}, f"“{title}”的“{field_title}”应为{'整数' if prop.get('type') == 'integer' else '数字'}"
        else:
            text = str(value)
            if len(text) > MAX_VALUE_CHARS:
                return {}, f"“{title}”的“{field_title}”不能超过 {MAX_VALUE_CHARS} 字"
            values[field_name] = text
    return {"kind": TASK, "task": task_id, "values": values}, ""
