"""Error pages that say why, what to do next and whom to contact."""
from __future__ import annotations

from flask import render_template, request, url_for
from flask_login import current_user

from app.accounts.registration import officer_contact
from app.extensions import db

GENERAL_CONTACT = "所在省级教育行政部门的 1+X 证书试点项目负责人"
NOT_FOUND_WHY = "您要打开的页面或记录不存在：链接可能有误或已失效，记录可能已被删除，或不属于您的账号。"
FORBIDDEN_WHY = "您的账号无权打开此页面或执行此操作。"


def contact() -> str:
    """Whom the signed-in user should contact: the officer of their province where known."""
    if not current_user.is_authenticated:
        return GENERAL_CONTACT
    province = current_user.province_code or (current_user.school.province_code if current_user.school else None)
    return officer_contact(db.session(), province) if province else GENERAL_CONTACT


def _next_steps(extra: str) -> list[str]:
    steps = [extra] if extra else []
    if current_user.is_authenticated:
        steps.append("从页面顶部的菜单重新进入要办理的事项。")
    else:
        steps.append(f"如果您还没有登录，请先登录（院校账号从首页“院校”进入）：{request.host_url.rstrip('/')}"
                     f"{url_for('auth.login')}")
    return steps


def not_found(message: str = "") -> tuple[str, int]:
    """The 404 page."""
    why = NOT_FOUND_WHY if not message or message == "页面不存在" else f"{message}。{NOT_FOUND_WHY}"
    return render_template("error.html", title="未找到", message=why.replace("。。", "。"),
                           steps=_next_steps("检查地址是否完整；如果是从短信或他人处得到的链接，请登录后从菜单进入。"),
                           contact=contact()), 404


def forbidden(message: str = "") -> tuple[str, int]:
    """The 403 page."""
    why = message if message and message != "无权访问" else FORBIDDEN_WHY
    return render_template("error.html", title="不能执行该操作", message=why,
                           steps=_next_steps("确认使用的是本单位的账号（院校账号只能办理本校的申报）；"
                                             "申报状态不允许的操作，请等待审核结果或按页面提示办理。"),
                           contact=contact()), 403
