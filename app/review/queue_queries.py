"""The review queue's statements, shaped so that an index leads on SQLite and on PostgreSQL (see bench/closure.py),
and the statements a review reads a declaration with, built once and run with parameters."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Join, Select, and_, bindparam, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased

from app import clock
from app.accounts.models import ROLE_PROVINCE_REVIEWER, User
from app.declarations.models import Declaration
from app.engine import engine
from app.engine.vocabulary import DRAFT
from app.masterdata.models import Certificate, School
from app.processes.models import HumanTask, ProcessInstance

REVIEW_LANES = (ROLE_PROVINCE_REVIEWER,)
STATUS_ALL = "全部"
STATUS_OPEN = ""  # the default: declarations with an open provincial review task
PER_PAGE_CHOICES = (20, 50, 100, 200)
FEW = 1000  # matches that SQLite sorts rather than finds by walking the queue in order
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


def statements(province: str, f: QueueFilters, lookup: bool = False) -> tuple[AnySelect, AnySelect]:
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


def next_id(session: Session, province: str, f: QueueFilters, decl: Declaration, school: School,
            task: HumanTask | None) -> int | None:
    """Return the declaration after this one in the filtered, sorted queue (下一条), or None.

    A keyset on the queue's own order (one row of the page query, walked from this declaration's place): task is
    the declaration's review task (open or just completed), the order's key in the open queue.
    """
    when: Any
    mine: tuple[datetime | None, int]
    if f.status == STATUS_OPEN:
        if task is None:
            return None
        when, tiebreak, mine = HumanTask.created_at, HumanTask.id, (task.created_at, task.id)
    else:
        when, tiebreak, mine = Declaration.submitted_at, Declaration.id, (decl.submitted_at, decl.id)
    if mine[0] is None:  # not submitted: no place in the order by submission time
        return None
    keys: list[tuple[Any, Any]] = [(when, mine[0]), (tiebreak, mine[1])]
    if f.sort == "school":
        keys = [(School.name_sort, school.name_sort), (School.name, school.name), *keys]
    later = (lambda column, value: column < value) if f.sort == "submitted_desc" else (
        lambda column, value: column > value)
    # (k1 > v1) or (k1 = v1 and k2 > v2) or ...: the rows after this one in the order
    after = or_(*(and_(*(column == value for column, value in keys[:i]), later(*keys[i])) for i in range(len(keys))))
    rows = statements(province, f)[0].where(after).limit(1)
    row = session.execute(rows).first()
    return row[0].id if row is not None else None


def count(session: Session, province: str, f: QueueFilters) -> int:
    """Return how many declarations of the province match the filters."""
    return session.scalar(statements(province, f)[1]) or 0


def page_rows(session: Session, province: str, f: QueueFilters, total: int) -> list[tuple[Any, ...]]:
    """Return the filtered page: (declaration, school name, city code, certificate name, open review task, holder)."""
    # SQLite's planner believes open tasks are rare (sqlite_stat1 averages over completed_at) and would walk the
    # whole queue for a handful of matches; PostgreSQL plans the joined form well and the lookup form badly.
    lookup = total <= FEW and session.get_bind().dialect.name == "sqlite"
    rows = statements(province, f, lookup)[0]
    return [tuple(row) for row in session.execute(rows.offset((f.page - 1) * f.per_page).limit(f.per_page))]


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


def declaration_and_task(session: Session, declaration_id: int, lock: bool) -> tuple[Declaration, HumanTask | None] | None:
    """Return a declaration and its open review task (None: no such declaration); lock: its instance first."""
    params = {"declaration_id": declaration_id}
    if lock:
        instance = session.scalars(_INSTANCE_OF_DECLARATION_LOCKED, params).first()
        if instance is not None:
            engine().hold(session, instance)
    row = session.execute(_DECLARATION_AND_TASK_FRESH if lock else _DECLARATION_AND_TASK, params).first()
    return (row[0], row[1]) if row is not None else None
