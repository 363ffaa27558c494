"""审核结果公示 and pilot status: who became a 试点院校 in which plan, with which certificates."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.errors import NotFound
from app.declarations.models import Declaration
from app.engine.vocabulary import APPROVED
from app.masterdata.models import Certificate, Division, School
from app.plans.models import PLAN_ANNOUNCING, PLAN_FINISHED, DeclarationPlan, PlanResult

PUBLIC_STATUSES = (PLAN_ANNOUNCING, PLAN_FINISHED)


@dataclass
class PilotLine:
    """One approved school with its approved certificates."""

    school: str
    city: str
    certificates: list[str]


def public_plans(session: Session) -> list[tuple[DeclarationPlan, str]]:
    """Return plans whose results are public, with their province names."""
    rows = session.execute(select(DeclarationPlan, Division.name).join(Division, Division.code == DeclarationPlan.province_code)
                           .where(DeclarationPlan.status.in_(PUBLIC_STATUSES))
                           .order_by(DeclarationPlan.results_at.desc())).all()
    return [(p, name) for p, name in rows]


def announcement(session: Session, plan_id: int) -> tuple[DeclarationPlan, str, list[PilotLine]]:
    """Return a plan's public list of approved schools and certificates."""
    plan = session.get(DeclarationPlan, plan_id)
    if plan is None or plan.status not in PUBLIC_STATUSES:
        raise NotFound("该计划的审核结果尚未公示")
    province = session.get(Division, plan.province_code)
    rows = session.execute(
        select(School.name, Division.name, Certificate.name, Declaration.level)
        .join(Declaration, Declaration.school_id == School.id)
        .join(Certificate, Certificate.id == Declaration.certificate_id)
        .outerjoin(Division, Division.code == School.city_code)
        .join(PlanResult, (PlanResult.school_id == School.id) & (PlanResult.plan_id == plan_id))
        .where(Declaration.plan_id == plan_id, Declaration.status_meaning == APPROVED, PlanResult.is_pilot.is_(True))
        .order_by(Division.name, School.name_sort, School.name, Certificate.name)).all()
    lines: dict[str, PilotLine] = {}
    for school, city, cert, level in rows:
        lines.setdefault(school, PilotLine(school, city or "", [])).certificates.append(f"{cert}（{level}）")
    return plan, province.name if province else "", list(lines.values())


def school_results(session: Session, school_id: int) -> list[tuple[DeclarationPlan, PlanResult, list[str]]]:
    """Return the school's computed results per plan with its pilot certificates."""
    rows = session.execute(select(DeclarationPlan, PlanResult).join(PlanResult, PlanResult.plan_id == DeclarationPlan.id)
                           .where(PlanResult.school_id == school_id).order_by(DeclarationPlan.results_at.desc())).all()
    result = []
    for plan, res in rows:
        certs = [f"{name}（{level}）" for name, level in session.execute(
            select(Certificate.name, Declaration.level).join(Declaration, Declaration.certificate_id == Certificate.id)
            .where(Declaration.plan_id == plan.id, Declaration.school_id == school_id,
                   Declaration.status_meaning == APPROVED))]
        result.append((plan, res, certs))
    return result
