"""The publish gate: nothing that passes it can break a province.

A diagram is published (from the editor, `process deploy`, or as a shipped national version) only if
- it is one of the processes the app runs, and its process id says so;
- it parses under the strict checks (statuses declared and every status expression within them; only elements
  someone or something can complete; user tasks in a role's lane with a form; known service operations);
- its forms are within what the app's renderer shows (app.forms.checks: field types, widgets, enum values and their
  `x-enum-labels`), and the forms the app itself reads keep the fields it reads;
- every expression reads only data its instances hold (PROCESS_DATA, its forms' fields, service results), and a
  form field only after a task that fills it for certain (required there);
- every SMS template it names exists in the registry, and every placeholder of each text the template may render
  to in the version's scope is filled from data the instance holds at that step (app.processes.message_checks);
- every choice of its forms has a name for people (x-enum-labels);
- generated walks through every choice of its forms and every timer run without error, and the built-in and the
  saved scenarios of the scope it is published to pass (app.processes.scenario_runs).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from app.declarations.school_info import FIELDS as SCHOOL_INFO_FIELDS
from app.declarations.school_info import FORM_NAME as SCHOOL_INFO_FORM
from app.declarations.services import DECLARATION_FORM, FORM_COLUMNS
from app.engine.checks import explore, fields_read_before_filled, sample_times, service_operations, unknown_variables
from app.engine.runtime import ProcessEngine
from app.engine.specs import InvalidProcess, ParsedProcess, Problem
from app.forms.checks import form_name_problem, schema_problems
from app.handlers.registry import HANDLERS
from app.plans.services import PLAN_DATA_FIELDS
from app.processes import scenario_runs
from app.processes.message_checks import message_problems
from app.processes.scenario_runs import Scenario
from app.sms.templates import TemplateText

# What the app gives each process's instances at start (name -> what it holds); expressions may read these.
PROCESS_DATA: dict[str, dict[str, str]] = {
    "declaration": {"school_name": "院校名称", "school_phone": "院校联系手机号", "certificate_name": "证书名称",
                    "level": "证书等级", "declaration_id": "申报编号", "decision": "最近一次审核结论",
                    "comment": "最近一次审核意见", "action": "学校的操作（submit）", **PLAN_DATA_FIELDS},
    "plan": dict(PLAN_DATA_FIELDS),
    "registration": {"phone": "注册手机号", "school_name": "院校名称", "school_code": "学校标识码",
                     "province_name": "院校所在省份", "city_name": "院校所在城市", "comment": "最近一次审核意见"},
}
PROCESS_NAMES = {"declaration": "证书试点申报", "plan": "申报计划", "registration": "院校注册"}
# Forms the app reads by name, with the fields it stores from them: a version may reword them, not drop these.
APP_FORMS: dict[str, tuple[str, ...]] = {DECLARATION_FORM: tuple(sorted(FORM_COLUMNS)),
                                         SCHOOL_INFO_FORM: SCHOOL_INFO_FIELDS, "review-form.json": ("decision",)}

# Plausible data for dry runs (the plan's times are set around the moment of the run).
SAMPLE_DATA: dict[str, dict[str, Any]] = {
    "declaration": {"school_phone": "13800000000", "school_name": "演示学院", "certificate_name": "演示证书",
                    "level": "初级", "declaration_id": 1, "decision": "", "comment": "", "action": "",
                    "majors": ["510201"], "trainee_count": 50, "plan_id": 1, "plan_name": "演示申报计划",
                    "certificates": ["演示证书"]},
    "plan": {"plan_id": 1, "plan_name": "演示申报计划", "certificates": ["演示证书"]},
    "registration": {"phone": "13800000000", "school_name": "演示学院", "school_code": "4144010001",
                     "province_name": "广东省", "city_name": "广州市", "comment": ""},
}

_PASSED: dict[tuple[str, str, str], bool] = {}  # (process key, content hash, scenarios) that passed, kept in memory


def sample_data(process_key: str) -> dict[str, Any]:
    """Return the data a dry run of the process starts with."""
    return {**SAMPLE_DATA.get(process_key, {}), **sample_times()}


def checked(engine: ProcessEngine, process_key: str, xml: str, forms: Mapping[str, Any],
            lanes: Iterable[str], templates: Mapping[str, list[TemplateText]],
            scenarios: Sequence[Scenario] = ()) -> ParsedProcess:
    """Return the parsed diagram if it passes the gate; else raise InvalidProcess with every problem found.

    templates: every text each SMS template may render to in the version's scope (app.sms.templates.texts_for_scope).
    scenarios: the saved scenarios of the scope it is published to (the built-in ones run too).
    """
    if process_key not in PROCESS_DATA:
        raise InvalidProcess([Problem(f"未知的流程“{process_key}”：只能发布这些流程："
                                      f"{'、'.join(f'{k}（{v}）' for k, v in PROCESS_NAMES.items())}")])
    parsed = engine.parse(xml, forms, lanes=lanes)
    if parsed.process_id != process_key:
        raise InvalidProcess([Problem(f"流程 id 应为 {process_key}，图中为 {parsed.process_id}")])
    passed_key = (process_key, parsed.content_hash + _templates_hash(templates), _fingerprint(scenarios))
    if _PASSED.get(passed_key):
        return parsed
    problems = (form_problems(parsed) + misplaced_operations(parsed, process_key)
                + unknown_variables(parsed, PROCESS_DATA[process_key]) + unlabelled_choices(parsed))
    problems += message_problems(parsed, PROCESS_DATA[process_key], templates)
    if not problems:
        problems = fields_read_before_filled(parsed, PROCESS_DATA[process_key])
    if not problems:  # a walk would only fail on the unknown names again
        problems = dry_run_problems(parsed, process_key, scenarios)
    if problems:
        raise InvalidProcess(problems)
    if len(_PASSED) < 1000:
        _PASSED[passed_key] = True
    return parsed


def form_problems(parsed: ParsedProcess) -> list[Problem]:
    """Return a problem for each form of the version the app cannot show or read, at the tasks that use it."""
    users: dict[str, list[tuple[str, str]]] = {}
    for task, info in parsed.task_info.items():
        if info.get("form"):
            users.setdefault(str(info["form"]), []).append((task, str(info.get("title") or task)))
    problems = []
    for name, schema in sorted(parsed.forms.items()):
        found = [p for p in [form_name_problem(name)] if p] + [f"表单 {name}：{p}" for p in schema_problems(schema)]
        kept = (schema.get("properties") or {}) if isinstance(schema, Mapping) else {}
        dropped = [f for f in APP_FORMS.get(name, ()) if f not in kept]
        if dropped:
            found.append(f"表单 {name}：系统按字段名读取这些字段，不能删除或改名：{', '.join(dropped)}")
        for message in found:
            problems.extend([Problem(message, task, title) for task, title in users.get(name, [])]
                            or [Problem(message)])
    return problems


def misplaced_operations(parsed: ParsedProcess, process_key: str) -> list[Problem]:
    """Return a problem for each service task whose operation belongs to other processes (账号 operators act on
    the account a registration is about)."""
    problems = []
    for element_id, element_name, operation in service_operations(parsed):
        handler = HANDLERS.get(operation)
        if handler is not None and handler.processes and process_key not in handler.processes:
            allowed = "、".join(PROCESS_NAMES.get(k, k) for k in handler.processes)
            problems.append(Problem(f"服务操作 {operation}（{handler.description}）只能用于{allowed}流程",
                                    element_id, element_name))
    return problems


def _templates_hash(templates: Mapping[str, list[TemplateText]]) -> str:
    data = {name: [[t.scope, t.text] for t in texts] for name, texts in templates.items()}
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def _fingerprint(scenarios: Sequence[Scenario]) -> str:
    return json.dumps([[s.name, s.steps, s.expect_status, s.expect_sms] for s in scenarios], sort_keys=True,
                      ensure_ascii=False, default=str)


def unlabelled_choices(parsed: ParsedProcess) -> list[Problem]:
    """Return a problem for each choice of a user task's form that is a code with no name for people: its
    x-enum-labels entry is what reviewers pick, the history records and scenarios show."""
    problems = []
    for task_id, info in parsed.task_info.items():
        schema = parsed.forms.get(str(info.get("form") or "")) or {}
        for name, prop in (schema.get("properties") or {}).items():
            labels = prop.get("x-enum-labels") or {}
            codes = [str(v) for v in prop.get("enum") or [] if str(v).isascii() and str(v) not in labels]
            if codes:
                problems.append(Problem(
                    f"表单 {info.get('form')} 的字段“{prop.get('title') or name}”（{name}）的选项 {'、'.join(codes)} "
                    f"没有中文名称：请在 x-enum-labels 中为每个选项写上名称（如 \"return\": \"退回修改\"）",
                    task_id, str(info.get("title") or "")))
    return problems


def dry_run_problems(parsed: ParsedProcess, process_key: str, scenarios: Sequence[Scenario] = ()) -> list[Problem]:
    """Run the generated walks, the built-in and the saved scenarios; return a problem for each that fails."""
    problems = []
    walks, reached = explore(parsed, sample_data(process_key))
    for walk in walks:
        if walk.error:
            path = " → ".join(["开始", *walk.actions])
            problems.append(Problem(f"试运行出错（路径：{path}）：{walk.error}", walk.element_id,
                                    parsed.task_info.get(walk.element_id, {}).get("title", "")))
    if not problems:
        problems = scenario_runs.problems(parsed, process_key, [*scenario_runs.builtins(process_key), *scenarios],
                                          sample_data(process_key))
    return problems
