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


def service_operations(parsed: ParsedProcess) -> list[tuple[str, str, str]]:
    """Return (element id, element name, operation) of every service task."""
    return [(str(ts.bpmn_id or ts.name), str(ts.bpmn_name or ""), ts.operation_name)
            for proc in (parsed.spec, *parsed.subprocess_specs.values())
            for ts in proc.task_specs.values() if isinstance(ts, DeferredServiceTask)]


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


def fields_read_before_filled(parsed: ParsedProcess, given: Mapping[str, str]) -> list[Problem]:
    """Return a problem for each expression reading a form field that is not filled on every path to it.

    A form field is in the data once its task is done, and only if it was required there (a field left empty is not
    posted) or is a yes/no box: an expression reading it anywhere else fails at run time for that instance.
    """
    forms = {task: (parsed.forms.get(info.get("form") or "") or {}) for task, info in parsed.task_info.items()
             if info.get("form")}
    filled = {task: {name for name in (schema.get("properties") or {}) if _always_filled(schema, name)}
              for task, schema in forms.items()}
    everywhere = set(given) | result_variables(parsed) | set(FUNCTIONS)
    any_form = form_fields(parsed)
    known = _filled_on_arrival(safe_xml(parsed.xml), filled)
    problems = []
    for s in expression_sites(parsed.xml):
        try:
            read = sorted((names_read(s.source) - everywhere) & any_form)
        except ExpressionError:
            continue
        for name in read:
            if name in known.get(s.element_id, set()):
                continue
            tasks = [t for t, schema in forms.items() if name in (schema.get("properties") or {})]
            where = "、".join(f"{parsed.task_info[t]['title']}（{parsed.task_info[t]['form']}）" for t in tasks)
            if not any(name in filled[t] for t in tasks):
                message = f"它在表单 {where} 中不是必填：留空时流程无法读取它，请把它设为必填"
            else:
                message = f"但流程走到这里时不一定已填写它（填写它的是：{where}）"
            problems.append(Problem(f"{s.kind}表达式 {s.source} 读取表单字段 {name}，{message}",
                                    s.element_id, s.element_name, s.line))
    return problems


def _always_filled(schema: Mapping[str, Any], name: str) -> bool:
    prop = (schema.get("properties") or {}).get(name) or {}
    return name in (schema.get("required") or []) or prop.get("type") == "boolean"


def _filled_on_arrival(root: etree._Element, filled: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """Return, for each element, the form fields filled on every path from the start to it (a forward data-flow
    fixpoint: a join takes what all its incoming paths filled, a parallel join what any of them did)."""
    incoming: dict[str, list[str]] = {}
    for flow in root.iter(f"{{{BPMN_NS}}}sequenceFlow"):
        flow_id = flow.get("id", "")
        incoming.setdefault(flow.get("targetRef", ""), []).append(flow_id)
        incoming[flow_id] = [flow.get("sourceRef", "")]
    fills = {task: set(fields) for task, fields in filled.items()}
    anything = set().union(*filled.values()) if filled else set()
    lenient: set[str] = set()  # event sub-processes start while any task waits
    for sub in root.iter(f"{{{BPMN_NS}}}subProcess"):
        sub_id = sub.get("id", "")
        inner = {el.get("id", "") for el in sub.iter() if el.get("id")}
        fills[sub_id] = set().union(*(filled.get(i, set()) for i in inner))
        for start in sub.findall(f"{{{BPMN_NS}}}startEvent"):
            if sub.get("triggeredByEvent") == "true":
                lenient.add(start.get("id", ""))
            else:
                incoming[start.get("id", "")] = list(incoming.get(sub_id, []))
    for event in root.iter(f"{{{BPMN_NS}}}boundaryEvent"):
        # Fires while its task waits: what was filled on arrival at the task, not the task's own form.
        incoming[event.get("id", "")] = list(incoming.get(event.get("attachedToRef", ""), []))
    joins = {el.get("id", "") for el in root.iter(f"{{{BPMN_NS}}}parallelGateway")}
    elements = [el.get("id", "") for el in root.iter() if el.get("id")]
    arrived = {e: set(anything) for e in elements}
    left = {e: set(anything) for e in elements}
    changed = True
    while changed:
        changed = False
        for e in elements:
            before = [left[p] for p in incoming.get(e, []) if p in left]
            if e in lenient:
                now = set(anything)
            elif not before:
                now = set()
            elif e in joins:
                now = set().union(*before)
            else:
                now = set.intersection(*before)
            out = now | fills.get(e, set())
            if now != arrived[e] or out != left[e]:
                arrived[e], left[e], changed = now, out, True
    return arrived  # a flow's own entry is what its source left: a condition on it sees its source's form


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
    if prop.get("format") == "date":
        return "2026-09-01"
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


# -- text messages named by service tasks ----------------------------------------------------------------

MESSAGE_OPERATIONS = ("sms_send", "sms_many")


@dataclass
class MessageUsage:
    """A service task that sends a template: what it names and with which placeholder values.

    template is None when the template parameter is not a quoted name; filled is None when the app prepared the
    message (message_ref) and so fills the placeholders itself; selector is the literal selector of sms_many.
    """

    element_id: str
    element_name: str
    line: int | None
    operation: str
    template: str | None
    template_source: str
    filled: dict[str, str] | None  # placeholder -> the expression that fills it
    selector: Any = None
    selector_source: str = ""
    task_name: str = ""
    problems: list[str] | None = None
    param_names: frozenset[str] = frozenset()


def message_usages(parsed: ParsedProcess) -> list[MessageUsage]:
    """Return every service task of the diagram that sends a message template."""
    lines = {el.get("id"): el.sourceline for el in safe_xml(parsed.xml).iter() if el.get("id")}
    found = []
    for proc in (parsed.spec, *parsed.subprocess_specs.values()):
        for name, ts in proc.task_specs.items():
            if not isinstance(ts, DeferredServiceTask) or ts.operation_name not in MESSAGE_OPERATIONS:
                continue
            params = {k: str(v.get("value") or "") for k, v in ts.operation_params.items()}
            usage = MessageUsage(ts.bpmn_id or name, ts.bpmn_name or "", lines.get(ts.bpmn_id), ts.operation_name,
                                 _literal_str(params.get("template", "")), params.get("template", ""), {},
                                 task_name=name, problems=[], param_names=frozenset(params))
            assert usage.problems is not None
            if ts.operation_name == "sms_send" and params.get("message_ref"):
                usage.filled = None
            elif params.get("vars"):
                filled = _dict_display(params["vars"])
                if filled is None:
                    usage.problems.append(f"vars 参数必须写成字典，键为带引号的占位符名，如 {{'school': school_name}}"
                                          f"（现为 {params['vars']}）")
                else:
                    usage.filled = filled
            if "selector" in params:
                usage.selector_source = params["selector"]
                try:
                    usage.selector = ast.literal_eval(params["selector"])
                except (ValueError, SyntaxError):
                    usage.selector = None
            found.append(usage)
    return found


def _literal_str(source: str) -> str | None:
    try:
        value = ast.literal_eval(source.strip())
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, str) else None


def _dict_display(source: str) -> dict[str, str] | None:
    """Return key -> value source of a dict display with string keys, or None if the source is something else."""
    try:
        tree = compile_expression(source)
    except ExpressionError:
        return None
    if not isinstance(tree.body, ast.Dict):
        return None
    out: dict[str, str] = {}
    for key, value in zip(tree.body.keys, tree.body.values):
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            return None
        out[key.value] = ast.unparse(value)
    return out


def names_available(parsed: ParsedProcess, given: Mapping[str, str], task_name: str) -> set[str]:
    """Return the variables an instance surely or possibly holds when it reaches a task: the data given at start,
    the fields of the forms of user tasks before it, the results of service tasks before it."""
    for proc in (parsed.spec, *parsed.subprocess_specs.values()):
        if task_name in proc.task_specs:
            target = proc.task_specs[task_name]
            break
    else:
        return set(given) | form_fields(parsed) | result_variables(parsed)
    names = set(given)
    if proc is not parsed.spec:  # inside a subprocess: whatever the main process may hold before it
        names |= form_fields(parsed) | result_variables(parsed)
    seen: set[str] = set()
    queue = list(target.inputs)
    while queue:
        ts = queue.pop()
        if ts.name in seen:
            continue
        seen.add(ts.name)
        queue.extend(ts.inputs)
        if isinstance(ts, UserTask):
            schema = parsed.forms.get(parsed.task_info.get(ts.name, {}).get("form") or "") or {}
            names.update((schema.get("properties") or {}).keys())
        elif isinstance(ts, DeferredServiceTask) and ts.result_variable:
            names.add(ts.result_variable)
    return names
