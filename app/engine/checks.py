"""Publish-time checks that need the whole diagram: the variables its expressions read, and dry runs of every path.

A diagram passes only if every expression reads names its instances hold (the data the app gives at start, the
fields of its forms, the results of its service tasks), and if walks generated through it, taking each choice of
each form (and so each gateway branch) and firing each timer at least once, all end without an error.
"""
from __future__ import annotations

import ast
import copy
import random
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.specs.defaults import UserTask
from SpiffWorkflow.util.task import TaskState

from app.engine.expressions import FUNCTIONS, ExpressionError, compile_expression
from app.engine.script_engine import SAFE_ENGINE
from app.engine.service_task import DeferredServiceTask
from app.engine.specs import BPMN_NS, SPIFF_NS, ParsedProcess, Problem, safe_xml
from app.engine.versions import run_to_wait

MAX_WALKS = 60
MAX_ACTIONS = 25
CONSTANTS = {"True", "False", "None"}


@dataclass(frozen=True)
class Site:
    """One expression of a diagram and where it is."""

    element_id: str
    element_name: str
    line: int | None
    kind: str
    source: str


def expression_sites(xml: str) -> Iterator[Site]:
    """Yield every expression of a diagram: conditions, timers, status and due properties, service parameters."""
    root = safe_xml(xml)

    def owner(el: etree._Element) -> etree._Element | None:
        node = el.getparent()
        while node is not None and (not node.get("id") or str(node.tag).endswith("EventDefinition")
                                    or str(node.tag).endswith("serviceTaskOperator")):
            node = node.getparent()
        return node

    def site(el: etree._Element, kind: str, source: str) -> Site:
        node = owner(el)
        return Site(node.get("id", "") if node is not None else "", node.get("name", "") if node is not None else "",
                    el.sourceline, kind, source)

    for tag, kind in (("conditionExpression", "条件"), ("timeDate", "定时器"), ("timeDuration", "定时器"),
                      ("timeCycle", "定时器")):
        for el in root.iter(f"{{{BPMN_NS}}}{tag}"):
            if (el.text or "").strip():
                yield site(el, kind, el.text.strip())
    for el in root.iter(f"{{{SPIFF_NS}}}property"):
        if el.get("name") in ("status", "dueInDays") and (el.get("value") or "").strip():
            yield site(el, f"属性 {el.get('name')}", el.get("value", "").strip())
    for el in root.iter(f"{{{SPIFF_NS}}}parameter"):
        if (el.get("value") or "").strip():
            yield site(el, f"参数 {el.get('id')}", el.get("value", "").strip())


def names_read(source: str) -> set[str]:
    """Return the variables an expression reads (function names and constants are not variables)."""
    tree = compile_expression(source)
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called} - CONSTANTS


def form_fields(parsed: ParsedProcess) -> set[str]:
    """Return the fields of the forms the diagram's user tasks fill (their values become task data)."""
    names: set[str] = set()
    for info in parsed.task_info.values():
        schema = parsed.forms.get(info.get("form") or "") or {}
        names.update((schema.get("properties") or {}).keys())
    return names


def result_variables(parsed: ParsedProcess) -> set[str]:
    """Return the variables service tasks set with their results."""
    return {ts.result_variable for proc in (parsed.spec, *parsed.subprocess_specs.values())
            for ts in proc.task_specs.values() if isinstance(ts, DeferredServiceTask) and ts.result_variable}


def unknown_variables(parsed: ParsedProcess, given: Mapping[str, str]) -> list[Problem]:
    """Return a problem for each expression reading a name the process's instances do not hold.

    given: the names the app gives the process's instances at start, with what each holds.
    """
    known = set(given) | form_fields(parsed) | result_variables(parsed)
    problems = []
    for s in expression_sites(parsed.xml):
        try:
            unknown = sorted(names_read(s.source) - known - set(FUNCTIONS))
        except ExpressionError:
            continue  # refused already by the parse, with its reason
        if unknown:
            problems.append(Problem(
                f"{s.kind}表达式 {s.source} 使用了流程实例中没有的变量：{', '.join(unknown)}。此流程的实例持有："
                f"{'、'.join(f'{k}（{v}）' for k, v in given.items())}，以及表单字段和服务任务结果变量",
                s.element_id, s.element_name, s.line))
    return problems


# -- generated dry runs ---------------------------------------------------------------------------------

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
    if kind == "array":
        item = prop.get("items") or {}
        return [sample_value(item)] if item else []
    return "试运行" * max(1, -(-int(prop.get("minLength", 0)) // 3))


def _choices(schema: Mapping[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """Return one set of values per choice of the form's choice fields (each enum value once, with the name the form
    gives it in x-enum-labels), samples elsewhere."""
    props = schema.get("properties") or {}
    base = {name: sample_value(p) for name, p in props.items()}
    if "comment" in base and isinstance(base["comment"], str):
        base["comment"] = "试运行意见"
    variants = [(dict(base, **{name: value}), str((p.get("x-enum-labels") or {}).get(str(value), value)))
                for name, p in props.items() if "enum" in p for value in p["enum"]]
    return variants or [(base, "")]


@dataclass
class Walk:
    """One generated run through a diagram: the actions taken, and the error that ended it, if any."""

    actions: list[str]
    error: str = ""
    element_id: str = ""


def explore(parsed: ParsedProcess, start_data: Mapping[str, Any], seed: int = 1) -> tuple[list[Walk], set[str]]:
    """Walk a draft in memory, each walk taking the least-tried action at every wait (a form choice of a ready user
    task, or firing a waiting timer), until every action has been tried; return the walks and the elements
    reached. Service tasks succeed at once."""
    rng = random.Random(seed)
    tried: Counter[tuple[str, int]] = Counter()
    reached: set[str] = set()
    walks: list[Walk] = []
    stale = 0
    for _ in range(MAX_WALKS):
        walk = Walk([])
        workflow = BpmnWorkflow(parsed.spec, parsed.subprocess_specs, script_engine=SAFE_ENGINE)
        workflow.task_tree.data.update(copy.deepcopy(dict(start_data)))
        for task in workflow.task_tree.children:
            task.data.update(copy.deepcopy(dict(start_data)))
        fresh = False
        try:
            _advance(workflow, reached)
            for _step in range(MAX_ACTIONS):
                actions = _actions(parsed, workflow)
                if not actions:
                    break
                least = min(tried[key] for key, _, _ in actions)
                key, label, act = rng.choice([a for a in actions if tried[a[0]] == least])
                fresh = fresh or tried[key] == 0
                tried[key] += 1
                walk.actions.append(label)
                act()
                _advance(workflow, reached)
        except Exception as exc:  # any failure of a draft is a finding to show, with its element
            spec = getattr(exc, "task_spec", None)
            walk.error = f"{type(exc).__name__}: {exc}"
            walk.element_id = getattr(spec, "bpmn_id", "") or ""
        walks.append(walk)
        stale = 0 if fresh else stale + 1
        if walk.error or stale >= 3:  # three walks in a row found no action not tried before
            break
    return walks, reached


def _advance(workflow: BpmnWorkflow, reached: set[str]) -> None:
    run_to_wait(workflow)
    live = TaskState.COMPLETED | TaskState.READY | TaskState.STARTED | TaskState.WAITING
    reached.update(t.task_spec.bpmn_id for t in workflow.get_tasks(state=live) if t.task_spec.bpmn_id)


def _actions(parsed: ParsedProcess, workflow: BpmnWorkflow) -> list[tuple[tuple[str, int], str, Callable[[], None]]]:
    """Return what can be done now: each choice of each ready user task, and firing each waiting timer."""
    found: list[tuple[tuple[str, int], str, Callable[[], None]]] = []
    for task in workflow.get_tasks(state=TaskState.READY, manual=True):
        if not isinstance(task.task_spec, UserTask):
            continue
        info = parsed.task_info.get(task.task_spec.name, {})
        for index, (values, choice) in enumerate(_choices(parsed.forms.get(info.get("form") or "") or {})):
            label = f"{info.get('title') or task.task_spec.name}（{task.task_spec.lane}）" + (f"：{choice}" if choice else "")

            def run(task: Any = task, values: dict[str, Any] = values) -> None:
                task.data.update(copy.deepcopy(values))
                task.run()
            found.append(((task.task_spec.name, index), label, run))
    for task in workflow.get_tasks(state=TaskState.WAITING):
        if isinstance(getattr(task.task_spec, "event_definition", None), TimerEventDefinition):
            def fire(task: Any = task) -> None:
                task._set_internal_data(event_fired=True)
                workflow.refresh_timers()
            name = task.task_spec.bpmn_name or task.task_spec.name
            found.append(((task.task_spec.name, -1), f"定时器“{name}”到时", fire))
    return found


def sample_times(now: datetime | None = None) -> dict[str, str]:
    """Return plausible plan times for dry runs: a window open now, review and announcement after it."""
    at = (now or datetime.now(UTC)).replace(microsecond=0)
    return {"starts_at": (at - timedelta(days=1)).isoformat(), "ends_at": (at + timedelta(days=10)).isoformat(),
            "review_deadline": (at + timedelta(days=20)).isoformat(),
            "announce_ends_at": (at + timedelta(days=27)).isoformat()}
