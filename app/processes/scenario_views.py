"""The editor's 场景 panel: what a scenario of the draft can name, run, save and delete (JSON for
app/static/js/process-scenarios.js; the panel's page is the editor of app.processes.views)."""
from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from flask import Blueprint, jsonify, make_response, request
from werkzeug.wrappers import Response

from app.core.errors import NotFound, ServiceError
from app.engine.specs import InvalidProcess, Problem
from app.extensions import csrf, db
from app.processes import scenarios as scenario_service
from app.processes.models import ProcessVersion
from app.processes.views import (
    _base_version,
    _guarded_form,
    _listing,
    _parsed_or_none,
    _process_name,
    _province_names,
    _scope,
    analyst_required,
)
from app.web.context import acting_user
from app.web.control_characters import CONTROL, parses_own_form

bp = Blueprint("scenarios", __name__, url_prefix="/processes")


def _panel_request(key: str) -> tuple[str | None, ProcessVersion, str, Any] | Response:
    """Read a panel post: (scope, base version, draft XML, scenario JSON); or the JSON answer refusing it."""
    _process_name(key)
    refused = _guarded_form()
    if refused is not None:
        return _refused(refused.message)
    scope = _scope(request.form.get("province_code"), _province_names())
    base = _base_version(key, request.form.get("base_version_id", type=int), scope)
    xml = request.form.get("xml", "")
    if not xml.strip():
        return _refused("没有收到流程图：请在编辑器中编辑后再试")
    try:
        payload = json.loads(request.form.get("scenario") or "null")
    except ValueError:
        return _refused("场景格式有误：不是合法的 JSON")
    if _holds_control(payload):
        return _refused("场景中含有不允许的控制字符，请删除后重试")
    return scope, base, xml, payload


def _holds_control(value: Any) -> bool:
    if isinstance(value, str):
        return bool(CONTROL.search(value))
    if isinstance(value, dict):
        return any(_holds_control(k) or _holds_control(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_control(v) for v in value)
    return False


def _refused(message: str, errors: dict[str, str] | None = None, problems: list[Problem] | None = None,
             status: int = 422) -> Response:
    body = {"error": message, "errors": errors or {},
            "problems": [{"message": p.message, "element_id": p.element_id, "element_name": p.element_name}
                         for p in problems or []]}
    return make_response(jsonify(body), status)


def _panel_answer(key: str, base: ProcessVersion, scope: str | None, xml: str, **extra: Any) -> Response:
    session = db.session()
    parsed = _parsed_or_none(key, xml, base.forms)
    listing = _listing(parsed, scenario_service.scenarios_of(session, acting_user(), key, scope))
    return jsonify({"scenarios": listing, **extra})


@csrf.exempt
@parses_own_form
@bp.post("/<key>/scenarios/outline")
@analyst_required
def outline(key: str) -> Response:
    """What a scenario of the editor's draft can name: its user tasks with their forms' choices, its timers."""
    read = _panel_request(key)
    if isinstance(read, Response):
        return read
    scope, base, xml, _ = read
    try:
        parsed = scenario_service.parse_draft(db.session(), key, xml, base.forms)
    except InvalidProcess as exc:
        return _refused("流程图有误，先修正后才能编写场景", problems=list(exc.problems))
    return _panel_answer(key, base, scope, xml, outline=asdict(scenario_service.draft_outline(parsed)))


@csrf.exempt
@parses_own_form
@bp.post("/<key>/scenarios/run")
@analyst_required
def run(key: str) -> Response:
    """运行: run the scenario being written (or a listed one, by its key) on the editor's draft, in memory."""
    read = _panel_request(key)
    if isinstance(read, Response):
        return read
    scope, base, xml, payload = read
    session, user = db.session(), acting_user()
    try:
        if isinstance(payload, dict) and set(payload) == {"key"}:
            run = scenario_service.run_saved(session, user, key, scope, str(payload["key"]), xml, base.forms)
        else:
            run = scenario_service.run_on_draft(session, user, key, xml, base.forms, payload)
    except InvalidProcess as exc:
        return _refused("流程图有误，无法运行场景", problems=list(exc.problems))
    except ServiceError as exc:
        return _refused(exc.message, exc.field_errors)
    return jsonify({"run": asdict(run), "passed": run.passed})


@csrf.exempt
@parses_own_form
@bp.post("/<key>/scenarios/save")
@analyst_required
def save(key: str) -> Response:
    """保存: store the scenario being written for the process and scope (new, or in place of the one edited)."""
    read = _panel_request(key)
    if isinstance(read, Response):
        return read
    scope, base, xml, payload = read
    scenario_id = request.form.get("scenario_id", type=int)
    try:
        row = scenario_service.save_scenario(db.session(), acting_user(), key, scope, xml, base.forms, payload,
                                             scenario_id)
    except InvalidProcess as exc:
        return _refused("流程图有误，无法保存场景", problems=list(exc.problems))
    except ServiceError as exc:
        return _refused(exc.message, exc.field_errors)
    return _panel_answer(key, base, scope, xml, saved=f"saved:{row.id}", message=f"已保存场景“{row.name}”")


@csrf.exempt
@parses_own_form
@bp.post("/<key>/scenarios/<int:scenario_id>/delete")
@analyst_required
def delete(key: str, scenario_id: int) -> Response:
    """删除 a saved scenario of the scope."""
    read = _panel_request(key)
    if isinstance(read, Response):
        return read
    scope, base, xml, _ = read
    try:
        name = scenario_service.delete_scenario(db.session(), acting_user(), key, scope, scenario_id)
    except ServiceError as exc:
        return _refused(exc.message, status=404 if isinstance(exc, NotFound) else 422)
    return _panel_answer(key, base, scope, xml, message=f"已删除场景“{name}”")
