"""Ministry admin pages: province officer accounts (省级账号)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app.accounts import staff as service
from app.accounts.models import ROLE_LABELS
from app.accounts.staff import StaffCredentials
from app.core.errors import Forbidden, NotFound, ServiceError
from app.dashboards.views import ministry_required
from app.extensions import db
from app.web.context import acting_user

bp = Blueprint("staff_admin", __name__, url_prefix="/ministry/staff")
NAV_ITEMS = [(50, ("ministry_admin",), "省级账号", "staff_admin.staff")]
FORM_FIELDS = ("role", "username", "display_name", "phone", "province_code")


def _render(values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
            credentials: StaffCredentials | None = None, status: int = 200) -> Response:
    session = db.session()
    user = acting_user()
    province = request.args.get("province", "")
    html = render_template("accounts/staff.html", rows=service.list_staff(session, user, province),
                           provinces=service.provinces(session), province=province,
                           history=service.staff_history(session, user), values=values or {}, errors=errors or {},
                           credentials=credentials, roles=[(r, ROLE_LABELS[r]) for r in service.OFFICER_ROLES])
    response = make_response(html, status)
    if credentials is not None:
        response.headers["Cache-Control"] = "no-store"  # the password is shown this once only
    return response


@bp.get("")
@ministry_required
def staff() -> Response:
    """The province officer accounts, with the form to create one."""
    return _render()


@bp.post("")
@ministry_required
def create() -> Response:
    """Create a province officer; its generated initial password is shown once."""
    values: dict[str, Any] = {k: request.form.get(k, "") for k in FORM_FIELDS}
    try:
        created = service.create_officer(db.session(), acting_user(), **values)
    except (Forbidden, NotFound):
        raise
    except ServiceError as exc:
        db.session.rollback()
        return _render(values, exc.field_errors or {"__all__": exc.message}, status=422)
    return _render(credentials=created)


@bp.post("/<int:staff_id>/deactivate")
@ministry_required
def deactivate(staff_id: int) -> Response:
    """Deactivate a province officer account; its sessions end."""
    officer = service.set_active(db.session(), acting_user(), staff_id, False)
    flash(f"账号 {officer.username} 已停用", "success")
    return redirect(url_for("staff_admin.staff"))


@bp.post("/<int:staff_id>/reactivate")
@ministry_required
def reactivate(staff_id: int) -> Response:
    """Reactivate a province officer account."""
    officer = service.set_active(db.session(), acting_user(), staff_id, True)
    flash(f"账号 {officer.username} 已启用", "success")
    return redirect(url_for("staff_admin.staff"))


@bp.post("/<int:staff_id>/reset")
@ministry_required
def reset(staff_id: int) -> Response:
    """Reset a province officer's password; the new one is shown once."""
    return _render(credentials=service.reset_password(db.session(), acting_user(), staff_id))
