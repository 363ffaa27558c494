"""Login, logout, registration, password change."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask import session as flask_session
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from app.accounts import registration
from app.accounts.login_throttle import LoginLimits
from app.accounts.models import ROLE_SCHOOL, User
from app.accounts.phone_codes import CodeRules
from app.accounts.school_accounts import mask_phone
from app.accounts.services import AccountError, change_password, end_sessions, log_in
from app.core import ratelimit
from app.core.errors import ServiceError
from app.declarations.services import settings_limits
from app.extensions import db
from app.web.context import acting_user, client_ip

bp = Blueprint("auth", __name__)
# Set in the session a registration signed in: the registrant saw the generated password on the screen, so changing
# it is offered on every page rather than demanded first (a later login with it is asked to change it).
PASSWORD_PROMPT = "xpilot_password_prompt"


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
    flask_session.pop(PASSWORD_PROMPT, None)
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
    """立即注册: province/city, then the school from the official list, then the mobile phone and the code texted to
    it (获取验证码 posts the same form and shows it again with what was typed)."""
    session = db.session()
    provinces = registration.provinces(session)
    form = {k: request.form.get(k, "").strip() for k in ("province", "city", "school", "phone", "sms_code")}
    cities = registration.cities(session, form["province"]) if form["province"] else []
    page = {"provinces": provinces, "cities": cities, "form": form, "errors": {}}
    if request.method == "GET":
        return render_template("accounts/register.html", **page)
    typed = registration.RegistrationForm(form["province"], form["city"], form["school"], form["phone"], form["sms_code"])
    settings = current_app.config["XPILOT"]
    rules = CodeRules.from_settings(settings)
    try:
        if request.form.get("action") == "send_code":
            phone = registration.request_code(session, typed, ip=client_ip(), rules=rules, limits=settings_limits())
            form["sms_code"] = ""
            return render_template("accounts/register.html", **page, code_sent=mask_phone(phone),
                                   code_minutes=rules.minutes)
        result = registration.register_school(session, typed, ip=client_ip(), rules=rules, limits=settings_limits())
    except ServiceError as exc:
        status = 429 if isinstance(exc, ratelimit.RateLimited) else 422
        errors = exc.field_errors or {"__all__": exc.message}
        return render_template("accounts/register.html", **{**page, "errors": errors}, message=exc.message), status
    if result.active:
        login_user(session.get(User, result.user_id))
        flask_session[PASSWORD_PROMPT] = True
    return render_template("accounts/registered.html", result=result, phone=mask_phone(result.phone))


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
    flask_session.pop(PASSWORD_PROMPT, None)
    flash("密码已修改", "success")
    return redirect(url_for("auth.after_login"))

