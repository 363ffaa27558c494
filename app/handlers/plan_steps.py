"""plan_close, plan_compute_results, plan_end_announcement: the service tasks of the plan process."""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.plans import closure
from app.processes.models import ServiceCall


def plan_close(session: Session, call: ServiceCall) -> dict[str, Any]:
    """Close the plan's declaration window."""
    return closure.close_plan(session, int(call.params["plan_id"]))


def plan_compute_results(session: Session, call: ServiceCall) -> dict[str, Any]:
    """Compute which schools became pilot schools."""
    return closure.compute_results(session, int(call.params["plan_id"]))


def plan_end_announcement(session: Session, call: ServiceCall) -> dict[str, Any]:
    """End the plan's announcement period."""
    return closure.end_announcement(session, int(call.params["plan_id"]))
