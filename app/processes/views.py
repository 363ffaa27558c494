"""Process pages for analysts: versions in force, diagrams, the editor, validation, publishing, instances, incidents."""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from app.accounts.registration import provinces
from app.accounts.roles import all_roles
from app.core.errors import ServiceError
from app.engine.specs import MAX_BPMN_BYTES, InvalidProcess, ParsedProcess, Problem
from app.engine.versions import VersionDiff
from app.engine.vocabulary import MEANINGS
from app.extensions import csrf, db
from app.forms.preview import preview
from app.handlers.registry import HANDLERS
from app.processes import admin as process_admin
from app.processes import scenarios as scenario_service
from app.processes.models import ProcessVersion
from app.processes.scenario_runs import ScenarioRun
from app.processes.services import SHIPPED_PROCESSES
from app.web.context import acting_user
from app.web.control_characters import first_refused, parses_own_form, refusal

ANALYST_ROLES = ("analyst", "ministry_admin")
bp = Blueprint("processes", __name__, url_prefix="/processes")
NAV_ITEMS = [(60, ANALYST_ROLES, "流程管理", "processes.index"), (61, ANALYST_ROLES, "故障", "processes.incidents")]
PROCESS_NAMES = {"registration": "院校注册", "declaration": "证书试点申报", "plan": "申报计划"}
# A request may carry an uploaded file and the modeler's copy of the diagram, each up to the validator's limit.
REQUEST_LIMIT = 2 * MAX_BPMN_BYTES + 256 * 1024
FIELD_LIMIT = MAX_BPMN_BYTES + 64 * 1024
MAX_FORMS = 60


def analyst_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Allow only analysts and the ministry admin."""
    @wraps(view)
    @login_required
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_user.role not in ANALYST_ROLES:
            abort(403)
        return view(*args, **kwargs)
    return wrapper


def _process_name(key: str) -> str:
    if key not in SHIPPED_PROCESSES:
        abort(404)
    return PROCESS_NAMES.get(key, key)


def _province_names() -> dict[str, str]:
    return {p.code: p.name for p in provinces(db.session())}


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{max(1, n // 1024)} KB"


def _too_large(n: int) -> Problem:
    return Problem(f"上传的内容过大（{_size(n)}）：流程图文件不能超过 {_size(MAX_BPMN_BYTES)}，未做任何修改")


# -- reading a draft ------------------------------------------------------------------------------

@dataclass
class Draft:
    """A diagram posted for checking: the XML to validate and what the modeler should open."""

    xml: str | None
    shown_xml: str | None
    problems: list[Problem] = field(default_factory=list)
    uploaded: bool = False


def _discard_body() -> None:
    """Read and drop a refused request body so the connection ends cleanly."""
    try:
        while request.stream.read(1024 * 1024):
            pass
    except (OSError, RequestEntityTooLarge):
        pass


def _guarded_form() -> Problem | None:
    """Refuse oversized bodies before the form is parsed, then check the CSRF token; return a refusal if any.

    These views are exempt from the automatic CSRF check because it would parse the body first (a 50 MB
    upload, or a diagram field over Flask's 500 KB default, would end in a bare 413); the token is checked here.
    """
    length = request.content_length or 0
    if length > REQUEST_LIMIT:
        _discard_body()
        return _too_large(length)
    request.max_form_memory_size = FIELD_LIMIT
    try:
        request.form  # noqa: B018 - parse now, inside the limits set above
    except RequestEntityTooLarge:
        return _too_large(length)
    if current_app.config.get("WTF_CSRF_ENABLED", True):
        csrf.protect()
    refused = first_refused(request.form.items(multi=True))
    return Problem(refusal(refused)) if refused is not None else None


def _read_draft() -> Draft:
    """Return the posted diagram: an uploaded .bpmn file, else the modeler's XML (call after _guarded_form)."""
    typed = request.form.get("xml", "")
    upload = request.files.get("bpmn_file")
    if upload is not None and upload.filename:
        upload.stream.seek(0, 2)
        size = upload.stream.tell()
        upload.stream.seek(0)
        if size > MAX_BPMN_BYTES:
            return Draft(None, typed or None, [_too_large(size)], uploaded=True)
        raw = upload.stream.read()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            return Draft(None, typed or None, [Problem("文件不是 UTF-8 编码的 BPMN（XML）文件")], uploaded=True)
        hostile = b"<!DOCTYPE" in raw or b"<!ENTITY" in raw
        # A refused declaration is reported by the validator but never opened in the editor.
        return Draft(text, (typed or None) if hostile else text, uploaded=True)
    if not typed.strip():
        return Draft(None, None, [Problem("没有收到流程图：请在编辑器中编辑，或选择要上传的 .bpmn 文件")])
    return Draft(typed, typed)


def _read_forms(base: ProcessVersion, form: Any) -> tuple[dict[str, Any], list[Problem]]:
    """Return the forms posted with the draft (file name -> schema); the base version's if none were posted."""
    text = form.get("forms_json", "")
    if not text.strip():
        return dict(base.forms), []
    try:
        forms = json.loads(text)
    except ValueError:
        return dict(base.forms), [Problem("没有读到编辑器中的表单（数据不是合法的 JSON）：请刷新页面后重试，未做任何修改")]
    if not isinstance(forms, dict) or not all(isinstance(k, str) and isinstance(v, dict) for k, v in forms.items()):
        return dict(base.forms), [Problem("表单数据的格式不对：应为“文件名 → JSON Schema 对象”，未做任何修改")]
    if len(forms) > MAX_FORMS:
        return dict(base.forms), [Problem(f"表单过多（{len(forms)} 个）：一个版本最多 {MAX_FORMS} 个表单")]
    return forms, []


# -- the editor -----------------------------------------------------------------------------------

@dataclass
class CheckResult:
    """What 校验 found: problems, or the diff against the version in force and a dry run."""

    problems: list[Problem]
    xml: str = ""
    current: ProcessVersion | None = None
    diff: VersionDiff | None = None
    run: ScenarioRun | None = None

    @property
    def valid(self) -> bool:
        return not self.problems


def _base_version(key: str, version_id: int | None, province_code: str | None) -> ProcessVersion:
    session, user = db.session(), acting_user()
    if version_id:
        version = process_admin.get_version(session, user, version_id)
        if version.process_key != key:
            abort(404)
        return version
    return process_admin.version_in_force(session, user, key, province_code)


def _scope(value: str | None, names: dict[str, str]) -> str | None:
    if not value:
        return None
    if value not in names:
        abort(400)
    return value


def _openable(xml: str | None) -> str | None:
    """Return the diagram if the editor may open it: within the size limit and without DTD or entities."""
    if not xml or len(xml.encode("utf-8")) > MAX_BPMN_BYTES or "<!DOCTYPE" in xml or "<!ENTITY" in xml:
        return None
    return xml


def _editor(key: str, base: ProcessVersion, *, shown_xml: str | None, scope: str | None, scenario: str,
            check: CheckResult | None = None, note: str = "", errors: dict[str, str] | None = None,
            forms: Mapping[str, Any] | None = None, status: int = 200) -> Response:
    session = db.session()
    shown_xml = _openable(shown_xml)
    names = _province_names()
    lanes = set(process_admin.known_lanes(session))
    lane_roles = [{"code": r.code, "name": r.name} for r in all_roles(session) if r.code in lanes]
    config = {
        "mode": "modeler",
        "fileName": f"{key}-{scope or 'national'}-draft",
        "xml": shown_xml or base.bpmn_xml,
        "fallbackXml": base.bpmn_xml,
        "moddleUrl": url_for("static", filename="js/spiffworkflow-moddle.json"),
        "forms": sorted(forms if forms is not None else base.forms),
        "formSchemas": dict(forms if forms is not None else base.forms),
        "previewUrl": url_for("processes.form_preview"),
        "operations": {name: {"required": list(h.required), "optional": list(h.optional), "description": h.description}
                       for name, h in sorted(HANDLERS.items())},
        "roles": lane_roles,
        "meanings": [{"value": meaning, "label": label, "description": description}
                     for meaning, (label, description) in MEANINGS.items()],
        "problems": sorted({p.element_id for p in check.problems if p.element_id}) if check else [],
    }
    scenarios = scenario_service.scenarios_of(session, acting_user(), key, scope)
    parsed = _parsed_or_none(key, str(config["xml"]), dict(forms if forms is not None else base.forms))
    panel = {
        "urls": {name: url_for(f"scenarios.{name}", key=key) for name in ("outline", "run", "save")},
        "deleteUrl": url_for("scenarios.delete", key=key, scenario_id=0),
        "baseVersionId": base.id,
        "province": scope or "",
        "outline": asdict(scenario_service.draft_outline(parsed)) if parsed is not None else None,
        "scenarios": _listing(parsed, scenarios),
    }
    html = render_template("processes/editor.html", key=key, name=_process_name(key), base=base, diagram=config,
                           provinces=names, scope=scope, scenario=scenario, scenarios=scenarios, panel=panel,
                           check=check, note=note, errors=errors or {}, max_size=_size(MAX_BPMN_BYTES),
                           forms_json=json.dumps(config["formSchemas"], ensure_ascii=False))
    return make_response(html, status)


def _parsed_or_none(key: str, xml: str, forms: dict[str, Any]) -> ParsedProcess | None:
    try:
        return scenario_service.parse_draft(db.session(), key, xml, forms)
    except InvalidProcess:
        return None


def _listing(parsed: ParsedProcess | None, scenarios: list[scenario_service.Scenario]) -> list[dict[str, Any]]:
    """The scenarios as the 场景 panel lists them, each step named by the draft's tasks and forms."""
    return [{"key": s.key, "name": s.name, "builtin": s.builtin, "steps": s.steps, "expect_status": s.expect_status,
             "expect_sms": s.expect_sms, "names": scenario_service.describe(parsed, s) if parsed is not None else []}
            for s in scenarios]


def _first_scenario(key: str, scope: str | None) -> str:
    found = scenario_service.scenarios_of(db.session(), acting_user(), key, scope)
    return found[0].key if found else ""


@bp.get("/<key>/edit")
@analyst_required
def edit(key: str) -> Response:
    """The editor, opened on a version (the one in force for the chosen scope by default)."""
    _process_name(key)
    scope = _scope(request.args.get("province"), _province_names())
    base = _base_version(key, request.args.get("version", type=int), scope)
    scope = scope if scope is not None else base.province_code
    return _editor(key, base, shown_xml=None, scope=scope, scenario=_first_scenario(key, scope))


@csrf.exempt
@parses_own_form
@bp.post("/<key>/check")
@analyst_required
def check(key: str) -> Response:
    """校验: validate a draft from the editor or an upload (with the scope's saved scenarios), then diff it and
    dry-run the chosen scenario."""
    _process_name(key)
    refused = _guarded_form()
    draft = _read_draft() if refused is None else Draft(None, None, [refused], uploaded=True)
    form: Any = request.form if refused is None else {}
    scope = _scope(form.get("province_code"), _province_names())
    base = _base_version(key, int(form.get("base_version_id") or 0) or None, scope)
    session, user = db.session(), acting_user()
    keys = [s.key for s in scenario_service.scenarios_of(session, user, key, scope)]
    scenario = form.get("scenario", "") if form.get("scenario", "") in keys else (keys[0] if keys else "")
    forms, unreadable = _read_forms(base, form)
    result = CheckResult(list(draft.problems) + unreadable)
    if draft.xml is not None and not result.problems:
        try:
            parsed = process_admin.validate(session, key, draft.xml, forms, scope)
        except InvalidProcess as exc:
            result.problems = list(exc.problems)
        else:
            result.xml = draft.xml
            result.current = process_admin.version_in_force(session, user, key, scope)
            result.diff = process_admin.diff_against_current(session, key, scope, parsed)
            if scenario:
                result.run = scenario_service.run_saved(session, user, key, scope, scenario, draft.xml, forms)
    return _editor(key, base, shown_xml=draft.shown_xml, scope=scope, scenario=scenario, check=result, forms=forms,
                   status=200 if result.valid else 422)


@csrf.exempt
@parses_own_form
@bp.post("/<key>/publish")
@analyst_required
def publish(key: str) -> Response:
    """Publish a checked draft nationally or for one province, with a note (the scope's saved scenarios must pass)."""
    name = _process_name(key)
    refused = _guarded_form()
    names = _province_names()
    scope = _scope(request.form.get("province_code"), names) if refused is None else None
    base = _base_version(key, request.form.get("base_version_id", type=int) if refused is None else None, scope)
    scenario = _first_scenario(key, scope)
    if refused is not None:
        return _editor(key, base, shown_xml=None, scope=scope, scenario=scenario,
                       check=CheckResult([refused]), status=422)
    xml, note = request.form.get("xml", ""), request.form.get("note", "").strip()
    forms, unreadable = _read_forms(base, request.form)
    if unreadable:
        return _editor(key, base, shown_xml=xml or None, scope=scope, scenario=scenario,
                       check=CheckResult(unreadable), status=422)
    if not note:
        return _editor(key, base, shown_xml=xml or None, scope=scope, scenario=scenario,
                       check=CheckResult([], xml=xml), errors={"note": "发布说明：请说明这次修改了什么、为什么"},
                       forms=forms, status=422)
    try:
        version = process_admin.publish(db.session(), acting_user(), key, xml, forms, scope, note[:500])
    except InvalidProcess as exc:
        return _editor(key, base, shown_xml=xml or None, scope=scope, scenario=scenario,
                       check=CheckResult(list(exc.problems)), forms=forms, status=422)
    where = names.get(scope, scope) if scope else "全国"
    flash(f"已发布{name}流程版本 #{version.id}（{where}）：新建的流程实例使用此版本，已在办理中的仍按原版本完成。"
          f"如需让等待中的实例改用此版本，请点击“迁移等待中的实例”。", "success")
    return redirect(url_for("processes.version", version_id=version.id))


@bp.post("/forms/preview")
@analyst_required
def form_preview() -> str:
    """The form editor's live preview: the draft form rendered as schools and staff see it; with 试填, checked."""
    tried = request.form.get("form_try") == "1"
    return render_template("processes/_form_preview.html",
                           preview=preview(request.form.get("form_schema", ""), request.form if tried else None))


# -- lists and diagrams ---------------------------------------------------------------------------

@bp.get("")
@analyst_required
def index() -> str:
    """Every process with its national version and each province's own version in force."""
    items = {item.key: item for item in process_admin.overview(db.session(), acting_user())}
    return render_template("processes/index.html", items=[items[k] for k in SHIPPED_PROCESSES if k in items],
                           names=PROCESS_NAMES, provinces=_province_names())


@bp.get("/<key>")
@analyst_required
def process(key: str) -> str:
    """A process's version history with instance counts, and its newest instances."""
    name = _process_name(key)
    session, user = db.session(), acting_user()
    return render_template("processes/process.html", key=key, name=name,
                           versions=process_admin.versions(session, user, key),
                           counts=process_admin.instance_counts(session, user, key),
                           instances=process_admin.recent_instances(session, user, process_key=key, limit=20),
                           provinces=_province_names())


@bp.get("/versions/<int:version_id>")
@analyst_required
def version(version_id: int) -> str:
    """One version as a diagram, with its instances."""
    session, user = db.session(), acting_user()
    v = process_admin.get_version(session, user, version_id)
    config = {"mode": "viewer", "xml": v.bpmn_xml}
    counts = process_admin.instance_counts(session, user, v.process_key).get(v.id, (0, 0))
    return render_template("processes/version.html", v=v, name=PROCESS_NAMES.get(v.process_key, v.process_key),
                           diagram=config, counts=counts, provinces=_province_names(),
                           instances=process_admin.recent_instances(session, user, version_id=v.id, limit=50))


@bp.get("/versions/<int:version_id>/download")
@analyst_required
def download(version_id: int) -> Response:
    """The version's .bpmn file."""
    v = process_admin.get_version(db.session(), acting_user(), version_id)
    response = make_response(v.bpmn_xml)
    response.mimetype = "application/xml"
    filename = f"{v.process_key}-{v.province_code or 'national'}-v{v.id}.bpmn"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.post("/versions/<int:version_id>/migrate")
@analyst_required
def migrate(version_id: int) -> str:
    """迁移等待中的实例: move the scope's waiting instances to this version where safe, and report each."""
    session, user = db.session(), acting_user()
    v = process_admin.get_version(session, user, version_id)
    if not v.active:
        raise ServiceError("只能把等待中的实例迁移到生效中的版本")
    report = process_admin.migrate_waiting(session, user, version_id)
    return render_template("processes/migration.html", v=v, name=PROCESS_NAMES.get(v.process_key, v.process_key),
                           report=report, provinces=_province_names())


@bp.post("/<key>/revert")
@analyst_required
def revert(key: str) -> Response:
    """恢复为全国版本: the province's new instances use the national version again."""
    name = _process_name(key)
    names = _province_names()
    province = _scope(request.form.get("province_code"), names)
    if province is None:
        abort(400)
    retired = process_admin.revert_to_national(db.session(), acting_user(), key, province)
    if retired:
        flash(f"{names[province]}的{name}流程已恢复为全国版本：新建的流程实例使用全国版本，已在办理中的按原版本完成。",
              "success")
    else:
        flash(f"{names[province]}没有自己的{name}流程版本，本来就使用全国版本。", "info")
    return redirect(url_for("processes.index"))


# -- instances and incidents ----------------------------------------------------------------------

@bp.get("/instances/<int:instance_id>")
@analyst_required
def instance(instance_id: int) -> str:
    """One instance: its diagram with the path taken and the current task, and its history."""
    view = process_admin.instance_view(db.session(), acting_user(), instance_id)
    path = [i for i in (view.instance.path or []) if isinstance(i, str)]
    config = {"mode": "viewer", "xml": view.version.bpmn_xml, "completed": path or view.completed_ids,
              "current": view.current_ids}
    return render_template("processes/instance.html", view=view, diagram=config, provinces=_province_names(),
                           name=PROCESS_NAMES.get(view.instance.process_key, view.instance.process_key))


@bp.get("/incidents")
@analyst_required
def incidents() -> str:
    """Steps that failed in the engine, and service calls that failed after their retries."""
    session, user = db.session(), acting_user()
    return render_template("processes/incidents.html", calls=process_admin.incidents(session, user),
                           steps=process_admin.step_incidents(session, user), provinces=_province_names())


@bp.post("/incidents/steps/<int:incident_id>/resolve")
@analyst_required
def resolve(incident_id: int) -> Response:
    """Mark a failed step as dealt with (after publishing a fixed version and migrating its instance, say)."""
    process_admin.resolve_step_incident(db.session(), acting_user(), incident_id)
    flash("已标记为已处理", "success")
    return redirect(url_for("processes.incidents"))


@bp.post("/incidents/<int:call_id>/retry")
@analyst_required
def retry(call_id: int) -> Response:
    """Put a failed service call back in the queue."""
    call = process_admin.retry_incident(db.session(), acting_user(), call_id)
    flash(f"已重新排队：{call.task_name}（{call.operation}），稍后刷新查看结果", "success")
    return redirect(url_for("processes.incidents"))
