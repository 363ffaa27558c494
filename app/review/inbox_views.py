"""我的待办: the open tasks of any staff role, including review roles added by analysts."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.core.errors import Forbidden, NotFound, ServiceError
from app.declarations import services as decl_service
from app.extensions import db
from app.forms import parse_submission
from app.review import inbox as task_service
from app.web.context import acting_user

bp = Blueprint("tasks", __name__, url_prefix="/tasks")
NAV_ITEMS = [(25, ("province_admin",), "我的待办", "tasks.inbox")]


@bp.get("/")
@login_required
def inbox() -> str:
    """The user's open tasks."""
    if current_user.role == "school":
        abort(403)
    session = db.session()
    rows = task_service.inbox(session, acting_user())
    return render_template("review/inbox.html", rows=rows, limit=task_service.INBOX_LIMIT,
                           registrants=task_service.registrants(session, [row.task for row in rows]))


@bp.route("/<int:task_id>", methods=["GET", "POST"])
@login_required
def task(task_id: int) -> str | Response | tuple[str, int]:
    """Do one task through its form."""
    session = db.session()
    user = acting_user()
    human_task, decl, form = task_service.task_context(session, user, task_id)
    subject = task_service.task_subjects(session, [human_task]).get((human_task.subject_type, human_task.subject_id))
    context = {"task": human_task, "declaration": decl, "form": form, "subject": subject or task_service.TaskSubject(),
               "registrant": task_service.registrants(session, [human_task]).get(human_task.id),
               "history": decl_service.history(session, decl.id) if decl else [],
               "majors": decl_service.major_names(session, list(decl.majors)) if decl else {}}
    if request.method == "GET":
        return render_template("review/task.html", values={}, errors={}, **context)
    values, errors, typed = parse_submission(form, request.form)
    if not errors:
        try:
            task_service.complete(session, user, task_id, values)
        except (Forbidden, NotFound):
            raise
        except ServiceError as exc:
            errors = exc.field_errors or {"__all__": exc.message}
    if errors:
        return render_template("review/task.html", values=typed, errors=errors, **context), 422
    flash(f"“{human_task.title}”已办理", "success")
    return redirect(url_for("tasks.inbox"))
