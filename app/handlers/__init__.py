"""Service-task handlers, keyed by the operation name used in the BPMN diagrams."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy.orm import Session

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
}
