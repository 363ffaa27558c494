"""Login, logout, registration, password change."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from app.accounts import registration
from app.accounts.login_throttle import LoginLimits
from app.accounts.models import ROLE_SCHOOL
from app.accounts.services import AccountError, change_password, end_sessions, log_in
from app.core import ratelimit
from app.core.errors import ServiceError
from app.declarations.services import settings_limits
from app.extensions import db
from app.web.context import acting_user, client_ip

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    """Log in with 账号 and 密码."""
    kind = request.args.get("kind", "school")
    if request.method == "GET":
        return render_template("accounts/login.html", kind=kind, username=request.args.get("username", ""), error=None)
    username = request.form.get("username", "").strip()
    try:
        user = log_in(db.session(), username, request.form.get("password", ""), client_ip(),
                      LoginLimits.from_settings(current_app.config["XPILOT"]))
    except ServiceError as exc:
        status = 429 if isinstance(exc, ratelimit.RateLimited) else 422
        return render_template("accounts/login.html", kind=kind, username=username, error=exc.message), status
    login_user(user)
    return redirect(url_for("auth.after_login"))


@bp.get("/after-login")
@login_required
def after_login() -> Response:
    """Send each role to its start page."""
    if current_user.role == ROLE_SCHOOL:
        return redirect(url_for("school.dashboard"))
    if current_user.role in ("province_reviewer", "province_admin"):
        return redirect(url_for("review.queue"))
    if current_user.role == "analyst":
        return redirect(url_for("processes.index"))
    if current_user.role == "ministry_admin":
        return redirect(url_for("dashboard.ministry"))
    return redirect(url_for("tasks.inbox"))


@bp.post("/logout")
def logout() -> Response:
    """Log out, ending every session of the account (a session cookie is only signed, so forgetting it here
    would leave a copy of it valid)."""
    if current_user.is_authenticated:
        end_sessions(db.session(), acting_user().id)
    logout_user()
    return redirect(url_for("public.home"))


@bp.route("/register", methods=["GET", "POST"])
def register() -> str | Response | tuple[str, int]:
    """立即注册: province/city, then the school from the official list, then the mobile phone."""
    session = db.session()
    provinces = registration.provinces(session)
    form = {k: request.form.get(k, "").strip() for k in ("province", "city", "school", "phone")}
    cities = registration.cities(session, form["province"]) if form["province"] else []
    if request.method == "GET":
        return render_template("accounts/register.html", provinces=provinces, cities=cities, form=form, errors={})
    try:
        result = registration.register_school(
            session, province_code=form["province"], city_code=form["city"], school_name=form["school"],
            phone=form["phone"], ip=client_ip(), limits=settings_limits())
    except ServiceError as exc:
        status = 429 if isinstance(exc, ratelimit.RateLimited) else 422
        errors = exc.field_errors or {"__all__": exc.message}
        return render_template("accounts/register.html", provinces=provinces, cities=cities, form=form,
                               errors=errors, message=exc.message), status
    return render_template("accounts/registered.html", result=result)


@bp.get("/register/cities")
def register_cities() -> Response:
    """Return the cities of a province for the registration form."""
    cities = registration.cities(db.session(), request.args.get("province", ""))
    return jsonify([{"code": c.code, "name": c.name} for c in cities])


@bp.get("/register/schools")
def register_schools() -> Response:
    """Return listed schools of a province matching the typed text."""
    province = request.args.get("province", "")
    schools = registration.search_schools(db.session(), province, request.args.get("q", "")[:50],
                                          request.args.get("city") or None)
    contact = registration.officer_contact(db.session(), province) if province else ""
    return jsonify({"schools": [s.name for s in schools], "contact": contact})


@bp.route("/password", methods=["GET", "POST"], endpoint="change_password")
@login_required
def change_password_page() -> str | Response | tuple[str, int]:
    """Change the password (required at the first login with a generated one)."""
    if request.method == "GET":
        return render_template("accounts/password.html", errors={})
    try:
        change_password(db.session(), acting_user().id, request.form.get("current", ""),
                        request.form.get("password", ""), request.form.get("confirm", ""))
    except AccountError as exc:
        return render_template("accounts/password.html", errors=exc.field_errors or {"__all__": exc.message}), 422
    db.session.commit()
    login_user(acting_user())  # the session token changed with the password
    flash("密码已修改", "success")
    return redirect(url_for("auth.after_login"))

