"""Staff administration pages: the SMS outbox."""
from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask_login import current_user, login_required

from app.extensions import db
from app.models.user import ROLE_ANALYST, ROLE_MINISTRY_ADMIN
from app.services.outbox import newest_messages

bp = Blueprint("admin", __name__, url_prefix="/admin")
NAV_ITEMS = [(90, ("ministry_admin", "analyst"), "短信记录", "admin.outbox")]


@bp.get("/outbox")
@login_required
def outbox() -> str:
    """Show the newest text messages with their status (staff only)."""
    if current_user.role not in (ROLE_MINISTRY_ADMIN, ROLE_ANALYST):
        abort(403)
    phone = request.args.get("phone", "").strip() or None
    return render_template("admin/outbox.html", messages=newest_messages(db.session(), phone=phone, limit=200),
                           phone=phone or "")
