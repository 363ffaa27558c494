"""Staff administration pages: the record of text messages (短信记录)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_required
from werkzeug.wrappers import Response

from app.core.errors import Forbidden, NotFound, ServiceError
from app.extensions import db
from app.sms import outbox as outbox_service
from app.web.context import acting_user

bp = Blueprint("admin", __name__, url_prefix="/admin")
NAV_ITEMS = [(90, ("province_admin", "ministry_admin", "analyst"), "短信记录", "admin.outbox")]


def _filters(source: Mapping[str, str]) -> dict[str, Any]:
    """The list's filters (phone, status, page) as given in a query string or a form."""
    return {key: source.get(key, "").strip() for key in ("phone", "status", "page") if source.get(key, "").strip()}


@bp.get("/outbox")
@login_required
def outbox() -> str:
    """Every text message in the user's scope with its status, filtered by phone and status, a page at a time."""
    filters = _filters(request.args)
    page = outbox_service.list_messages(db.session(), acting_user(), phone=filters.get("phone", ""),
                                        status=filters.get("status", ""),
                                        page=request.args.get("page", 1, type=int) or 1)
    bulk = outbox_service.bulk_sends(db.session(), acting_user())
    return render_template("sms/outbox.html", page=page, filters=filters, statuses=outbox_service.STATUS_FILTERS,
                           bulk=bulk)


@bp.post("/outbox/<int:message_id>/resend")
@login_required
def resend(message_id: int) -> Response:
    """重新发送: put a failed or 状态未知 message back in the queue."""
    try:
        message = outbox_service.resend_message(db.session(), acting_user(), message_id)
    except (Forbidden, NotFound):
        raise
    except ServiceError as exc:
        flash(exc.message, "error")
    else:
        flash(f"短信 #{message.id} 已重新加入发送队列", "success")
    return redirect(url_for("admin.outbox", **_filters(request.form)))
