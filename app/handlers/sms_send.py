"""sms_send: record a text message for the process and hand it to delivery."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.processes.models import ProcessInstance, ServiceCall
from app.sms import services as sms
from app.sms.models import SmsMessage


def sms_send(session: Session, call: ServiceCall) -> dict[str, Any]:
    """Queue the message once per service call (or adopt the prepared one named by message_ref)."""
    params = call.params
    ref = params.get("message_ref")
    instance = session.get(ProcessInstance, call.instance_id)
    province_code = instance.province_code if instance is not None else None
    message = None
    if ref:
        message = session.scalars(select(SmsMessage).where(SmsMessage.idempotency_key == str(ref))).first()
    if message is None:
        variables = params.get("vars") or {}
        if not isinstance(variables, dict):
            raise ValueError("vars 参数必须是字典")
        # A call's message is written in the transaction that marks the call done, so while the call is pending
        # (the caller checked, under the instance lock) no committed message carries its key.
        message = sms.queue_message(session, key=f"call:{call.id}", phone=str(params["phone"]),
                                    template=str(params["template"]), params=variables, province_code=province_code,
                                    new_key=True)
    if message.province_code is None and province_code:
        message.province_code = province_code  # the province's admins see the messages of its processes
    return {"message_id": message.id}
