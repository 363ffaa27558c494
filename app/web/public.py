"""Public pages: the entrance."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

bp = Blueprint("public", __name__)


@bp.get("/")
def home() -> str | Response:
    """Show the entrance where users choose 院校 or 管理部门."""
    if current_user.is_authenticated:
        return redirect(url_for("auth.after_login"))
    return render_template("home.html")


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    """Answer a load balancer's health check."""
    return {"status": "ok"}
