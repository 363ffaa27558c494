"""School pages: 证书管理 → 证书试点申报, 基础信息, declarations."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.accounts.models import ROLE_SCHOOL
from app.core.errors import Forbidden, NotFound, ServiceError
from app.declarations import school_info
from app.declarations import services as decl_service
from app.declarations.models import Declaration
from app.engine import engine
from app.extensions import db
from app.forms import FormSpec, parse_submission
from app.plans.announcement import school_results
from app.web.context import acting_user

bp = Blueprint("school", __name__, url_prefix="/school")
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
    return render_template(
        "declarations/dashboard.html", school=school, window=decl_service.window(session, school.province_code),
        plans=decl_service.plans_of_province(session, school.province_code),
        declarations=declarations, inbox=inbox, task_open={d.id: d.id in editable for d in declarations},
        results=school_results(session, school.id),
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
                               values=school_info.current_values(school), errors={})
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
    """申请新的证书试点."""
    session = db.session()
    user = acting_user()
    context = decl_service.new_declaration_context(session, user)
    school, window, form = context
    if school.info_completed_at is None:
        flash("请先完成第一步“完善院校基础信息”，再申报证书试点", "warning")
        return redirect(url_for("school.info"))
    if form is None:
        return render_template("declarations/closed.html", window=window), 403
    if request.method == "GET":
        return render_template("declarations/declaration_form.html", form=form, values={}, errors={}, window=window,
                               declaration=None)
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
                  "trainee_count": str(decl.trainee_count), "teachers": decl.teachers, "facilities": decl.facilities}
        return render_template("declarations/declaration_form.html", form=form, values=values, errors={}, window=window,
                               declaration=decl)
    return _save_posted(form, window, decl,
                        lambda values, action: decl_service.update_declaration(session, user, declaration_id,
                                                                               values, action))


def _save_posted(form: FormSpec, window: Any, declaration: Declaration | None,
                 save: Callable[[dict[str, Any], str], Declaration]) -> Response | tuple[str, int]:
    """Check the posted declaration form, save or submit it, and answer with the page or the errors."""
    values, errors, typed = parse_submission(form, request.form)
    action = request.form.get("action", decl_service.ACTION_SAVE)
    saved = None
    if not errors:
        try:
            saved = save(values, action)
        except (Forbidden, NotFound):
            raise
        except ServiceError as exc:
            errors = exc.field_errors or {"__all__": exc.message}
    if errors or saved is None:
        return render_template("declarations/declaration_form.html", form=form, values=typed, errors=errors,
                               window=window, declaration=declaration), 422
    flash("已提交审核，请等待省级教育行政部门审核" if action == decl_service.ACTION_SUBMIT
          else "已保存草稿，可继续修改后再提交审核", "success")
    return redirect(url_for("school.declaration", declaration_id=saved.id))


@bp.post("/declarations/<int:declaration_id>/delete")
@school_required
def delete_declaration(declaration_id: int) -> Response:
    """Delete an unsubmitted draft."""
    decl_service.delete_declaration(db.session(), acting_user(), declaration_id)
    flash("草稿已删除", "success")
    return redirect(url_for("school.dashboard"))
