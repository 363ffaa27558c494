"""Dashboards (统计) for the province admin and the ministry admin, and the province's Excel export."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Response, abort, render_template, request
from flask_login import current_user, login_required
from werkzeug.wsgi import wrap_file

from app.dashboards import services as reports
from app.extensions import db
from app.plans.views import admin_required
from app.web.context import acting_user

bp = Blueprint("dashboard", __name__)
NAV_ITEMS = [
    (40, ("province_admin",), "统计", "dashboard.province"),
    (40, ("ministry_admin",), "全国统计", "dashboard.ministry"),
]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def ministry_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Allow only ministry admins."""
    @wraps(view)
    @login_required
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_user.role != "ministry_admin":
            abort(403)
        return view(*args, **kwargs)
    return wrapper


def _plan_id() -> int | None:
    return request.args.get("plan_id", type=int) or None


@bp.get("/province/dashboard")
@admin_required
def province() -> str:
    """The province's figures: by status, certificate and city, and the reviewers' workload."""
    board = reports.province_dashboard(db.session(), acting_user(), _plan_id())
    return render_template("dashboards/province.html", board=board)


@bp.get("/province/dashboard/export")
@admin_required
def export() -> Response:
    """Download a plan's declarations and results as an Excel workbook."""
    plan_id = _plan_id()
    if plan_id is None:
        abort(404)
    result = reports.export_plan(db.session(), acting_user(), plan_id)
    response = Response(wrap_file(request.environ, result.file), mimetype=XLSX, direct_passthrough=True)
    response.headers["Content-Disposition"] = result.content_disposition
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/ministry/dashboard")
@ministry_required
def ministry() -> str:
    """The national figures with a province breakdown."""
    board = reports.ministry_dashboard(db.session(), acting_user(), _plan_id())
    return render_template("dashboards/ministry.html", board=board)
