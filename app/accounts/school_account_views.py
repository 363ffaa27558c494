"""Province admin pages: school accounts (院校账号) — find a school, issue, reset, correct, release."""
from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app.accounts import school_accounts as service
from app.core.errors import Forbidden, NotFound, ServiceError
from app.core.ratelimit import RateLimited
from app.declarations.services import settings_limits
from app.extensions import db
from app.plans.views import admin_required
from app.web.context import acting_user

bp = Blueprint("schools_admin", __name__, url_prefix="/province/schools")
NAV_ITEMS = [(32, ("province_admin",), "院校账号", "schools_admin.schools")]

Outcome = str | Response | tuple[str, int]


@bp.get("")
@admin_required
def schools() -> str:
    """The province's official school list with account status: search, filter, pages."""
    query = request.args.get("q", "")
    registered = request.args.get("registered", "")
    page = max(1, request.args.get("page", 1, type=int) or 1)
    result = service.search_schools(db.session(), acting_user(), query, registered, page)
    return render_template("accounts/schools.html", result=result, q=query, registered=registered,
                           origins=service.ORIGIN_LABELS, mask=service.mask_phone)


def _page(school_id: int, errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
          status: int = 200) -> tuple[str, int]:
    detail = service.school_account(db.session(), acting_user(), school_id)
    return render_template("accounts/school.html", detail=detail, errors=errors or {}, values=values or {},
                           actions=service.ACTION_LABELS), status


@bp.get("/<int:school_id>")
@admin_required
def school(school_id: int) -> tuple[str, int]:
    """A school: its account, origin, last login, declarations, and what was done to the account."""
    return _page(school_id)


def _act(school_id: int, action: Callable[[], object], done: str) -> Outcome:
    """Run one account action; on refusal show the school page again with the reason."""
    try:
        action()
    except NotFound:
        raise
    except ServiceError as exc:
        db.session.rollback()
        status = 429 if isinstance(exc, RateLimited) else 403 if isinstance(exc, Forbidden) else 422
        errors = dict(exc.field_errors)
        errors.setdefault("__all__", exc.message)
        return _page(school_id, errors, {k: request.form.get(k, "") for k in ("phone", "reason")}, status)
    flash(done, "success")
    return redirect(url_for("schools_admin.school", school_id=school_id))


@bp.post("/<int:school_id>/issue")
@admin_required
def issue(school_id: int) -> Outcome:
    """Open an account for a school that has none; the password goes to the phone by SMS."""
    return _act(school_id, lambda: service.issue_school_account(
        db.session(), acting_user(), school_id, request.form.get("phone", ""), settings_limits()),
        "账号已开通，账号和初始密码将通过短信发送到登记的手机号")


@bp.post("/<int:school_id>/reset")
@admin_required
def reset(school_id: int) -> Outcome:
    """Reset the school's password; the new one goes to the registered phone by SMS."""
    return _act(school_id, lambda: service.reset_school_password(db.session(), acting_user(), school_id,
                                                                 settings_limits()),
                "密码已重置，新密码将通过短信发送到登记的手机号；该账号原有的登录已失效")


@bp.post("/<int:school_id>/phone")
@admin_required
def phone(school_id: int) -> Outcome:
    """Correct the phone registered for the school's account."""
    return _act(school_id, lambda: service.correct_phone(db.session(), acting_user(), school_id,
                                                         request.form.get("phone", "")),
                "注册手机号已更正")


@bp.post("/<int:school_id>/release")
@admin_required
def release(school_id: int) -> Outcome:
    """Release a registration made by the wrong person so that the school can register again."""
    return _act(school_id, lambda: service.release_registration(db.session(), acting_user(), school_id,
                                                                request.form.get("reason", "")),
                "已解除该院校的注册，院校可重新注册")
