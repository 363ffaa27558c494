"""Service-task handlers, keyed by the operation name used in the BPMN diagrams."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.handlers.plan_steps import plan_close, plan_compute_results, plan_end_announcement
from app.handlers.sms_send import sms_send
from app.models.process import ServiceCall


@dataclass(frozen=True)
class Handler:
    """A service operation: the function and the parameters a diagram must pass."""

    func: Callable[[Session, ServiceCall], dict[str, Any]]
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    description: str = ""


HANDLERS: dict[str, Handler] = {
    "sms_send": Handler(sms_send, ("phone", "template"), ("vars", "message_ref"), "发送短信"),
    "plan_close": Handler(plan_close, ("plan_id",), (), "截止申报：草稿过期并短信通知只有草稿的院校"),
    "plan_compute_results": Handler(plan_compute_results, ("plan_id",), (), "计算试点院校结果"),
    "plan_end_announcement": Handler(plan_end_announcement, ("plan_id",), (), "结束结果公示"),
}
