"""What the school's pages say about where it stands: the next step, why a declaration is locked, and the outcome
of each plan whose declaration time has ended (user guide 一.4 / 二.4). Only status meanings are compared."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from app import clock
from app.accounts.models import User
from app.declarations.models import Declaration
from app.engine.vocabulary import APPROVED, DRAFT, EXPIRED, REJECTED, RETURNED, WAITING
from app.masterdata.models import School
from app.plans.models import PLAN_PUBLISHED, DeclarationPlan

LEGACY = "legacy"


@dataclass(frozen=True)
class NextStep:
    """The one thing the school should do next, with the user guide's button label."""

    label: str
    endpoint: str
    hint: str


def next_step(user: User, school: School, window_open: bool) -> NextStep | None:
    """Return the school's next step on the home page (None: nothing to declare now)."""
    if not window_open:
        return None
    if user.origin == LEGACY:  # flow 二: straight to declaring; missing information is asked on the form
        return NextStep("申报证书试点", "school.new_declaration",
                        "本省申报计划正在申报期内。点击【申报证书试点】，选择证书并填写申报信息。")
    if school.info_completed_at is None:  # flow 一, 第一步
        return NextStep("完善院校基础信息", "school.info", "第一步：完善院校的基本信息，之后即可申请新的证书试点。")
    return NextStep("申请新的证书试点", "school.new_declaration",
                    "第二步：在申报时间内点击“申请新的证书试点”，选择证书并填写申报信息。")


def locked_reason(decl: Declaration, window_open: bool) -> str:
    """Say, true to its status meaning, why a declaration cannot be changed now."""
    meaning = decl.status_meaning
    if meaning == WAITING:
        return "已提交审核，不能修改，请等待审核结果（结果将短信通知）。"
    if meaning == APPROVED:
        return "已审核通过，不能再修改。"
    if meaning == EXPIRED:
        return "申报截止时仍未提交审核，已过期，不能再修改或提交。"
    if meaning == REJECTED:
        return "审核不通过，办理已结束，不能再修改。"
    if meaning == RETURNED:
        return "审核不通过；申报时间已结束，不能再修改后重新提交。" if not window_open else "审核不通过，暂不能修改。"
    if meaning == DRAFT:
        return "尚未提交审核；申报时间已结束，不能再修改或提交。" if not window_open else "尚未提交审核，暂不能修改。"
    return f"当前状态为“{decl.status}”，不能修改。"


@dataclass
class PlanOutcome:
    """The school's standing in a plan whose declaration time has ended."""

    plan: DeclarationPlan
    approved: list[str] = field(default_factory=list)  # "证书（等级）"
    submitted: int = 0  # sent for review at least once
    waiting: int = 0
    expired: int = 0  # drafts never submitted before the deadline

    @property
    def is_pilot(self) -> bool:
        return bool(self.approved)

    @property
    def decided(self) -> bool:
        """Whether the results are final (computed at the review deadline)."""
        return self.plan.results_at is not None


def plan_outcomes(plans: Iterable[DeclarationPlan], declarations: Iterable[Declaration]) -> list[PlanOutcome]:
    """Return the school's outcome in each plan whose declaration time has ended and that it declared in.

    A school is a 试点院校 as soon as the declaration time has ended and one of its certificates is approved,
    including approvals that come later, up to the review deadline.
    """
    now = clock.now()
    ended = [p for p in plans if p.ends_at <= now or p.status != PLAN_PUBLISHED]
    by_plan: dict[int, list[Declaration]] = {}
    for decl in declarations:
        by_plan.setdefault(decl.plan_id, []).append(decl)
    outcomes = []
    for plan in ended:
        mine = by_plan.get(plan.id)
        if not mine:
            continue
        outcome = PlanOutcome(plan)
        for decl in mine:
            if decl.status_meaning == APPROVED:
                outcome.approved.append(f"{decl.certificate.name}（{decl.level}）")
            if decl.status_meaning == WAITING:
                outcome.waiting += 1
            if decl.status_meaning == EXPIRED or (decl.status_meaning == DRAFT and decl.submitted_at is None):
                outcome.expired += 1
            elif decl.submitted_at is not None:
                outcome.submitted += 1
        outcomes.append(outcome)
    return outcomes
