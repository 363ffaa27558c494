"""sms_many: send a template to every recipient a declarative selector picks, once per recipient per step."""
from __future__ import annotations

from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app.core.transactions import after_commit
from app.plans.models import DeclarationPlan
from app.processes.jobs import enqueue_deliveries
from app.processes.models import ProcessInstance, ServiceCall
from app.sms import services as sms
from app.sms.models import SmsMessage
from app.sms.recipients import select_recipients
from app.sms.templates import resolve

DEFAULT_PER_MINUTE = 300


def sms_many(session: Session, call: ServiceCall) -> dict[str, Any]:
    """Queue one message per recipient of the selector, keyed by (call, recipient) so that a retried or restarted
    job never queues a second; deliveries are spread to stay within the SMS rate limit (sms_bulk_per_minute)."""
    params = call.params
    instance = session.get(ProcessInstance, call.instance_id)
    province_code = instance.province_code if instance is not None else None
    plan_id = int(params["plan_id"]) if params.get("plan_id") not in (None, "") else None
    variables = params.get("vars") or {}
    selector = params.get("selector")
    if not isinstance(variables, dict) or not isinstance(selector, dict):
        raise ValueError("vars 和 selector 参数必须是字典")
    template = resolve(session, str(params["template"]), province_code)
    if template is None:
        raise ValueError(f"未知短信模板：{params['template']}（请在“短信模板”页面添加）")
    common = dict(variables)
    if plan_id is not None:
        plan = session.get(DeclarationPlan, plan_id)
        if plan is None:
            raise ValueError(f"申报计划 {plan_id} 不存在")
        common["plan"] = plan.name
        province_code = province_code or plan.province_code
    recipients = select_recipients(session, selector, plan_id=plan_id, province_code=province_code)
    keys = {f"call:{call.id}:u{r.user_id}": r for r in recipients}
    existing = set(session.scalars(select(SmsMessage.idempotency_key).where(
        SmsMessage.idempotency_key.in_(list(keys))))) if keys else set()
    backend = sms.configured_backend_name()
    rows = [sms.message_row(template, key=key, phone=r.phone, params={**common, **r.variables}, backend=backend,
                            province_code=province_code, service_call_id=call.id)
            for key, r in keys.items() if key not in existing]
    if rows:
        session.execute(insert(SmsMessage), rows)
        ids = list(session.scalars(select(SmsMessage.id).where(
            SmsMessage.idempotency_key.in_([r["idempotency_key"] for r in rows])).order_by(SmsMessage.id)))
        per_minute = _per_minute()
        after_commit(session, lambda: enqueue_deliveries(ids, per_minute=per_minute))
    return {"recipients": len(recipients), "queued": len(rows)}


def _per_minute() -> int:
    if has_app_context():
        return int(current_app.config["XPILOT"].sms_bulk_per_minute)
    return DEFAULT_PER_MINUTE
