"""Blueprints, the request's single commit point, and error pages."""
from __future__ import annotations

from typing import Any

from flask import Flask, flash, redirect, render_template, request, session, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response

from app import clock
from app.accounts import role_views, school_account_views, staff_views
from app.accounts import views as auth_views
from app.accounts.models import ACCOUNT_STATUS_LABELS
from app.accounts.services import load_user
from app.core.errors import Forbidden, NotFound, ServiceError
from app.dashboards import views as dashboard_views
from app.declarations import views as school_views
from app.declarations.lifecycle import ACTION_LABELS
from app.extensions import db, login_manager
from app.plans import views as plan_views
from app.processes import manual as process_manual
from app.processes import scenario_views
from app.processes import views as process_views
from app.review import inbox_views
from app.review import views as review_views
from app.sms import template_views as sms_template_views
from app.sms import views as sms_views
from app.sms.models import SMS_STATUS_LABELS
from app.web import control_characters, error_pages, public
from app.web.converters import RowIdConverter

# Every domain's views (each module has a blueprint `bp`, and may offer NAV_ITEMS).
VIEW_MODULES: tuple[Any, ...] = (public, auth_views, school_views, review_views, inbox_views, plan_views,
                                 school_account_views, staff_views, role_views, process_views, scenario_views, process_manual,
                                 dashboard_views, sms_views,
                                 sms_template_views)


# Forms anyone may post (no session to lose): an expired token there is only the page grown old.
PUBLIC_FORMS = frozenset({"auth.login", "auth.register"})
BUSY = "系统暂时无法完成该操作，您的数据未被修改。请稍后重试。"
BUSY_PAGE = (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>系统繁忙</title></head>'
             f"<body><h1>系统繁忙</h1><p>{BUSY}</p></body></html>")


def register_blueprints(app: Flask) -> None:
    """Attach blueprints, hooks and error pages."""
    app.url_map.converters["int"] = RowIdConverter
    nav: list[tuple[int, tuple[str, ...], str, str]] = []
    for module in VIEW_MODULES:
        app.register_blueprint(module.bp)
        # NAV_ITEMS: (order, roles, label, endpoint) — menu entries a module offers to those roles.
        nav.extend(getattr(module, "NAV_ITEMS", []))
    app.config["XPILOT_NAV"] = sorted(nav)

    control_characters.init_app(app)

    login_manager.login_view = "auth.login"
    login_manager.login_message = "请先登录"

    @login_manager.user_loader
    def _load_user(token: str) -> Any:
        return load_user(db.session(), token)

    @app.before_request
    def _force_password_change() -> Response | None:
        if (current_user.is_authenticated and current_user.must_change_password
                and not session.get(auth_views.PASSWORD_PROMPT)
                and request.endpoint not in ("auth.change_password", "auth.logout", "static")):
            flash("首次登录请先修改初始密码", "warning")
            return redirect(url_for("auth.change_password"))
        return None

    @app.after_request
    def _commit(response: Response) -> Response:
        session = db.session()
        if response.status_code < 400:
            session.commit()
        else:
            session.rollback()
        return response

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> tuple[str, int] | Response:
        db.session.rollback()
        if not current_user.is_authenticated and request.endpoint not in PUBLIC_FORMS:
            # The session ended (expired or signed out elsewhere): what was typed is kept in the browser
            # (static/js/form-keeper.js) and offered again after signing in.
            flash("登录已过期，请重新登录。您刚才填写的内容没有丢失：已保留在本浏览器中，登录后打开原来的表单会自动恢复。",
                  "warning")
            return redirect(url_for("auth.login"))
        return render_template(
            "error.html", title="页面已过期", back_to=request.path if request.method == "POST" else None,
            message="页面已过期（表单令牌失效），这次提交没有保存。您填写的内容已保留在本浏览器中："
                    "点击“回到表单”会自动恢复，检查后再保存或提交。"), 400

    @app.errorhandler(NotFound)
    def _not_found(exc: NotFound) -> tuple[str, int]:
        db.session.rollback()
        return error_pages.not_found(exc.message)

    @app.errorhandler(Forbidden)
    def _forbidden(exc: Forbidden) -> tuple[str, int]:
        db.session.rollback()
        return error_pages.forbidden(exc.message)

    @app.errorhandler(ServiceError)
    def _service_error(exc: ServiceError) -> tuple[str, int]:
        db.session.rollback()
        return render_template("error.html", title="操作未完成", message=exc.message), 400

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> tuple[str, int]:
        if isinstance(exc, InternalServerError):  # an exception after the view (its commit, say): Flask wraps it
            return _busy()
        db.session.rollback()
        if exc.code == 404:
            return error_pages.not_found()
        if exc.code == 403:
            return error_pages.forbidden()
        messages = {404: "页面不存在", 403: "无权访问", 405: "请求方式不正确", 413: "上传内容过大", 429: "请求过于频繁"}
        return render_template("error.html", title=messages.get(exc.code or 0, "请求有误"),
                               message=messages.get(exc.code or 0, exc.description or "")), exc.code or 400

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[str, int]:
        app.logger.exception("unhandled error")
        return _busy()

    def _busy() -> tuple[str, int]:
        try:
            db.session.rollback()
            return render_template("error.html", title="系统繁忙", message=BUSY), 503
        except Exception:  # the page needs the database too (the signed-in user), and it is what just failed
            app.logger.exception("the error page could not be rendered either")
            return BUSY_PAGE, 503

    app.jinja_env.filters["local"] = clock.format_local
    app.jinja_env.globals["sms_status_label"] = SMS_STATUS_LABELS.get
    app.jinja_env.globals["account_status_label"] = lambda status: ACCOUNT_STATUS_LABELS.get(status, status)
    app.jinja_env.globals["action_label"] = lambda action: ACTION_LABELS.get(action, action)
