"""account_activate, account_refuse: the registration process decides about the account it is about."""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.accounts.activation import activate_account, refuse_account
from app.processes.models import ProcessInstance, ServiceCall


def _account_of(session: Session, call: ServiceCall) -> int:
    instance = session.get(ProcessInstance, call.instance_id)
    if instance is None or instance.subject_type != "user":
        raise ValueError("账号操作只能用于院校注册流程（流程的主体须为注册的账号）")
    return instance.subject_id


def account_activate(session: Session, call: ServiceCall) -> dict[str, Any]:
    """Activate the registered account and text it its password (delivered with the call, like sms_send)."""
    message = activate_account(session, _account_of(session, call), f"call:{call.id}")
    return {"message_id": message.id, "activated": True}


def account_refuse(session: Session, call: ServiceCall) -> dict[str, Any]:
    """Refuse the registered account; the school may register again."""
    refuse_account(session, _account_of(session, call), str(call.params.get("reason") or "")[:500])
    return {"refused": True}
