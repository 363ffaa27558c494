"""plan_close, plan_compute_results, plan_end_announcement: the service tasks of the plan process."""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.plans import closure
from app.processes.models import ServiceCall


def plan_close(session: Session, call: ServiceCall) -> dict[str, Any]:
    """Close the plan's declaration window (and text the schools left with only drafts, unless notify_drafts is
    False: plans published since the templates became data text them in a step of their own, sms_many)."""
    return closure.close_plan(session, int(call.params["plan_id"]), bool(call.params.get("notify_drafts", True)))


def plan_compute_results(session: Session, call: ServiceCall) -> dict[str, Any]:
    """Compute which schools became pilot schools."""
    return closure.compute_results(session, int(call.params["plan_id"]))


def plan_end_announcement(session: Session, call: ServiceCall) -> dict[str, Any]:
    """End the plan's announcement period."""
    return closure.end_announcement(session, int(call.params["plan_id"]))
