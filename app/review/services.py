"""Provincial review: the queue with filters, claims (领取 / 释放), decisions and bulk approval."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from app import clock, refcache
from app.accounts.models import ROLE_PROVINCE_ADMIN, ROLE_PROVINCE_REVIEWER, User
from app.core.errors import Forbidden, NotFound, ServiceError
from app.core.transactions import savepoint
from app.declarations import lifecycle
from app.declarations.models import Declaration, DeclarationEvent
from app.declarations.services import history, major_names
from app.engine import engine
from app.engine.runtime import EngineError, TaskNotAvailable
from app.engine.vocabulary import DRAFT, WAITING, Vocabulary
from app.forms import FormSpec, build_form, validate
from app.masterdata.models import CERTIFICATE_LEVELS, LEVEL_PREFECTURE, Certificate, Division, School
from app.plans.models import DeclarationPlan
from app.processes.models import HumanTask
from app.review import queue_queries
from app.review.queue_queries import PER_PAGE_CHOICES, REVIEW_LANES, STATUS_ALL, STATUS_OPEN, QueueFilters

OPEN_LABEL = "等待省级审核"
SORTS = {"submitted": "提交时间（从早到晚）", "submitted_desc": "提交时间（从晚到早）", "school": "院校名称"}
BULK_LIMIT = 100
SCHOOL_QUERY_MAX = 64
QUERY_KEYS = ("status", "certificate", "level", "city", "school", "from", "to", "sort", "per_page", "page")
CHOICE_ERRORS = {"status": "状态：请从列表中选择", "certificate": "证书：请从列表中选择",
                 "level": "证书等级：请选择初级、中级或高级", "city": "城市：请从本省的城市中选择",
                 "sort": "排序：请从列表中选择",
                 "per_page": f"每页条数：请选择 {'、'.join(map(str, PER_PAGE_CHOICES[:-1]))} 或 {PER_PAGE_CHOICES[-1]}"}
CONTENT_LABELS = {"certificate_id": "证书", "level": "证书等级", "majors": "拟申请专业", "trainee_count": "培训人数",
                  "teachers": "师资情况", "facilities": "场地情况"}


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
class FieldChange:
    """A field of a resubmitted declaration that the school changed since it was returned."""

    label: str
    before: str
    after: str


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
    next_id: int | None = None  # 下一条 in the queue the reviewer came from
    returned: DeclarationEvent | None = None  # the last decision that returned it, when resubmitted since
    changes: list[FieldChange] = field(default_factory=list)  # what changed since then


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


def queue_page(session: Session, user: User, args: Mapping[str, str]) -> QueuePage:
    """Return one page of the province's declarations (waiting for review by default) with the filters applied."""
    province = _require_reviewer(user)
    page = _queue_filters(session, province, args)
    if page.errors:
        return page
    filters = page.filters
    page.total = queue_queries.count(session, province, filters)
    filters.page = min(filters.page, page.pages)
    page.rows = [QueueRow(decl, school, city, certificate, task, holder) for decl, school, city, certificate, task, holder
                 in queue_queries.page_rows(session, province, filters, page.total)]
    return page


def _queue_filters(session: Session, province: str, args: Mapping[str, str]) -> QueuePage:
    """Read the queue's filters (and the choices they are checked against) into an empty page."""
    certificates: list[tuple[int, str]] = refcache.cached(session, ("queue certificates",), lambda: [
        (c.id, c.name) for c in session.execute(select(Certificate.id, Certificate.name).order_by(Certificate.name))])
    cities: list[tuple[str, str]] = refcache.cached(session, ("queue cities", province), lambda: [
        (c.code, c.name) for c in session.execute(
            select(Division.code, Division.name).where(Division.province_code == province,
                                                       Division.level == LEVEL_PREFECTURE).order_by(Division.code))])
    statuses = queue_statuses(engine().vocabulary(session, "declaration", province))
    filters, raw, errors = parse_filters(args, {c for c, _ in certificates}, {c for c, _ in cities},
                                         [value for value, _ in statuses])
    return QueuePage(filters, raw, errors, certificates=certificates, cities=cities, statuses=statuses)


def next_in_queue(session: Session, user: User, args: Mapping[str, str], decl: Declaration,
                  task: HumanTask | None) -> int | None:
    """下一条: the declaration after this one in the queue filtered and sorted by args (None: it is the last one,
    or the filters are wrong). task: its review task, open or just completed."""
    province = _require_reviewer(user)
    page = _queue_filters(session, province, args)
    if page.errors:
        return None
    school = refcache.attach(session, School, decl.school_id, kind="accounts")
    return queue_queries.next_id(session, province, page.filters, decl, school, task) if school else None


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
    found = queue_queries.declaration_and_task(session, declaration_id, lock)
    if found is None or found[0].province_code != province:
        raise NotFound("申报不存在")
    return found


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


def review_page(session: Session, user: User, declaration_id: int,
                queue_args: Mapping[str, str] | None = None) -> ReviewPage:
    """Return the whole declaration, its school, its history, who holds it, the review form, what changed since it
    was last returned, and (queue_args: the queue's filters the reviewer came from) the next one in that queue."""
    decl, task, form = review_context(session, user, declaration_id, whole=True)
    school = decl.school
    events = history(session, decl.id)
    page = ReviewPage(decl, school, task, _holder_name(session, task), form, events,
                      major_names(session, list(decl.majors)))
    page.returned, page.changes = changes_since_returned(session, decl, events)
    if queue_args is not None:
        page.next_id = next_in_queue(session, user, queue_args, decl, task)
    return page


def changes_since_returned(session: Session, decl: Declaration,
                           events: Sequence[DeclarationEvent]) -> tuple[DeclarationEvent | None, list[FieldChange]]:
    """The last decision that returned the declaration to the school, if the school submitted it again after it,
    and the fields that differ between the content then and now."""
    decided = [i for i, e in enumerate(events) if e.snapshot is not None]
    if not decided or not any(e.action == lifecycle.SUBMITTED for e in events[decided[-1] + 1:]):
        return None, []
    returned = events[decided[-1]]
    before, now = returned.snapshot or {}, lifecycle.content(decl)
    names = major_names(session, sorted({*before.get("majors", []), *now["majors"]}))

    def shown(name: str, value: Any) -> str:
        if name == "majors":
            return "；".join(f"{code} {names.get(code, '')}".strip() for code in value or [])
        if name == "certificate_id":
            certificate = refcache.attach(session, Certificate, value) if value is not None else None
            return certificate.name if certificate is not None else ""
        return "" if value is None else str(value)

    changes = [FieldChange(label, shown(name, before.get(name)), shown(name, now[name]))
               for name, label in CONTENT_LABELS.items() if before.get(name) != now[name]]
    return returned, changes


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


def _checked_ids(declaration_ids: Sequence[int]) -> list[int]:
    ids = sorted(set(declaration_ids))  # one lock order for concurrent bulks
    if not ids:
        raise ServiceError("请先勾选要审核通过的申报")
    if len(ids) > BULK_LIMIT:
        raise ServiceError(f"一次最多批量审核通过 {BULK_LIMIT} 条申报，当前勾选了 {len(ids)} 条，请分批处理")
    return ids


def _labels(session: Session, province: str, ids: Sequence[int]) -> dict[int, str]:
    """How a bulk approval names each declaration of the province: 院校（证书·等级）."""
    return {row.id: f"{row.school}（{row.certificate}·{row.level}）" for row in session.execute(
        select(Declaration.id, School.name.label("school"), Certificate.name.label("certificate"), Declaration.level)
        .join(School, School.id == Declaration.school_id).join(Certificate, Certificate.id == Declaration.certificate_id)
        .where(Declaration.id.in_(ids), Declaration.province_code == province))}


@dataclass
class BulkPreview:
    """What a bulk approval would do, asked before it is done: the declarations it would approve (each school gets
    one text message) and those it would skip, with the reason."""

    ids: list[int]
    province_name: str
    approvable: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def bulk_preview(session: Session, user: User, declaration_ids: Sequence[int]) -> BulkPreview:
    """Count, without deciding anything, what 批量审核通过 of these declarations would do (two statements)."""
    province = _require_reviewer(user)
    ids = _checked_ids(declaration_ids)
    labels = _labels(session, province, ids)
    open_tasks = dict(session.execute(
        select(Declaration.id, HumanTask.claimed_by_id).join(HumanTask, and_(
            HumanTask.instance_id == Declaration.instance_id, HumanTask.lane.in_(REVIEW_LANES),
            HumanTask.completed_at.is_(None))).where(Declaration.id.in_(list(labels)))).all())
    division = refcache.attach(session, Division, province)
    preview = BulkPreview(ids, division.name if division is not None else province)
    for declaration_id in ids:
        label = labels.get(declaration_id)
        if label is None:
            preview.skipped.append((f"编号 {declaration_id} 的申报", "不存在或不属于本省"))
        elif declaration_id not in open_tasks:
            preview.skipped.append((label, "没有等待省级审核"))
        elif open_tasks[declaration_id] not in (None, user.id):
            preview.skipped.append((label, "已由其他审核员领取"))
        else:
            preview.approvable.append(label)
    return preview


def bulk_approve(session: Session, user: User, declaration_ids: Sequence[int]) -> BulkOutcome:
    """批量审核通过: decide each through its process; skip (and say why) those that cannot be approved."""
    province = _require_reviewer(user)
    ids = _checked_ids(declaration_ids)
    labels = _labels(session, province, ids)
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
