"""Province admin pages: declaration plans (发布申报计划)."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app import clock
from app.core.errors import Forbidden, NotFound, ServiceError
from app.extensions import db
from app.plans import services as plan_service
from app.plans.models import PLAN_STATUS_LABELS
from app.web.context import acting_user

bp = Blueprint("province", __name__, url_prefix="/province")
NAV_ITEMS = [(30, ("province_admin",), "申报计划", "province.plans")]


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Allow only province admins."""
    @wraps(view)
    @login_required
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_user.role != "province_admin":
            abort(403)
        return view(*args, **kwargs)
    return wrapper


def _form_values(plan: Any = None) -> dict[str, Any]:
    if plan is None:
        return {"announce_days": "7", "certificate_ids": []}
    return {"name": plan.name, "starts_at": clock.format_local(plan.starts_at),
            "ends_at": clock.format_local(plan.ends_at), "review_deadline": clock.format_local(plan.review_deadline),
            "announce_days": str(plan.announce_days), "certificate_ids": [str(c.certificate_id) for c in plan.certificates],
            "contact_name": plan.contact_name, "contact_phone": plan.contact_phone, "notes": plan.notes}


def _typed() -> dict[str, Any]:
    values: dict[str, Any] = {k: request.form.get(k, "") for k in (
        "name", "starts_at", "ends_at", "review_deadline", "announce_days", "contact_name", "contact_phone", "notes")}
    values["certificate_ids"] = request.form.getlist("certificate_ids")
    return values


@bp.get("/plans")
@admin_required
def plans() -> str:
    """The province's declaration plans."""
    return render_template("plans/plans.html", plans=plan_service.province_plans(db.session(), acting_user()),
                           labels=PLAN_STATUS_LABELS, now=clock.now())


@bp.route("/plans/new", methods=["GET", "POST"])
@admin_required
def new_plan() -> str | Response | tuple[str, int]:
    """发布申报计划."""
    session = db.session()
    certs = plan_service.certificates(session)
    if request.method == "GET":
        return render_template("plans/plan_form.html", values=_form_values(), errors={}, certificates=certs,
                               plan=None)
    if request.form.get("edit") == "1":  # 返回修改 from the confirmation
        return render_template("plans/plan_form.html", values=_typed(), errors={}, certificates=certs, plan=None)
    data, errors = plan_service.parse_plan_form(request.form)
    try:
        if request.form.get("confirmed") != "1":  # say what will happen first
            preview = plan_service.preview_plan(session, acting_user(), data, errors)
            return render_template("plans/plan_confirm.html", preview=preview, values=_typed())
        plan = plan_service.publish_plan(session, acting_user(), data, errors)
    except (Forbidden, NotFound):
        raise
    except ServiceError as exc:
        return render_template("plans/plan_form.html", values=_typed(), errors=exc.field_errors or
                               {"__all__": exc.message}, certificates=certs, plan=None), 422
    flash("申报计划已发布，学校将在申报开始时间后看到并可申报", "success")
    return redirect(url_for("province.plan", plan_id=plan.id))


@bp.get("/plans/<int:plan_id>")
@admin_required
def plan(plan_id: int) -> str:
    """A plan: its window, certificates, history; edit, withdraw or extend."""
    session = db.session()
    p = plan_service.get_plan(session, acting_user(), plan_id)
    return render_template("plans/plan.html", plan=p, labels=PLAN_STATUS_LABELS, now=clock.now(),
                           history=plan_service.plan_history(session, p), errors={}, values={})


@bp.route("/plans/<int:plan_id>/edit", methods=["GET", "POST"])
@admin_required
def edit_plan(plan_id: int) -> str | Response | tuple[str, int]:
    """Edit a plan that has not opened yet."""
    session = db.session()
    p = plan_service.get_plan(session, acting_user(), plan_id)
    certs = plan_service.certificates(session)
    if request.method == "GET":
        return render_template("plans/plan_form.html", values=_form_values(p), errors={}, certificates=certs, plan=p)
    data, errors = plan_service.parse_plan_form(request.form)
    try:
        plan_service.edit_plan(session, acting_user(), plan_id, data, errors)
    except (Forbidden, NotFound):
        raise
    except ServiceError as exc:
        return render_template("plans/plan_form.html", values=_typed(), errors=exc.field_errors or
                               {"__all__": exc.message}, certificates=certs, plan=p), 422
    flash("申报计划已修改", "success")
    return redirect(url_for("province.plan", plan_id=plan_id))


@bp.post("/plans/<int:plan_id>/withdraw")
@admin_required
def withdraw_plan(plan_id: int) -> Response:
    """Withdraw a plan that has not opened yet."""
    plan_service.withdraw_plan(db.session(), acting_user(), plan_id)
    flash("申报计划已撤回", "success")
    return redirect(url_for("province.plans"))


@bp.post("/plans/<int:plan_id>/extend")
@admin_required
def extend_plan(plan_id: int) -> str | Response | tuple[str, int]:
    """Extend the 申报截止时间 of an open plan."""
    session = db.session()
    try:
        plan_service.extend_deadline(session, acting_user(), plan_id, request.form.get("ends_at", ""),
                                     request.form.get("reason", ""))
    except (Forbidden, NotFound):
        raise
    except ServiceError as exc:
        p = plan_service.get_plan(session, acting_user(), plan_id)
        session.rollback()
        return render_template("plans/plan.html", plan=p, labels=PLAN_STATUS_LABELS, now=clock.now(),
                               history=plan_service.plan_history(session, p), errors=exc.field_errors,
                               values={"ends_at": request.form.get("ends_at", ""),
                                       "reason": request.form.get("reason", "")}), 422
    flash("申报截止时间已延长，已记录操作人和原因", "success")
    return redirect(url_for("province.plan", plan_id=plan_id))
