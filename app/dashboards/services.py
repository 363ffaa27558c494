"""Figures for the province and ministry dashboards, and a plan's declarations and results as Excel."""
from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, TypeVar
from urllib.parse import quote

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session, aliased

from app import clock
from app.accounts.models import ROLE_MINISTRY_ADMIN, ROLE_PROVINCE_ADMIN, ROLE_PROVINCE_REVIEWER, ROLE_SCHOOL, User
from app.core.errors import Forbidden, NotFound
from app.declarations.models import Declaration, DeclarationEvent
from app.engine import engine
from app.engine.vocabulary import APPROVED, NOT_APPROVED, WAITING
from app.masterdata.models import Certificate, Division, Major, School
from app.plans.models import DeclarationPlan, PlanResult
from app.processes.models import HumanTask

DECISION_ACTIONS = ("approve", "reject")
DECLARATION_HEADERS = ("院校名称", "学校标识码", "所在城市", "证书", "培训评价组织", "证书等级", "拟申请专业", "培训人数",
                       "师资情况", "场地情况", "状态", "提交时间", "审核时间", "审核意见")
RESULT_HEADERS = ("院校名称", "申报证书数", "通过证书数", "是否试点院校")
NO_CITY = "未填城市"
SelectT = TypeVar("SelectT", bound=Select[*tuple[Any, ...]])


@dataclass
class CountLine:
    """A group (certificate, city, province) with its declarations by outcome."""

    name: str
    total: int = 0
    pending: int = 0
    approved: int = 0
    rejected: int = 0
    schools: int = 0
    pilots: int = 0


@dataclass
class ReviewerLine:
    """A reviewer's workload: decisions taken and declarations currently claimed."""

    name: str
    username: str
    province: str
    approved: int = 0
    rejected: int = 0
    claims: int = 0

    @property
    def decisions(self) -> int:
        return self.approved + self.rejected


@dataclass
class Dashboard:
    """Everything a dashboard shows, for one province or the whole country."""

    scope: str
    plans: list[tuple[DeclarationPlan, str]]
    plan: DeclarationPlan | None
    total: int = 0
    by_status: list[tuple[str, int]] = field(default_factory=list)
    status_meanings: dict[str, str] = field(default_factory=dict)  # word -> meaning, for the charts' colours
    by_certificate: list[CountLine] = field(default_factory=list)
    by_city: list[CountLine] = field(default_factory=list)
    by_province: list[CountLine] = field(default_factory=list)
    reviewers: list[ReviewerLine] = field(default_factory=list)
    waiting_review: int = 0
    unclaimed: int = 0
    registered_schools: int = 0
    listed_schools: int = 0
    national: bool = False

    def chart_data(self) -> dict[str, Any]:
        """Return the figures the charts draw (embedded as JSON in the page)."""
        groups = self.by_province if self.national else self.by_city
        return {
            "status": {"labels": [s for s, _ in self.by_status], "values": [n for _, n in self.by_status],
                       "meanings": [self.status_meanings.get(s, "") for s, _ in self.by_status]},
            "certificates": {"labels": [c.name for c in self.by_certificate],
                             "approved": [c.approved for c in self.by_certificate],
                             "pending": [c.pending for c in self.by_certificate],
                             "rejected": [c.rejected for c in self.by_certificate],
                             "other": [c.total - c.approved - c.pending - c.rejected for c in self.by_certificate]},
            "groups": {"title": "各省申报数" if self.national else "各城市申报数",
                       "labels": [g.name for g in groups], "values": [g.total for g in groups]},
        }


def _outcomes() -> tuple[Any, ...]:
    return (func.count(Declaration.id),
            func.sum(case((Declaration.status_meaning == WAITING, 1), else_=0)),
            func.sum(case((Declaration.status_meaning == APPROVED, 1), else_=0)),
            func.sum(case((Declaration.status_meaning.in_(NOT_APPROVED), 1), else_=0)))


def _scoped(stmt: SelectT, province: str | None, plan_id: int | None) -> SelectT:
    if province is not None:
        stmt = stmt.where(Declaration.province_code == province)
    if plan_id is not None:
        stmt = stmt.where(Declaration.plan_id == plan_id)
    return stmt


def _lines(rows: Any) -> list[CountLine]:
    return [CountLine(name or NO_CITY, int(t or 0), int(p or 0), int(a or 0), int(r or 0)) for name, t, p, a, r in rows]


def _figures(session: Session, board: Dashboard, province: str | None, plan_id: int | None) -> Dashboard:
    rows = session.execute(_scoped(select(Declaration.status, Declaration.status_meaning, func.count(Declaration.id)),
                                   province, plan_id).group_by(Declaration.status, Declaration.status_meaning)).all()
    counts: dict[str, int] = {}
    for status, meaning, n in rows:
        counts[status] = counts.get(status, 0) + int(n)
        board.status_meanings.setdefault(status, meaning)
    vocabulary = engine().vocabulary(session, "declaration", province)
    board.status_meanings.update(dict(vocabulary))
    # The statuses of the process in force in their order, then any others found (those of earlier versions).
    board.by_status = [(s, counts.pop(s, 0)) for s, _ in vocabulary] + sorted(counts.items())
    board.total = sum(n for _, n in board.by_status)
    board.by_certificate = _lines(session.execute(
        _scoped(select(Certificate.name, *_outcomes()).join(Certificate, Certificate.id == Declaration.certificate_id),
                province, plan_id).group_by(Certificate.name).order_by(func.count(Declaration.id).desc(), Certificate.name)))
    city = aliased(Division)
    board.by_city = _lines(session.execute(
        _scoped(select(city.name, *_outcomes()).outerjoin(city, city.code == Declaration.city_code), province, plan_id)
        .group_by(city.name).order_by(func.count(Declaration.id).desc(), city.name)))
    waiting = _scoped(select(func.count(HumanTask.id)).join(Declaration, Declaration.instance_id == HumanTask.instance_id)
                      .where(HumanTask.lane != ROLE_SCHOOL, HumanTask.completed_at.is_(None)), province, plan_id)
    board.waiting_review = int(session.scalar(waiting) or 0)
    board.unclaimed = int(session.scalar(waiting.where(HumanTask.claimed_by_id.is_(None))) or 0)
    board.reviewers = _reviewers(session, province, plan_id)
    schools = select(func.count(School.id))
    # Accounts that work: a registration waiting for approval is not a registered school yet.
    accounts = select(func.count(User.id)).where(User.role == ROLE_SCHOOL, User.school_id.is_not(None),
                                                 User.is_active_account.is_(True))
    if province is not None:
        schools = schools.where(School.province_code == province)
        accounts = accounts.where(User.province_code == province)
    board.listed_schools = int(session.scalar(schools) or 0)
    board.registered_schools = int(session.scalar(accounts) or 0)
    return board


def _reviewers(session: Session, province: str | None, plan_id: int | None) -> list[ReviewerLine]:
    decisions = session.execute(_scoped(
        select(DeclarationEvent.actor_id, DeclarationEvent.action, func.count(DeclarationEvent.id))
        .join(Declaration, Declaration.id == DeclarationEvent.declaration_id)
        .where(DeclarationEvent.action.in_(DECISION_ACTIONS), DeclarationEvent.actor_id.is_not(None)),
        province, plan_id).group_by(DeclarationEvent.actor_id, DeclarationEvent.action)).all()
    claims = session.execute(_scoped(
        select(HumanTask.claimed_by_id, func.count(HumanTask.id))
        .join(Declaration, Declaration.instance_id == HumanTask.instance_id)
        .where(HumanTask.completed_at.is_(None), HumanTask.claimed_by_id.is_not(None)),
        province, plan_id).group_by(HumanTask.claimed_by_id)).all()
    staff = select(User.id).where(User.role == ROLE_PROVINCE_REVIEWER, User.is_active_account.is_(True))
    if province is not None:
        staff = staff.where(User.province_code == province)
    ids = set(session.scalars(staff)) | {a for a, _, _ in decisions} | {c for c, _ in claims}
    if not ids:
        return []
    names = {code: name for code, name in session.execute(select(Division.code, Division.name))}
    lines = {u.id: ReviewerLine(u.display_name, u.username, names.get(u.province_code or "", ""))
             for u in session.scalars(select(User).where(User.id.in_(ids)))}
    for actor, action, n in decisions:
        assert actor is not None
        line = lines.setdefault(actor, ReviewerLine(f"#{actor}", "", ""))
        if action == "approve":
            line.approved += int(n)
        else:
            line.rejected += int(n)
    for actor, n in claims:
        assert actor is not None
        lines.setdefault(actor, ReviewerLine(f"#{actor}", "", "")).claims = int(n)
    return sorted(lines.values(), key=lambda r: (r.province, -r.decisions, -r.claims, r.username))


def province_dashboard(session: Session, user: User, plan_id: int | None = None) -> Dashboard:
    """Return the admin's province figures, for one plan of it or all of them."""
    if user.role != ROLE_PROVINCE_ADMIN or not user.province_code:
        raise Forbidden("只有省级管理员可以查看本省统计")
    province = user.province_code
    plans = list(session.scalars(select(DeclarationPlan).where(DeclarationPlan.province_code == province)
                                 .order_by(DeclarationPlan.starts_at.desc(), DeclarationPlan.id.desc())))
    plan = None
    if plan_id is not None:
        plan = next((p for p in plans if p.id == plan_id), None)
        if plan is None:
            raise NotFound("申报计划不存在")
    division = session.get(Division, province)
    board = Dashboard(division.name if division else province, [(p, "") for p in plans], plan)
    return _figures(session, board, province, plan_id)


def ministry_dashboard(session: Session, user: User, plan_id: int | None = None) -> Dashboard:
    """Return the national figures with a province breakdown, for all plans or one."""
    if user.role != ROLE_MINISTRY_ADMIN:
        raise Forbidden("只有部级管理员可以查看全国统计")
    plans = [(p, name) for p, name in session.execute(
        select(DeclarationPlan, Division.name).join(Division, Division.code == DeclarationPlan.province_code)
        .order_by(DeclarationPlan.starts_at.desc(), DeclarationPlan.id.desc()))]
    plan = None
    if plan_id is not None:
        plan = next((p for p, _ in plans if p.id == plan_id), None)
        if plan is None:
            raise NotFound("申报计划不存在")
    board = _figures(session, Dashboard("全国", plans, plan, national=True), None, plan_id)
    board.by_province = _provinces(session, plan_id)
    return board


def _provinces(session: Session, plan_id: int | None) -> list[CountLine]:
    lines = {code: CountLine(name) for code, name in session.execute(
        select(Division.code, Division.name).where(Division.level == "province"))}
    for code, total, pending, approved, rejected in session.execute(
            _scoped(select(Declaration.province_code, *_outcomes()), None, plan_id).group_by(Declaration.province_code)):
        line = lines.setdefault(code, CountLine(code))
        line.total, line.pending, line.approved, line.rejected = (int(total or 0), int(pending or 0),
                                                                  int(approved or 0), int(rejected or 0))
    for code, n in session.execute(select(User.province_code, func.count(User.id)).where(
            User.role == ROLE_SCHOOL, User.school_id.is_not(None), User.is_active_account.is_(True))
            .group_by(User.province_code)):
        if code in lines:
            lines[code].schools = int(n)
    pilots = (select(DeclarationPlan.province_code, func.count(func.distinct(PlanResult.school_id)))
              .join(DeclarationPlan, DeclarationPlan.id == PlanResult.plan_id).where(PlanResult.is_pilot.is_(True)))
    if plan_id is not None:
        pilots = pilots.where(PlanResult.plan_id == plan_id)
    for code, n in session.execute(pilots.group_by(DeclarationPlan.province_code)):
        if code in lines:
            lines[code].pilots = int(n)
    shown = [line for line in lines.values() if line.total or line.schools or line.pilots]
    return sorted(shown, key=lambda line: (-line.total, line.name))


@dataclass
class Export:
    """A built workbook ready to stream."""

    filename: str
    fallback: str
    file: IO[bytes]

    @property
    def content_disposition(self) -> str:
        """Return the header value with the Chinese name in RFC 5987 form and an ASCII fallback."""
        return f"attachment; filename=\"{self.fallback}\"; filename*=UTF-8''{quote(self.filename, safe='')}"


def _local(value: datetime | None) -> datetime | None:
    loc = clock.local(value)
    return loc.replace(tzinfo=None) if loc is not None else None  # Excel has no time zones


def export_plan(session: Session, user: User, plan_id: int) -> Export:
    """Build the plan's 申报明细 and 审核结果 sheets for the admin's own province."""
    if user.role != ROLE_PROVINCE_ADMIN or not user.province_code:
        raise Forbidden("只有省级管理员可以导出本省申报数据")
    plan = session.get(DeclarationPlan, plan_id)
    if plan is None or plan.province_code != user.province_code:
        raise NotFound("申报计划不存在")
    book = Workbook(write_only=True)
    _declaration_sheet(session, book, plan)
    _result_sheet(session, book, plan)
    out = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)
    book.save(out)
    out.seek(0)
    safe = re.sub(r'[\\/:*?"<>|\r\n]+', "_", plan.name).strip() or "申报计划"
    return Export(f"{safe}-申报与审核结果.xlsx", f"plan-{plan.id}-declarations.xlsx", out)


def _header(sheet: Any, titles: tuple[str, ...]) -> None:
    cells = []
    for title in titles:
        cell = WriteOnlyCell(sheet, value=title)
        cell.font = Font(bold=True)
        cells.append(cell)
    sheet.append(cells)


# Spreadsheets read a cell starting with these as a formula (at once, or when it is edited or saved as CSV).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _text(sheet: Any, value: Any) -> Any:
    """Return a value for a cell, with text that looks like a formula or an error code kept as plain text."""
    if not isinstance(value, str):
        return value
    value = ILLEGAL_CHARACTERS_RE.sub("", value)  # control characters are not allowed in a workbook
    if not value.startswith(FORMULA_STARTS) and value not in ERROR_CODES:
        return value
    cell = WriteOnlyCell(sheet, value=value)
    cell.data_type = "s"
    # Shown without the quote, yet Excel keeps the cell text when someone edits it.
    cell.quotePrefix = True
    return cell


def _append(sheet: Any, values: list[Any]) -> None:
    sheet.append([_text(sheet, value) for value in values])


def _when(sheet: Any, value: datetime | None) -> Any:
    cell = WriteOnlyCell(sheet, value=_local(value))
    cell.number_format = "yyyy-mm-dd hh:mm"
    return cell


def _declaration_sheet(session: Session, book: Workbook, plan: DeclarationPlan) -> None:
    sheet = book.create_sheet("申报明细")
    sheet.freeze_panes = "A2"
    for letter, width in zip("ABCDEFGHIJKLMN", (30, 14, 10, 36, 30, 8, 36, 8, 40, 40, 10, 17, 17, 30)):
        sheet.column_dimensions[letter].width = width
    _header(sheet, DECLARATION_HEADERS)
    city = aliased(Division)
    rows = session.execute(
        select(Declaration, School.name, School.code, city.name, Certificate.name, Certificate.organization)
        .join(School, School.id == Declaration.school_id)
        .join(Certificate, Certificate.id == Declaration.certificate_id)
        .outerjoin(city, city.code == Declaration.city_code)
        .where(Declaration.plan_id == plan.id, Declaration.province_code == plan.province_code)
        .order_by(city.name, School.name_sort, School.name, Certificate.name, Declaration.level, Declaration.id)).all()
    codes = {code for decl, *_ in rows for code in (decl.majors or [])}
    majors = dict(session.execute(select(Major.code, Major.name).where(Major.code.in_(codes))).all()) if codes else {}
    for decl, school, code, city_name, cert, org in rows:
        _append(sheet, [school, code, city_name or "", cert, org, decl.level,
                      "、".join(f"{m} {majors.get(m, '')}".strip() for m in decl.majors or []),
                      decl.trainee_count, decl.teachers, decl.facilities, decl.status,
                      _when(sheet, decl.submitted_at), _when(sheet, decl.decided_at), decl.review_comment or ""])


def _result_sheet(session: Session, book: Workbook, plan: DeclarationPlan) -> None:
    sheet = book.create_sheet("审核结果")
    sheet.freeze_panes = "A2"
    for letter, width in zip("ABCD", (30, 12, 12, 24)):
        sheet.column_dimensions[letter].width = width
    _header(sheet, RESULT_HEADERS)
    computed = session.execute(
        select(School.name, PlanResult.declared_count, PlanResult.approved_count, PlanResult.is_pilot)
        .join(School, School.id == PlanResult.school_id).where(PlanResult.plan_id == plan.id)
        .order_by(PlanResult.is_pilot.desc(), School.name_sort, School.name)).all()
    if plan.results_at is not None:
        for name, declared, approved, pilot in computed:
            _append(sheet, [name, declared, approved, "是" if pilot else "否"])
        return
    # Before the review deadline the result is not decided yet: show the counts so far.
    live = session.execute(
        select(School.name, func.count(Declaration.id),
               func.sum(case((Declaration.status_meaning == APPROVED, 1), else_=0)))
        .join(School, School.id == Declaration.school_id).where(Declaration.plan_id == plan.id)
        .group_by(School.id, School.name, School.name_sort).order_by(School.name_sort, School.name)).all()
    for name, declared, approved in live:
        _append(sheet, [name, int(declared), int(approved or 0), "未出结果（审核截止后确定）"])
