"""The editor's 场景 panel: what a scenario of the draft can name, run, save and delete (JSON for
app/static/js/process-scenarios.js; the panel's page is the editor of app.processes.views)."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import wraps
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


@dataclass
class PanelPost:
    """A post of the 场景 panel: the process, the scope, the base version, the editor's draft, the scenario."""

    key: str
    scope: str | None
    base: ProcessVersion
    xml: str
    payload: Any

    def answer(self, **extra: Any) -> Response:
        """Answer with the scenarios of the scope, each step named by the draft, and extra."""
        parsed = _parsed_or_none(self.key, self.xml, self.base.forms)
        listing = _listing(parsed, scenario_service.scenarios_of(db.session(), acting_user(), self.key, self.scope))
        return jsonify({"scenarios": listing, **extra})


def _read_post(key: str) -> PanelPost | Response:
    """Read a panel post; or the JSON answer refusing it."""
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
    return PanelPost(key, scope, base, xml, payload)


def panel_post(rule: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Register a panel view for analysts: it gets the read post; a refused draft or scenario answers 422 (a
    scenario or draft not found, 404) with the reasons in Chinese."""
    def register(handler: Callable[..., Response]) -> Callable[..., Response]:
        @wraps(handler)
        def view(key: str, **kwargs: Any) -> Response:
            post = _read_post(key)
            if isinstance(post, Response):
                return post
            try:
                return handler(post, **kwargs)
            except InvalidProcess as exc:
                return _refused("流程图有误，先修正后才能编写、运行或保存场景", problems=list(exc.problems))
            except ServiceError as exc:
                return _refused(exc.message, exc.field_errors, status=404 if isinstance(exc, NotFound) else 422)
        return csrf.exempt(parses_own_form(bp.post(rule)(analyst_required(view))))  # type: ignore[no-any-return]
    return register


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


@panel_post("/<key>/scenarios/outline")
def outline(post: PanelPost) -> Response:
    """What a scenario of the editor's draft can name: its user tasks with their forms' choices, its timers."""
    parsed = scenario_service.parse_draft(db.session(), post.key, post.xml, post.base.forms)
    return post.answer(outline=asdict(scenario_service.draft_outline(parsed)))


@panel_post("/<key>/scenarios/run")
def run(post: PanelPost) -> Response:
    """运行: run the scenario being written (or a listed one, by its key) on the editor's draft, in memory."""
    session, user, payload = db.session(), acting_user(), post.payload
    if isinstance(payload, dict) and set(payload) == {"key"}:
        result = scenario_service.run_saved(session, user, post.key, post.scope, str(payload["key"]), post.xml,
                                            post.base.forms)
    else:
        result = scenario_service.run_on_draft(session, user, post.key, post.xml, post.base.forms, payload)
    return jsonify({"run": asdict(result), "passed": result.passed})


@panel_post("/<key>/scenarios/save")
def save(post: PanelPost) -> Response:
    """保存: store the scenario being written for the process and scope (new, or in place of the one edited)."""
    row = scenario_service.save_scenario(db.session(), acting_user(), post.key, post.scope, post.xml,
                                         post.base.forms, post.payload, request.form.get("scenario_id", type=int))
    return post.answer(saved=f"saved:{row.id}", message=f"已保存场景“{row.name}”")


@panel_post("/<key>/scenarios/<int:scenario_id>/delete")
def delete(post: PanelPost, scenario_id: int) -> Response:
    """删除 a saved scenario of the scope."""
    name = scenario_service.delete_scenario(db.session(), acting_user(), post.key, post.scope, scenario_id)
    return post.answer(message=f"已删除场景“{name}”")
