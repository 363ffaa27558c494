"""Provincial review pages: the queue, 领取 / 释放, one declaration's 审核, and 批量审核通过."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from app.core.errors import Forbidden, NotFound, ServiceError
from app.extensions import db
from app.forms import parse_submission
from app.masterdata.models import CERTIFICATE_LEVELS
from app.review import services as review_service
from app.web.context import acting_user

bp = Blueprint("review", __name__, url_prefix="/review")
NAV_ITEMS = [(20, ("province_reviewer", "province_admin"), "审核", "review.queue")]
QUEUE_DEFAULTS = {"status": "", "sort": "submitted", "per_page": "20"}  # left out of the pager's links


def reviewer_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Allow only provincial staff."""
    @wraps(view)
    @login_required
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_user.role not in ("province_reviewer", "province_admin"):
            abort(403)
        return view(*args, **kwargs)
    return wrapper


def _queue_query(query: str) -> str:
    """The queue's own parameters of a query string (its filters, sort and page), to carry from page to page."""
    return urlencode([(k, v) for k, v in parse_qsl(query) if k in review_service.QUERY_KEYS])


def _with_query(url: str, query: str) -> str:
    return f"{url}?{query}" if query else url


def _back(declaration_id: int | None = None) -> str:
    """Return where an action goes back to: the review page, or the queue with its filters kept."""
    query = _queue_query(request.form.get("q", ""))
    if declaration_id is not None and request.form.get("back") == "review":
        return _with_query(url_for("review.review", declaration_id=declaration_id), query)
    return _with_query(url_for("review.queue"), query)


@bp.get("/")
@reviewer_required
def queue() -> tuple[str, int]:
    """The province's declarations waiting for review (or of a status), filtered, sorted and paged."""
    page = review_service.queue_page(db.session(), acting_user(), request.args)
    kept: dict[str, Any] = {k: v for k, v in page.form.items() if v and k != "page" and QUEUE_DEFAULTS.get(k) != v}

    def page_url(number: int) -> str:
        return url_for("review.queue", **({**kept, "page": number} if number > 1 else kept))

    html = render_template("review/queue.html", page=page, f=page.filters, page_url=page_url,
                           sorts=review_service.SORTS, per_pages=review_service.PER_PAGE_CHOICES,
                           levels=CERTIFICATE_LEVELS, bulk_limit=review_service.BULK_LIMIT,
                           q=_queue_query(request.query_string.decode("utf-8", "replace")))
    return html, 422 if page.errors else 200


@bp.post("/declarations/<int:declaration_id>/claim")
@reviewer_required
def claim(declaration_id: int) -> Response:
    """领取 a waiting declaration."""
    review_service.claim(db.session(), acting_user(), declaration_id)
    flash("已领取该申报：在您审核或释放之前，其他审核员不能审核它", "success")
    return redirect(_back(declaration_id))


@bp.post("/declarations/<int:declaration_id>/release")
@reviewer_required
def release(declaration_id: int) -> Response:
    """释放 a claimed declaration."""
    review_service.release(db.session(), acting_user(), declaration_id)
    flash("已释放该申报，其他审核员可以领取", "success")
    return redirect(_back(declaration_id))


@bp.post("/bulk-approve")
@reviewer_required
def bulk_approve() -> Response | str:
    """批量审核通过 the checked declarations, once confirmed on a page that says what will happen; report the
    skipped ones by name."""
    ids = request.form.getlist("ids", type=int)
    try:
        if request.form.get("confirmed") != "1":
            preview = review_service.bulk_preview(db.session(), acting_user(), ids)
            return render_template("review/bulk_confirm.html", preview=preview,
                                   q=_queue_query(request.form.get("q", "")), with_query=_with_query)
        outcome = review_service.bulk_approve(db.session(), acting_user(), ids)
    except (Forbidden, NotFound):
        raise
    except ServiceError as exc:
        flash(exc.message, "error")
        return redirect(_back())
    if outcome.approved:
        flash(f"已批量审核通过 {len(outcome.approved)} 条申报，学校将收到短信通知", "success")
    if outcome.skipped:
        reasons = "；".join(f"{name}：{reason}" for name, reason in outcome.skipped)
        flash(f"以下 {len(outcome.skipped)} 条申报未审核通过：{reasons}", "warning")
    return redirect(_back())


@bp.route("/declarations/<int:declaration_id>", methods=["GET", "POST"])
@reviewer_required
def review(declaration_id: int) -> str | Response | tuple[str, int]:
    """审核 one declaration: the whole declaration, the school, its history, and the decision."""
    session = db.session()
    user = acting_user()
    if request.method == "GET":
        query = _queue_query(request.query_string.decode("utf-8", "replace"))
        page = review_service.review_page(session, user, declaration_id, request.args)
        return render_template("review/review.html", page=page, values={}, errors={}, q=query,
                               with_query=_with_query)
    query = _queue_query(request.form.get("q", ""))
    context = review_service.review_context(session, user, declaration_id, for_update=True)
    values, errors, typed = parse_submission(context[2], request.form)
    if not errors:
        try:
            review_service.decide(session, user, declaration_id, values, context=context)
        except (Forbidden, NotFound):
            raise
        except ServiceError as exc:
            errors = exc.field_errors or {"__all__": exc.message}
    if errors:
        session.rollback()
        page = review_service.review_page(session, user, declaration_id, dict(parse_qsl(query)))
        return render_template("review/review.html", page=page, values=typed, errors=errors, q=query,
                               with_query=_with_query), 422
    flash("审核结果已提交，学校将收到短信通知", "success")
    if request.form.get("then") == "next":
        decl, task, _ = context
        following = review_service.next_in_queue(session, user, dict(parse_qsl(query)), decl, task)
        if following is not None:
            return redirect(_with_query(url_for("review.review", declaration_id=following), query))
        flash("这是队列中的最后一条申报，已返回审核队列", "info")
    return redirect(_with_query(url_for("review.queue"), query))
