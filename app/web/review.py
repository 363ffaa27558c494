"""Provincial review pages."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.extensions import db
from app.forms import parse_submission
from app.services import declarations as decl_service
from app.services import review as review_service
from app.services.errors import Forbidden, NotFound, ServiceError
from app.web.forms_view import acting_user

bp = Blueprint("review", __name__, url_prefix="/review")
NAV_ITEMS = [(20, ("province_reviewer", "province_admin"), "审核", "review.queue")]


def reviewer_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Allow only provincial staff."""
    @wraps(view)
    @login_required
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_user.role not in ("province_reviewer", "province_admin"):
            abort(403)
        return view(*args, **kwargs)
    return wrapper


@bp.get("/")
@reviewer_required
def queue() -> str:
    """The province's declarations waiting for review."""
    page = max(1, request.args.get("page", 1, type=int) or 1)
    rows, total = review_service.queue(db.session(), acting_user(), page=page)
    return render_template("review/queue.html", rows=rows, total=total, page=page)


@bp.route("/declarations/<int:declaration_id>", methods=["GET", "POST"])
@reviewer_required
def review(declaration_id: int) -> str | Response | tuple[str, int]:
    """审核 one declaration: the whole declaration, the school, its history, and the decision."""
    session = db.session()
    user = acting_user()
    decl, task, form = review_service.review_context(session, user, declaration_id)
    context = {"declaration": decl, "task": task, "form": form, "school": review_service.school_of(session, decl),
               "history": decl_service.history(session, decl.id),
               "majors": decl_service.major_names(session, list(decl.majors))}
    if request.method == "GET":
        return render_template("review/review.html", values={}, errors={}, **context)
    values, errors, typed = parse_submission(form, request.form)
    if not errors:
        try:
            review_service.decide(session, user, declaration_id, values)
        except (Forbidden, NotFound):
            raise
        except ServiceError as exc:
            errors = exc.field_errors or {"__all__": exc.message}
    if errors:
        return render_template("review/review.html", values=typed, errors=errors, **context), 422
    flash("审核结果已提交，学校将收到短信通知", "success")
    return redirect(url_for("review.queue"))
