"""Public pages: the entrance."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from app import clock
from app.extensions import db
from app.plans.announcement import announcement as load
from app.plans.announcement import public_plans

bp = Blueprint("public", __name__)


@bp.get("/")
def home() -> str | Response:
    """Show the entrance where users choose 院校 or 管理部门."""
    if current_user.is_authenticated:
        return redirect(url_for("auth.after_login"))
    return render_template("home.html")


@bp.get("/announcements")
def announcements() -> str:
    """审核结果公示: every plan whose results are public."""
    return render_template("public/announcements.html", plans=public_plans(db.session()))


@bp.get("/announcements/<int:plan_id>")
def announcement(plan_id: int) -> str:
    """审核结果公示 of one plan: approved schools and certificates (no login)."""
    plan, province, lines = load(db.session(), plan_id)
    return render_template("public/announcement.html", plan=plan, province=province, lines=lines, now=clock.now())


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    """Answer a load balancer's health check."""
    return {"status": "ok"}
