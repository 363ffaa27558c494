"""Scenarios analysts write for a process and scope: read one from the editor, save, list, delete, run on a draft."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import ROLE_ANALYST, ROLE_MINISTRY_ADMIN, User
from app.accounts.roles import lane_roles
from app.core.errors import Forbidden, NotFound, ServiceError
from app.engine import engine
from app.engine.scenarios import outline
from app.engine.specs import InvalidProcess, ParsedProcess, Problem
from app.forms import build_form
from app.processes import publish_gate, scenario_runs
from app.processes.models import ProcessScenario
from app.processes.scenario_runs import Scenario, ScenarioRun
from app.sms.models import AuditEntry

MAX_STEPS = 40


def _require_analyst(user: User) -> None:
    if user.role not in (ROLE_ANALYST, ROLE_MINISTRY_ADMIN):
        raise Forbidden("只有流程分析员可以管理流程")


def _scope(stmt: Any, process_key: str, province_code: str | None) -> Any:
    where = (ProcessScenario.province_code.is_(None) if province_code is None
             else ProcessScenario.province_code == province_code)
    return stmt.where(ProcessScenario.process_key == process_key, where)


def _as_scenario(row: ProcessScenario) -> Scenario:
    return Scenario(row.name, list(row.steps or []), row.expect_status, row.expect_sms, key=f"saved:{row.id}")


def saved_scenarios(session: Session, process_key: str, province_code: str | None) -> list[Scenario]:
    """Return the saved scenarios of a process and scope (those that run when a version is published to it)."""
    rows = session.scalars(_scope(select(ProcessScenario), process_key, province_code).order_by(ProcessScenario.id))
    return [_as_scenario(row) for row in rows]


def scenarios_of(session: Session, user: User, process_key: str, province_code: str | None) -> list[Scenario]:
    """Return the built-in scenarios of the process, then the saved ones of the scope."""
    _require_analyst(user)
    return [*scenario_runs.builtins(process_key), *saved_scenarios(session, process_key, province_code)]


def find(session: Session, user: User, process_key: str, province_code: str | None, key: str) -> Scenario:
    """Return one scenario of the list by its key (a built-in's name, or saved:<id>)."""
    found = next((s for s in scenarios_of(session, user, process_key, province_code) if s.key == key), None)
    if found is None:
        raise NotFound("该场景不存在或不属于此流程和范围")
    return found


def parse_draft(session: Session, process_key: str, xml: str, forms: Mapping[str, Any]) -> ParsedProcess:
    """Parse a draft as the editor holds it (the strict checks, not the whole gate); raise InvalidProcess."""
    parsed = engine().parse(xml, forms, lanes=lane_roles(session))
    if parsed.process_id != process_key:
        raise InvalidProcess([Problem(f"流程 id 应为 {process_key}，图中为 {parsed.process_id}")])
    return parsed


@dataclass
class DraftOutline:
    """What the scenario editor offers for a draft: each user task with its form's fields and choices, each timer,
    the status words and the SMS templates the draft names."""

    tasks: list[dict[str, Any]]
    timers: list[dict[str, str]]
    statuses: list[str]
    templates: list[str]


def draft_outline(parsed: ParsedProcess) -> DraftOutline:
    """Return what a scenario of this draft can name, with the forms' own words for each choice."""
    found = outline(parsed)
    tasks = []
    for task in found.tasks:
        form = build_form(parsed.forms.get(task["form"]) or {})
        fields = [{"name": f.name, "title": f.title, "kind": f.kind, "required": f.required,
                   "options": [[v, label] for v, label in f.options]}
                  for f in form.fields if not (parsed.forms.get(task["form"]) or {}).get("properties", {})
                  .get(f.name, {}).get("x-options")]
        tasks.append({**task, "fields": fields})
    return DraftOutline(tasks, found.timers, [word for word, _ in parsed.vocabulary], sorted(set(_sms_templates(parsed))))


def _sms_templates(parsed: ParsedProcess) -> list[str]:
    """Return the literal template names the draft's SMS steps use."""
    names = []
    for proc in (parsed.spec, *parsed.subprocess_specs.values()):
        for ts in proc.task_specs.values():
            if getattr(ts, "operation_name", None) == scenario_runs.SMS_OPERATION:
                value = str((ts.operation_params.get("template") or {}).get("value") or "").strip()
                if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"":
                    names.append(value[1:-1])
    return names


def read_scenario(parsed: ParsedProcess, payload: Any) -> Scenario:
    """Check a scenario posted by the editor against the draft; raise ServiceError naming each field at fault."""
    errors: dict[str, str] = {}
    if not isinstance(payload, Mapping):
        raise ServiceError("场景格式有误：应为一个对象")
    name = str(payload.get("name") or "").strip()
    if not name:
        errors["name"] = "场景名称：必填"
    elif len(name) > 100:
        errors["name"] = "场景名称：不能超过 100 个字"
    raw_steps = payload.get("steps")
    steps: list[dict[str, Any]] = []
    if not isinstance(raw_steps, list):
        errors["steps"] = "步骤：格式有误"
    elif len(raw_steps) > MAX_STEPS:
        errors["steps"] = f"步骤：最多 {MAX_STEPS} 步"
    else:
        found = outline(parsed)
        tasks = {t["id"]: t for t in found.tasks}
        timers = {t["id"] for t in found.timers}
        for number, raw in enumerate(raw_steps, start=1):
            step, error = scenario_runs.read_step(parsed, raw, tasks, timers)
            if error:
                errors[f"steps.{number}"] = f"第 {number} 步：{error}"
            else:
                steps.append(step)
    expect_status = str(payload.get("expect_status") or "").strip()
    words = [word for word, _ in parsed.vocabulary]
    if expect_status and words and expect_status not in words:
        errors["expect_status"] = f"预期最终状态：“{expect_status}”不是此流程的状态（可选：{'、'.join(words)}）"
    expect_sms = str(payload.get("expect_sms") or "").strip()
    if expect_sms:
        try:
            scenario_runs.would_send(expect_sms, {})
        except (ValueError, KeyError):
            errors["expect_sms"] = f"预期发送的短信：没有名为“{expect_sms}”的短信模板"
    if errors:
        raise ServiceError("场景有误，未保存也未运行：" + "；".join(errors.values()), errors)
    return Scenario(name, steps, expect_status, expect_sms)


def run_on_draft(session: Session, user: User, process_key: str, xml: str, forms: Mapping[str, Any],
                 payload: Any) -> ScenarioRun:
    """运行: run a scenario as written in the editor on the editor's draft, in memory."""
    _require_analyst(user)
    parsed = parse_draft(session, process_key, xml, forms)
    return scenario_runs.run(parsed, process_key, read_scenario(parsed, payload), publish_gate.sample_data(process_key))


def run_saved(session: Session, user: User, process_key: str, province_code: str | None, key: str, xml: str,
              forms: Mapping[str, Any]) -> ScenarioRun:
    """Run a built-in or saved scenario on the editor's draft, in memory."""
    scenario = find(session, user, process_key, province_code, key)
    parsed = parse_draft(session, process_key, xml, forms)
    return scenario_runs.run(parsed, process_key, scenario, publish_gate.sample_data(process_key))


def save_scenario(session: Session, user: User, process_key: str, province_code: str | None, xml: str,
                  forms: Mapping[str, Any], payload: Any, scenario_id: int | None = None) -> ProcessScenario:
    """保存: store a scenario checked against the editor's draft, new or in place of one of the same scope."""
    _require_analyst(user)
    parsed = parse_draft(session, process_key, xml, forms)
    scenario = read_scenario(parsed, payload)
    row = None
    if scenario_id is not None:
        row = session.get(ProcessScenario, scenario_id)
        if row is None or row.process_key != process_key or row.province_code != province_code:
            raise NotFound("该场景不存在或不属于此流程和范围")
    same_name = session.scalars(_scope(select(ProcessScenario.id), process_key, province_code)
                                .where(ProcessScenario.name == scenario.name)).first()
    if same_name is not None and same_name != scenario_id or scenario.name in {s.name for s in
                                                                                scenario_runs.builtins(process_key)}:
        raise ServiceError(f"已有名为“{scenario.name}”的场景", {"name": f"场景名称：已有名为“{scenario.name}”的场景"})
    now = clock.now()
    if row is None:
        row = ProcessScenario(process_key=process_key, province_code=province_code, created_by=user.username,
                              created_at=now)
        session.add(row)
    row.name, row.steps = scenario.name, scenario.steps
    row.expect_status, row.expect_sms = scenario.expect_status, scenario.expect_sms
    row.updated_by, row.updated_at = user.username, now
    session.flush()
    session.add(AuditEntry(at=now, actor_id=user.id, action="save_scenario", target=f"scenario:{row.id}",
                           detail=f"{user.display_name} 保存{process_key}流程（{province_code or '全国'}）的场景"
                                  f"“{row.name}”"))
    return row


def delete_scenario(session: Session, user: User, process_key: str, province_code: str | None,
                    scenario_id: int) -> str:
    """删除 a saved scenario of the scope; return its name."""
    _require_analyst(user)
    row = session.get(ProcessScenario, scenario_id)
    if row is None or row.process_key != process_key or row.province_code != province_code:
        raise NotFound("该场景不存在或不属于此流程和范围")
    session.delete(row)
    session.add(AuditEntry(at=clock.now(), actor_id=user.id, action="delete_scenario", target=f"scenario:{scenario_id}",
                           detail=f"{user.display_name} 删除{process_key}流程（{province_code or '全国'}）的场景"
                                  f"“{row.name}”"))
    return row.name


def describe(parsed: ParsedProcess, scenario: Scenario) -> list[str]:
    """Return the scenario's steps named for people, by the draft's tasks and forms (x-enum-labels)."""
    return [move.label for move in scenario_runs.moves(parsed, scenario)]
