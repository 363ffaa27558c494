"""School pages: 证书管理 → 证书试点申报, 基础信息, declarations."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app import clock
from app.accounts.models import ROLE_SCHOOL
from app.core.errors import Forbidden, NotFound, ServiceError
from app.declarations import school_info, school_status
from app.declarations import services as decl_service
from app.declarations.models import Declaration
from app.engine import engine
from app.extensions import db
from app.forms import FormSpec, parse_submission
from app.web.context import acting_user

bp = Blueprint("school", __name__, url_prefix="/school")
# The flash category telling the browser that the form sent from this path was stored: static/js/form-keeper.js
# forgets its copy of what was typed.
FORM_SAVED = "form-saved"
NAV_ITEMS = [(10, ("school",), "证书试点申报", "school.dashboard"), (11, ("school",), "院校基础信息", "school.info")]


def school_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Allow only school accounts."""
    @wraps(view)
    @login_required
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_user.role != ROLE_SCHOOL:
            abort(403)
        return view(*args, **kwargs)
    return wrapper


@bp.get("/")
@school_required
def dashboard() -> str:
    """证书试点申报: the province's plans, the school's declarations and its open tasks."""
    session = db.session()
    user = acting_user()
    school = school_info.own_school(session, user)
    declarations = decl_service.school_declarations(session, user)
    inbox = decl_service.inbox(session, user)
    # A declaration can be edited exactly while the school's task on it is open, i.e. while it is in the inbox.
    editable = {t.subject_id for t in inbox if t.subject_type == "declaration"}
    window = decl_service.window(session, school.province_code)
    plans = decl_service.plans_of_province(session, school.province_code)
    return render_template(
        "declarations/dashboard.html", school=school, window=window, plans=plans, declarations=declarations,
        inbox=inbox, task_open={d.id: d.id in editable for d in declarations},
        subjects={d.id: d for d in declarations}, legacy=user.origin == school_status.LEGACY,
        next_step=school_status.next_step(user, school, window.open),
        outcomes=school_status.plan_outcomes(plans, declarations),
    )


@bp.route("/info", methods=["GET", "POST"])
@school_required
def info() -> str | Response | tuple[str, int]:
    """第一步：完善院校基础信息."""
    session = db.session()
    user = acting_user()
    school = school_info.own_school(session, user)
    form = school_info.info_form(engine().current_version(session, "declaration", school.province_code).forms)
    if request.method == "GET":
        return render_template("declarations/info.html", school=school, form=form,
                               values=school_info.known_values(school, user), errors={})
    values, errors, typed = parse_submission(form, request.form)
    if not errors:
        try:
            school_info.save_info(session, user, form, values)
        except (Forbidden, NotFound):
            raise
        except ServiceError as exc:
            errors = exc.field_errors or {"__all__": exc.message}
    if errors:
        return render_template("declarations/info.html", school=school, form=form, values=typed, errors=errors), 422
    flash("院校基础信息已保存", "success")
    return redirect(url_for("school.dashboard"))


@bp.route("/declarations/new", methods=["GET", "POST"])
@school_required
def new_declaration() -> str | Response | tuple[str, int]:
    """申请新的证书试点 / 【申报证书试点】: straight to the form; what the school's basic information still lacks is
    asked inline (user guide flow 二 has no separate step for it)."""
    session = db.session()
    user = acting_user()
    context = decl_service.new_declaration_context(session, user)
    school, window, form = context
    if form is None:
        return render_template("declarations/closed.html", window=window), 403
    if request.method == "GET":
        return _form_page(form, window, None, {})
    return _save_posted(form, window, None,
                        lambda values, action: decl_service.create_declaration(session, user, values, action,
                                                                               context=context, validated=True))


@bp.get("/declarations/<int:declaration_id>")
@school_required
def declaration(declaration_id: int) -> str:
    """One declaration: its content, status and history."""
    session = db.session()
    decl = decl_service.get_declaration(session, acting_user(), declaration_id)
    return render_template("declarations/declaration.html", declaration=decl,
                           editable=decl_service.school_task_open(session, decl) is not None,
                           locked_reason=school_status.locked_reason(decl, decl.plan.is_open(clock.now())),
                           history=decl_service.history(session, decl.id),
                           majors=decl_service.major_names(session, list(decl.majors)))


@bp.route("/declarations/<int:declaration_id>/edit", methods=["GET", "POST"])
@school_required
def edit_declaration(declaration_id: int) -> str | Response | tuple[str, int]:
    """Edit a draft or a declaration sent back by the reviewer."""
    session = db.session()
    user = acting_user()
    decl, form = decl_service.edit_context(session, user, declaration_id)
    window = decl_service.window(session, decl.province_code)
    if request.method == "GET":
        values = {"certificate_id": str(decl.certificate_id), "level": decl.level, "majors": list(decl.majors),
                  "trainee_count": str(decl.trainee_count or ""), "teachers": decl.teachers,
                  "facilities": decl.facilities}
        return _form_page(form, window, decl, values)
    return _save_posted(form, window, decl,
                        lambda values, action: decl_service.update_declaration(session, user, declaration_id,
                                                                               values, action))


def _info_form() -> tuple[Any, FormSpec]:
    session = db.session()
    school = school_info.own_school(session, acting_user())
    return school, school_info.info_form(engine().current_version(session, "declaration", school.province_code).forms)


def _form_page(form: FormSpec, window: Any, declaration: Declaration | None, values: dict[str, Any],
               errors: dict[str, str] | None = None, info_typed: dict[str, Any] | None = None,
               info_fields: list[Any] | None = None, status: int = 200) -> tuple[str, int]:
    """The declaration form, with the basic information the school has not given yet asked inline."""
    school, info_form = _info_form()
    user = acting_user()
    if info_fields is None:
        info_fields = school_info.missing_fields(info_form, school, user)
    info_values = {k: str(v) for k, v in school_info.known_values(school, user).items()}
    info_values.update(info_typed or {})
    return render_template("declarations/declaration_form.html", form=form, values=values, errors=errors or {},
                           window=window, declaration=declaration, info_fields=info_fields,
                           info_values=info_values, fresh=request.method == "GET"), status


def _save_posted(form: FormSpec, window: Any, declaration: Declaration | None,
                 save: Callable[[dict[str, Any], str], Declaration]) -> Response | tuple[str, int]:
    """Check the posted declaration form, save or submit it, and answer with the page or the errors."""
    action = request.form.get("action", decl_service.ACTION_SAVE)
    values, errors, typed = parse_submission(form, request.form, decl_service.required_fields(action))
    school, info_form = _info_form()
    asked = school_info.missing_fields(info_form, school, acting_user())  # before the answers change the school
    info_errors, info_typed = school_info.save_missing(acting_user(), info_form, school, request.form,
                                                       complete=action == decl_service.ACTION_SUBMIT)
    errors.update(info_errors)
    saved = None
    if not errors:
        try:
            saved = save(values, action)
        except (Forbidden, NotFound):
            raise
        except ServiceError as exc:
            errors = exc.field_errors or {"__all__": exc.message}
    if errors or saved is None:
        return _form_page(form, window, declaration, typed, errors, info_typed, asked, 422)
    flash("已提交审核，请等待省级教育行政部门审核" if action == decl_service.ACTION_SUBMIT
          else "已保存草稿，可继续修改后再提交审核", "success")
    flash(request.path, FORM_SAVED)
    return redirect(url_for("school.declaration", declaration_id=saved.id))


@bp.post("/declarations/<int:declaration_id>/delete")
@school_required
def delete_declaration(declaration_id: int) -> Response:
    """Delete an unsubmitted draft."""
    decl_service.delete_declaration(db.session(), acting_user(), declaration_id)
    flash("草稿已删除", "success")
    return redirect(url_for("school.dashboard"))
