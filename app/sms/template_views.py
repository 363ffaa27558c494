"""Analysts' pages of the SMS template registry (短信模板): list, add, edit with a preview on sample data, history."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_required
from werkzeug.wrappers import Response

from app.accounts.registration import provinces
from app.core.errors import ServiceError
from app.extensions import db
from app.sms import template_admin as service
from app.sms.models import NATIONAL, SmsTemplate
from app.sms.templates import TemplateError, placeholders
from app.web.context import acting_user

bp = Blueprint("sms_templates", __name__, url_prefix="/sms-templates")
NAV_ITEMS = [(62, service.EDITORS, "短信模板", "sms_templates.index")]
FIELDS = ("name", "scope", "label", "text", "provider_code", "note")


def _values() -> dict[str, str]:
    return {key: request.form.get(key, "").strip() for key in FIELDS}


def _samples(text: str) -> dict[str, str]:
    """The sample values typed on the page, for the placeholders of the text."""
    try:
        names = placeholders(text)
    except TemplateError:
        return {}
    return {name: request.form.get(f"sample_{name}", "").strip()[:100] for name in names}


def _province_names() -> dict[str, str]:
    return {p.code: p.name for p in provinces(db.session())}


@bp.get("")
@login_required
def index() -> str:
    """Every national template with the provinces' own texts of it."""
    groups = service.list_templates(db.session(), acting_user())
    return render_template("sms/templates.html", groups=groups, provinces=_province_names())


def _new_page(values: dict[str, str], errors: dict[str, str], status: int = 200) -> tuple[str, int]:
    preview = service.preview(values.get("text", ""), _samples(values.get("text", "")) if request.method == "POST" else {})
    return render_template("sms/template_new.html", values=values, errors=errors, preview=preview,
                           provinces=_province_names()), status


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new() -> Any:
    """新建模板: a national template, or a province's own text of a national one (?name=...&scope=...)."""
    session, user = db.session(), acting_user()
    service.require_editor(user)
    if request.method == "GET":
        return _new_page(service.new_values(session, request.args.get("name", ""),
                                            request.args.get("scope", NATIONAL)), {})
    values = _values()
    if request.form.get("action") == "preview":
        return _new_page(values, {})
    try:
        row = service.create_template(session, user, name=values["name"], scope=values["scope"],
                                      label=values["label"], text=values["text"],
                                      provider_code=values["provider_code"], note=values["note"])
    except ServiceError as exc:
        return _new_page(values, exc.field_errors or {"__all__": exc.message}, 422)
    flash(f"短信模板 {row.name}（{_province_names().get(row.scope, '全国')}）已保存为第 1 版", "success")
    return redirect(url_for("sms_templates.edit", template_id=row.id))


def _edit_page(row: SmsTemplate, values: dict[str, str], errors: dict[str, str], status: int = 200) -> tuple[str, int]:
    session = db.session()
    preview = service.preview(values["text"], _samples(values["text"]) if request.method == "POST" else {})
    return render_template("sms/template.html", t=row, values=values, errors=errors, preview=preview,
                           history=service.history(session, row.id), usages=service.usages(session, row.name, row.scope),
                           provinces=_province_names()), status


@bp.get("/<int:template_id>")
@login_required
def edit(template_id: int) -> Any:
    """A template: its text with a preview on sample data, where it is used, and its history."""
    row = service.get_template(db.session(), acting_user(), template_id)
    return _edit_page(row, {"label": row.label, "text": row.text, "provider_code": row.provider_code, "note": ""}, {})


@bp.post("/<int:template_id>")
@login_required
def save(template_id: int) -> Any:
    """预览 (fill the typed text with the sample data) or 保存新版本."""
    session, user = db.session(), acting_user()
    row = service.get_template(session, user, template_id)
    values = _values()
    if request.form.get("action") == "preview":
        return _edit_page(row, values, {})
    try:
        service.update_template(session, user, template_id, label=values["label"], text=values["text"],
                                provider_code=values["provider_code"], note=values["note"])
    except ServiceError as exc:
        return _edit_page(row, values, exc.field_errors or {"__all__": exc.message}, 422)
    flash(f"短信模板 {row.name} 已保存为第 {row.version} 版；已排队的短信保持原文字", "success")
    response: Response = redirect(url_for("sms_templates.edit", template_id=row.id))
    return response
