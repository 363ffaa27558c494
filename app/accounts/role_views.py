"""Roles that lanes name (角色): list them, add a role (province, city, certificates or national; perhaps of a
training-evaluation organisation), add an organisation, and add a role's users."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app.accounts import organisations
from app.accounts import roles as service
from app.accounts.role_models import SCOPE_CERTIFICATES, SCOPE_CITY, SCOPE_NATIONAL, SCOPE_PROVINCE
from app.accounts.roles import MemberCredentials
from app.core.errors import Forbidden, NotFound, ServiceError
from app.extensions import db
from app.processes.views import ANALYST_ROLES, analyst_required
from app.web.context import acting_user

bp = Blueprint("roles_admin", __name__, url_prefix="/admin/roles")
NAV_ITEMS = [(62, ANALYST_ROLES, "角色", "roles_admin.roles")]
SCOPE_LABELS = {SCOPE_NATIONAL: "全国", SCOPE_PROVINCE: "省级", SCOPE_CITY: "市级", SCOPE_CERTIFICATES: "按证书",
                "school": "院校"}
ROLE_FIELDS = ("code", "name", "scope", "organisation_id")
MEMBER_FIELDS = ("role", "username", "display_name", "phone", "province_code", "city_code", "password",
                 "organisation_id")


def _render(*, role_values: dict[str, Any] | None = None, role_errors: dict[str, str] | None = None,
            member_values: dict[str, str] | None = None, member_errors: dict[str, str] | None = None,
            org_values: dict[str, Any] | None = None, org_errors: dict[str, str] | None = None,
            credentials: MemberCredentials | None = None, status: int = 200) -> Response:
    session = db.session()
    user = acting_user()
    roles = service.all_roles(session)
    html = render_template("accounts/roles.html", roles=roles, members=service.role_members(session, user),
                           custom=[r for r in roles if not r.builtin], scopes=SCOPE_LABELS,
                           notes=service.role_scope_notes(session), organisations=organisations.organisations(session),
                           certificates=organisations.certificate_choices(session),
                           divisions=service.scope_choices(session), role_values=role_values or {},
                           role_errors=role_errors or {}, member_values=member_values or {},
                           member_errors=member_errors or {}, org_values=org_values or {},
                           org_errors=org_errors or {}, credentials=credentials)
    response = make_response(html, status)
    if credentials is not None:
        response.headers["Cache-Control"] = "no-store"  # the password is shown this once only
    return response


@bp.get("")
@analyst_required
def roles() -> Response:
    """Every role with the users of the added ones, and the forms to add a role or a user."""
    return _render()


@bp.post("")
@analyst_required
def create_role() -> Response:
    """Add a role scoped to a province, a city, a set of certificates or the nation; a lane names it by its code."""
    values: dict[str, Any] = {k: request.form.get(k, "") for k in ROLE_FIELDS}
    values["certificate_ids"] = request.form.getlist("certificate_ids")
    try:
        role = service.create_role(db.session(), acting_user(), values["code"], values["name"], values["scope"],
                                   certificate_ids=values["certificate_ids"], organisation_id=values["organisation_id"])
    except (Forbidden, NotFound):
        raise
    except ServiceError as exc:
        db.session.rollback()
        return _render(role_values=values, role_errors=exc.field_errors or {"__all__": exc.message}, status=422)
    flash(f"已新增角色“{role.name}”（{role.code}）：流程图中名为 {role.code} 的泳道由该角色办理。", "success")
    return redirect(url_for("roles_admin.roles"))


@bp.post("/members")
@analyst_required
def add_member() -> Response:
    """Add a user to a review role; the password (typed or generated) is shown once."""
    values: dict[str, Any] = {k: request.form.get(k, "") for k in MEMBER_FIELDS}
    try:
        created = service.add_member(db.session(), acting_user(), **values)
    except (Forbidden, NotFound):
        raise
    except ServiceError as exc:
        db.session.rollback()
        values.pop("password")
        return _render(member_values=values, member_errors=exc.field_errors or {"__all__": exc.message}, status=422)
    return _render(credentials=created)


@bp.post("/organisations")
@analyst_required
def create_organisation() -> Response:
    """Add a training-evaluation organisation with the certificates it holds."""
    values: dict[str, Any] = {"name": request.form.get("name", ""),
                              "certificate_ids": request.form.getlist("certificate_ids")}
    try:
        organisation = organisations.create_organisation(db.session(), acting_user(), values["name"],
                                                         values["certificate_ids"])
    except (Forbidden, NotFound):
        raise
    except ServiceError as exc:
        db.session.rollback()
        return _render(org_values=values, org_errors=exc.field_errors or {"__all__": exc.message}, status=422)
    flash(f"已新增培训评价组织“{organisation.name}”：属于它的角色和用户只看它持有的证书。", "success")
    return redirect(url_for("roles_admin.roles"))
