"""Provincial review: the queue with filters, claims (领取 / 释放), decisions and bulk approval."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Join, Select, and_, bindparam, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased

from app import clock, refcache
from app.accounts.models import ROLE_PROVINCE_ADMIN, ROLE_PROVINCE_REVIEWER, User
from app.core.errors import Forbidden, NotFound, ServiceError
from app.declarations import lifecycle
from app.declarations.models import Declaration, DeclarationEvent
from app.declarations.services import history, major_names
from app.engine import engine
from app.engine.runtime import EngineError, TaskNotAvailable
from app.engine.vocabulary import DRAFT, WAITING, Vocabulary
from app.extensions import savepoint
from app.forms import FormSpec, build_form, validate
from app.masterdata.models import CERTIFICATE_LEVELS, LEVEL_PREFECTURE, Certificate, Division, School
from app.plans.models import DeclarationPlan
from app.processes.models import HumanTask, ProcessInstance

REVIEW_LANES = (ROLE_PROVINCE_REVIEWER,)
STATUS_ALL = "全部"
STATUS_OPEN = ""  # the default: declarations with an open provincial review task
OPEN_LABEL = "等待省级审核"
SORTS = {"submitted": "提交时间（从早到晚）", "submitted_desc": "提交时间（从晚到早）", "school": "院校名称"}
PER_PAGE_CHOICES = (20, 50, 100)
BULK_LIMIT = 100
FEW = 1000  # matches that SQLite sorts rather than finds by walking the queue in order
SCHOOL_QUERY_MAX = 64
QUERY_KEYS = ("status", "certificate", "level", "city", "school", "from", "to", "sort", "per_page", "page")
CHOICE_ERRORS = {"status": "状态：请从列表中选择", "certificate": "证书：请从列表中选择",
                 "level": "证书等级：请选择初级、中级或高级", "city": "城市：请从本省的城市中选择",
                 "sort": "排序：请从列表中选择", "per_page": "每页条数：请选择 20、50 或 100"}
Holder = aliased(User, name="holder")
AnySelect = Select[*tuple[Any, ...]]


@dataclass
class QueueFilters:
    """The queue's checked GET parameters."""

    status: str = STATUS_OPEN
    certificate_id: int | None = None
    level: str = ""
    city_code: str = ""
    school: str = ""
    submitted_from: date | None = None
    submitted_to: date | None = None
    sort: str = "submitted"
    per_page: int = PER_PAGE_CHOICES[0]
    page: int = 1


@dataclass
class QueueRow:
    """One line of the queue: a declaration, its school and certificate, and its open review task."""

    declaration: Declaration
    school_name: str
    city_code: str | None
    certificate_name: str
    task: HumanTask | None
    holder_name: str | None


@dataclass
class QueuePage:
    """What the queue page shows."""

    filters: QueueFilters
    form: dict[str, str]
    errors: dict[str, str]
    rows: list[QueueRow] = field(default_factory=list)
    total: int = 0
    certificates: list[tuple[int, str]] = field(default_factory=list)
    cities: list[tuple[str, str]] = field(default_factory=list)
    statuses: list[tuple[str, str]] = field(default_factory=list)  # (value, label) of the status filter

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.filters.per_page))


@dataclass
class ReviewPage:
    """What the 审核 page of one declaration shows."""

    declaration: Declaration
    school: School
    task: HumanTask | None
    holder_name: str | None
    form: FormSpec
    history: list[DeclarationEvent]
    majors: dict[str, str]


@dataclass
class BulkOutcome:
    """Which declarations a bulk approval decided and which it skipped, with the reason."""

    approved: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _require_reviewer(user: User) -> str:
    if user.role not in (ROLE_PROVINCE_REVIEWER, ROLE_PROVINCE_ADMIN) or not user.province_code:
        raise Forbidden("只有省级审核员可以审核")
    return user.province_code


def queue_statuses(vocabulary: Vocabulary) -> list[tuple[str, str]]:
    """The status filter's choices: the open review tasks, then every status a reviewer may see (all but drafts,
    each under its own word, waiting ones first), then all of them."""
    words = vocabulary.words(WAITING) + [w for w, m in vocabulary if m not in (WAITING, DRAFT)]
    return [(STATUS_OPEN, OPEN_LABEL), *((w, w) for w in words), (STATUS_ALL, STATUS_ALL)]


def parse_filters(args: Mapping[str, str], certificate_ids: set[int], city_codes: set[str],
                  statuses: Sequence[str] = (STATUS_OPEN, STATUS_ALL)
                  ) -> tuple[QueueFilters, dict[str, str], dict[str, str]]:
    """Check the queue's GET parameters; return the filters, the raw values for the form, and errors."""
    raw = {k: (args.get(k) or "").strip() for k in QUERY_KEYS}
    allowed = {"status": set(statuses), "certificate": {str(i) for i in certificate_ids},
               "level": set(CERTIFICATE_LEVELS), "city": city_codes, "sort": set(SORTS),
               "per_page": {str(n) for n in PER_PAGE_CHOICES}}
    errors = {key: CHOICE_ERRORS[key] for key, values in allowed.items() if raw[key] and raw[key] not in values}
    if len(raw["school"]) > SCHOOL_QUERY_MAX or not raw["school"].isprintable():
        errors["school"] = f"院校：请输入院校名称的一部分（最多 {SCHOOL_QUERY_MAX} 个字）"
    days: dict[str, date | None] = {"from": None, "to": None}
    for key, label in (("from", "提交日期（起）"), ("to", "提交日期（止）")):
        try:
            days[key] = datetime.strptime(raw[key], "%Y-%m-%d").date() if raw[key] else None
        except ValueError:
            errors[key] = f"{label}：请输入正确的日期，格式如 2026-03-01"
        if (day := days[key]) is not None and not 2000 <= day.year <= 2999:
            errors[key], days[key] = f"{label}：日期超出范围", None
    start, end = days["from"], days["to"]
    if start and end and start > end:
        errors["to"] = "提交日期：截止日期不能早于起始日期"

    def ok(key: str) -> str:
        return raw[key] if key not in errors else ""

    page = int(raw["page"]) if raw["page"].isdigit() and 0 < int(raw["page"]) < 100_000 else 1
    filters = QueueFilters(ok("status") or STATUS_OPEN, int(ok("certificate")) if ok("certificate") else None,
                           ok("level"), ok("city"), ok("school"), start, end, ok("sort") or "submitted",
                           int(ok("per_page") or PER_PAGE_CHOICES[0]), page)
    return filters, raw, errors


def _day_start(day: date) -> datetime:
    """Return the start of a China-time day as an aware UTC datetime."""
    return datetime.combine(day, time.min, tzinfo=clock.CHINA).astimezone(UTC)


def _in_days(column: Any, f: QueueFilters) -> list[Any]:
    """Terms keeping a time column within the filtered China-time days."""
    return ([column >= _day_start(f.submitted_from)] if f.submitted_from else []) + (
        [column < _day_start(f.submitted_to + timedelta(days=1))] if f.submitted_to else [])


def _open_review(task: Any, f: QueueFilters, of_declaration: bool = True) -> list[Any]:
    """Terms of an open review task (of the declaration in the query), submitted in the filtered days."""
    # The review task is created in the submission's transaction: its created_at is the submission time.
    terms = [task.subject_type == "declaration", task.lane.in_(REVIEW_LANES), task.completed_at.is_(None)]
    return terms + ([task.subject_id == Declaration.id] if of_declaration else []) + _in_days(task.created_at, f)


class SchoolsFirst(Join):
    """An inner join whose left side SQLite must read first (CROSS JOIN there; a plain JOIN elsewhere)."""

    inherit_cache = True


@compiles(SchoolsFirst, "sqlite")
def _schools_first_sqlite(element: SchoolsFirst, compiler: Any, **kw: Any) -> str:
    # The left side is one table, so the first JOIN keyword is this join's own.
    return str(compiler.visit_join(element, **kw)).replace(" JOIN ", " CROSS JOIN ", 1)


def _statements(province: str, f: QueueFilters, lookup: bool = False) -> tuple[AnySelect, AnySelect]:
    """Build the page query and the count query, each shaped so that an index leads (see bench/closure.py).

    lookup: start the page from the filtered declarations, each joined to its task by a correlated lookup.
    """
    decl_where = ([Declaration.certificate_id == f.certificate_id] if f.certificate_id else []) + (
        [Declaration.level == f.level] if f.level else []) + ([Declaration.city_code == f.city_code] if f.city_code else [])
    school_where = [School.province_code == province, School.name.contains(f.school, autoescape=True)] if f.school else []
    columns = (Declaration, School.name, Declaration.city_code, Certificate.name, HumanTask, Holder.display_name)
    if f.status == STATUS_OPEN:
        when: Any = HumanTask.created_at
        tiebreak: Any = HumanTask.id
        where: list[Any] = [Declaration.province_code == province, *decl_where, *school_where]
        task = aliased(HumanTask)
        if decl_where or school_where:
            # Filters on the declaration: count the matches that have an open review task (ix_human_task_open_subject);
            # for the page the planner chooses between walking the queue in order and sorting the matches.
            count = select(func.count()).select_from(Declaration)
            count = (count.join(School, School.id == Declaration.school_id) if school_where else count).where(
                *where, select(task.id).where(*_open_review(task, f)).exists())
            on = (HumanTask.id == select(task.id).where(*_open_review(task, f)).limit(1).scalar_subquery() if lookup
                  else and_(*_open_review(HumanTask, f), HumanTask.province_code == province))
            rows = (select(*columns).select_from(Declaration).join(HumanTask, on)
                    .join(School, School.id == Declaration.school_id))
        else:
            # The whole queue: the province's open review tasks in index order (ix_human_task_review).
            queue = [*_open_review(HumanTask, f, of_declaration=False), HumanTask.province_code == province]
            count = select(func.count()).select_from(HumanTask).where(*queue)
            if f.sort == "school":  # walk the schools in name order, each with its open review tasks
                # SQLite would rather read the whole queue and sort it (0.3 s at 50,000): SchoolsFirst makes the
                # schools the outer loop there, so it walks them in order and stops at the page.
                rows = (select(*columns).select_from(SchoolsFirst(School, HumanTask, and_(
                            HumanTask.school_id == School.id, *_open_review(HumanTask, f, of_declaration=False))))
                        .join(Declaration, Declaration.id == HumanTask.subject_id).where(School.province_code == province))
            else:
                rows = (select(*columns).select_from(HumanTask).join(Declaration, Declaration.id == HumanTask.subject_id)
                        .join(School, School.id == Declaration.school_id).where(*queue))
    else:
        when, tiebreak = Declaration.submitted_at, Declaration.id
        # 全部: every declaration but the school's own unsent drafts
        status_term = Declaration.status_meaning != DRAFT if f.status == STATUS_ALL else Declaration.status == f.status
        where = [Declaration.province_code == province, status_term, *decl_where, *school_where, *_in_days(when, f)]
        count = select(func.count()).select_from(Declaration)
        count = (count.join(School, School.id == Declaration.school_id) if school_where else count).where(*where)
        rows = (select(*columns).select_from(Declaration).join(School, School.id == Declaration.school_id)
                .outerjoin(HumanTask, and_(HumanTask.instance_id == Declaration.instance_id,
                                           HumanTask.lane.in_(REVIEW_LANES), HumanTask.completed_at.is_(None))))
    rows = (rows.join(Certificate, Certificate.id == Declaration.certificate_id)
            .outerjoin(Holder, Holder.id == HumanTask.claimed_by_id).where(*where))
    order = {"school": (School.name_sort, School.name, when, tiebreak), "submitted_desc": (when.desc(), tiebreak.desc())}
    return rows.order_by(*order.get(f.sort, (when, tiebreak))), count


def queue_page(session: Session, user: User, args: Mapping[str, str]) -> QueuePage:
    """Return one page of the province's declarations (waiting for review by default) with the filters applied."""
    province = _require_reviewer(user)
    certificates: list[tuple[int, str]] = refcache.cached(session, ("queue certificates",), lambda: [
        (c.id, c.name) for c in session.execute(select(Certificate.id, Certificate.name).order_by(Certificate.name))])
    cities: list[tuple[str, str]] = refcache.cached(session, ("queue cities", province), lambda: [
        (c.code, c.name) for c in session.execute(
            select(Division.code, Division.name).where(Division.province_code == province,
                                                       Division.level == LEVEL_PREFECTURE).order_by(Division.code))])
    statuses = queue_statuses(engine().vocabulary(session, "declaration", province))
    filters, raw, errors = parse_filters(args, {c for c, _ in certificates}, {c for c, _ in cities},
                                         [value for value, _ in statuses])
    page = QueuePage(filters, raw, errors, certificates=certificates, cities=cities, statuses=statuses)
    if errors:
        return page
    page.total = session.scalar(_statements(province, filters)[1]) or 0
    filters.page = min(filters.page, page.pages)
    # SQLite's planner believes open tasks are rare (sqlite_stat1 averages over completed_at) and would walk the
    # whole queue for a handful of matches; PostgreSQL plans the joined form well and the lookup form badly.
    lookup = page.total <= FEW and session.get_bind().dialect.name == "sqlite"
    rows_stmt = _statements(province, filters, lookup)[0]
    result = session.execute(rows_stmt.offset((filters.page - 1) * filters.per_page).limit(filters.per_page))
    page.rows = [QueueRow(*row) for row in result]
    return page


# The statements of _declaration_and_task, built once and run with parameters: rebuilding them and walking them
# for SQLAlchemy's cache key had cost a fifth of a review request.
_DECLARATION_AND_TASK = (select(Declaration, HumanTask)
                         .outerjoin(HumanTask, and_(HumanTask.instance_id == Declaration.instance_id,
                                                    HumanTask.lane.in_(REVIEW_LANES), HumanTask.completed_at.is_(None)))
                         .where(Declaration.id == bindparam("declaration_id")).order_by(HumanTask.id).limit(1))
_DECLARATION_AND_TASK_FRESH = _DECLARATION_AND_TASK.execution_options(populate_existing=True)
_INSTANCE_OF_DECLARATION_LOCKED = (
    select(ProcessInstance).where(ProcessInstance.id == select(Declaration.instance_id)
                                  .where(Declaration.id == bindparam("declaration_id")).scalar_subquery())
    .with_for_update().execution_options(populate_existing=True))


def _declaration_and_task(session: Session, user: User, declaration_id: int,
                          lock: bool) -> tuple[Declaration, HumanTask | None]:
    """Return a declaration of the reviewer's province and its open review task, read in one statement.

    lock: first lock its process instance (until the transaction ends), then read both fresh, so that the task
    read is the one a decision in this transaction completes. Claims and releases take the same lock. The read
    must be a statement of its own: one that waited for the lock would see the joined rows as they were before
    the holder committed (PostgreSQL re-reads only the locked row), so a decision would miss a claim made
    meanwhile.
    """
    province = _require_reviewer(user)
    params = {"declaration_id": declaration_id}
    if lock:
        instance = session.scalars(_INSTANCE_OF_DECLARATION_LOCKED, params).first()
        if instance is not None:
            engine().hold(session, instance)
    row = session.execute(_DECLARATION_AND_TASK_FRESH if lock else _DECLARATION_AND_TASK, params).first()
    if row is None or row[0].province_code != province:
        raise NotFound("申报不存在")
    return row[0], row[1]


def _attach_whole(session: Session, decl: Declaration) -> None:
    """Attach the declaration's school, plan, certificate and the school's divisions from the kept copies (see
    app.refcache), so that decl.school, school.city ... cost no query."""
    school = refcache.attach(session, School, decl.school_id, kind="accounts")
    refcache.attach(session, DeclarationPlan, decl.plan_id)
    refcache.attach(session, Certificate, decl.certificate_id)
    for code in {school.province_code, school.city_code} - {None} if school is not None else ():
        refcache.attach(session, Division, code)


def _holder_name(session: Session, task: HumanTask | None) -> str | None:
    if task is None or task.claimed_by_id is None:
        return None
    holder = session.get(User, task.claimed_by_id)
    return (holder.display_name or holder.username) if holder is not None else "其他审核员"


def review_context(session: Session, user: User, declaration_id: int, whole: bool = False,
                   for_update: bool = False) -> tuple[Declaration, HumanTask | None, FormSpec]:
    """Return a declaration of the reviewer's province, its open review task and the review form.

    for_update: take the process instance's lock (until the transaction ends), so that the task read is the one
    a decision in this transaction will complete.
    """
    decl, task = _declaration_and_task(session, user, declaration_id, lock=for_update)
    if whole:
        _attach_whole(session, decl)
    version = engine().current_version(session, "declaration", decl.province_code)
    form_name = task.form if task is not None and task.form else "review-form.json"
    form = refcache.cached(session, ("review form", version.id, form_name), lambda: build_form(
        version.forms.get(form_name) or version.forms["review-form.json"]))
    return decl, task, form


def review_page(session: Session, user: User, declaration_id: int) -> ReviewPage:
    """Return the whole declaration, its school, its history, who holds it, and the review form."""
    decl, task, form = review_context(session, user, declaration_id, whole=True)
    school = decl.school
    return ReviewPage(decl, school, task, _holder_name(session, task), form, history(session, decl.id),
                      major_names(session, list(decl.majors)))


def _not_waiting(decl: Declaration) -> Forbidden:
    return Forbidden(f"该申报当前状态为“{decl.status}”，没有等待省级审核，不能领取或重复审核")


def _held_by_other(session: Session, task: HumanTask) -> Forbidden:
    return Forbidden(f"该申报已由{_holder_name(session, task)}于{clock.format_local(task.claimed_at)}领取，"
                     "只有领取人可以审核；如需处理，请联系领取人释放或由省级管理员释放")


def _waiting(session: Session, user: User, declaration_id: int) -> HumanTask:
    """The open review task of a declaration, under its instance's lock; refuse if it waits for no review."""
    decl, task = _declaration_and_task(session, user, declaration_id, lock=True)
    if task is None:
        raise _not_waiting(decl)
    return task


def claim(session: Session, user: User, declaration_id: int) -> None:
    """领取 a waiting declaration so that other reviewers cannot decide it (under the instance lock: race-safe)."""
    task = _waiting(session, user, declaration_id)
    if task.claimed_by_id not in (None, user.id):
        raise _held_by_other(session, task)
    if task.claimed_by_id is None:
        task.claimed_by_id = user.id
        task.claimed_at = clock.now()


def release(session: Session, user: User, declaration_id: int) -> None:
    """释放 a claimed declaration: only the holder, or a province_admin, may."""
    task = _waiting(session, user, declaration_id)
    if task.claimed_by_id is None:
        raise ServiceError("该申报尚未被领取，无需释放")
    if task.claimed_by_id != user.id and user.role != ROLE_PROVINCE_ADMIN:
        raise Forbidden(f"该申报由{_holder_name(session, task)}领取，只有领取人或省级管理员可以释放")
    task.claimed_by_id = None
    task.claimed_at = None


def decide(session: Session, user: User, declaration_id: int, values: Mapping[str, Any],
           context: tuple[Declaration, HumanTask | None, FormSpec] | None = None) -> Declaration:
    """Record a reviewer's decision on an unclaimed declaration or one the reviewer holds (one held by another is
    refused); claims wait for the instance lock taken here, so none can slip in between.

    context: what review_context(..., for_update=True) returned for this declaration in the same request.
    """
    decl, task, form = context or review_context(session, user, declaration_id, for_update=True)
    errors = validate(form, values)
    if errors:
        raise ServiceError("审核信息有误", errors)
    if decl.instance_id is None or task is None:
        raise _not_waiting(decl)
    if task.claimed_by_id not in (None, user.id):  # an unclaimed one is decided (and so held) by this reviewer
        raise _held_by_other(session, task)
    comment = values.get("comment") or None
    step = lifecycle.decided(decl, user, values["decision"], form.choice_label("decision", values["decision"]),
                             comment)
    try:
        data = {"decision": values["decision"], "comment": values.get("comment", "")}
        engine().complete_task(session, decl.instance_id, task.task_id, actor_id=user.id, lanes=REVIEW_LANES,
                               data=data, side=step)
    except TaskNotAvailable:
        raise Forbidden("该申报已由其他审核员处理，请刷新查看最新结果") from None
    except EngineError as exc:
        raise ServiceError(str(exc)) from exc
    return decl


def bulk_approve(session: Session, user: User, declaration_ids: Sequence[int]) -> BulkOutcome:
    """批量审核通过: decide each through its process; skip (and say why) those that cannot be approved."""
    province = _require_reviewer(user)
    ids = sorted(set(declaration_ids))  # one lock order for concurrent bulks
    if not ids:
        raise ServiceError("请先勾选要审核通过的申报")
    if len(ids) > BULK_LIMIT:
        raise ServiceError(f"一次最多批量审核通过 {BULK_LIMIT} 条申报，当前勾选了 {len(ids)} 条，请分批处理")
    labels = {row.id: f"{row.school}（{row.certificate}·{row.level}）" for row in session.execute(
        select(Declaration.id, School.name.label("school"), Certificate.name.label("certificate"), Declaration.level)
        .join(School, School.id == Declaration.school_id).join(Certificate, Certificate.id == Declaration.certificate_id)
        .where(Declaration.id.in_(ids), Declaration.province_code == province))}
    outcome = BulkOutcome()
    for declaration_id in ids:
        label = labels.get(declaration_id)
        if label is None:
            outcome.skipped.append((f"编号 {declaration_id} 的申报", "不存在或不属于本省"))
            continue
        try:
            with savepoint(session):  # a refused item leaves nothing behind, its after-commit jobs included
                decide(session, user, declaration_id, {"decision": "approve", "comment": ""})
        except ServiceError as exc:
            outcome.skipped.append((label, exc.message))
        else:
            outcome.approved.append(label)
    return outcome
