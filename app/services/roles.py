"""Roles: the built-in ones and review roles added by analysts, which diagram lanes name."""
from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.models.role import SCOPE_CITY, SCOPE_NATIONAL, SCOPE_PROVINCE, Role
from app.models.sms import AuditEntry
from app.models.user import ROLE_ANALYST, ROLE_MINISTRY_ADMIN, User
from app.services.errors import Forbidden, ServiceError

CODE_RE = re.compile(r"^[a-z][a-z0-9_]{2,40}$")


def lane_roles(session: Session) -> list[str]:
    """Return the role codes a diagram lane may name (every role but the national staff roles)."""
    return list(session.scalars(select(Role.code).where(Role.scope != SCOPE_NATIONAL).order_by(Role.code)))


def all_roles(session: Session) -> list[Role]:
    """Return every role, built-in first."""
    return list(session.scalars(select(Role).order_by(Role.builtin.desc(), Role.code)))


def get_role(session: Session, code: str) -> Role | None:
    """Return a role by code."""
    return session.get(Role, code)


def create_role(session: Session, user: User, code: str, name: str, scope: str) -> Role:
    """Add a review role scoped to a province or a city, so a diagram lane can name it."""
    if user.role not in (ROLE_ANALYST, ROLE_MINISTRY_ADMIN):
        raise Forbidden("只有流程分析员或部级管理员可以新增角色")
    errors = {}
    code = code.strip()
    if not CODE_RE.match(code):
        errors["code"] = "角色代码：小写字母开头，3–41 位小写字母、数字或下划线（泳道名称使用此代码）"
    elif session.get(Role, code) is not None:
        errors["code"] = f"角色代码：{code} 已存在"
    if not 2 <= len(name.strip()) <= 32:
        errors["name"] = "角色名称：2–32 个字"
    if scope not in (SCOPE_PROVINCE, SCOPE_CITY):
        errors["scope"] = "范围：请选择省级或市级"
    if errors:
        raise ServiceError("角色信息有误", errors)
    role = Role(code=code, name=name.strip(), scope=scope, builtin=False, reviews=True, created_at=clock.now())
    session.add(role)
    session.add(AuditEntry(at=clock.now(), actor_id=user.id, action="create_role", target=f"role:{code}",
                           detail=f"{user.display_name} 新增角色 {name}（{code}，{'市级' if scope == SCOPE_CITY else '省级'}）"))
    session.flush()
    return role
