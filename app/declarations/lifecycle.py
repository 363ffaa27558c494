"""The declaration lifecycle: the one writer of a declaration's status, its meaning, its lock and its history.

Every change of state goes through here: creating a declaration, saving and submitting it, a decision, any other
task done on it (a province's own steps), bulk approval, and the deadline's expiry. The status word and its meaning
come from the declaration's process (app.engine.vocabulary); a declaration is locked while the school has no open
task on it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from app import clock, rowwrites
from app.accounts.models import ROLE_SCHOOL, User
from app.declarations.models import Declaration, DeclarationEvent
from app.engine.runtime import Change, Insert, StepOutcome, SubjectWrite
from app.engine.vocabulary import DRAFT, EXPIRED, REJECTED, WAITING, Vocabulary

# History actions and how the history names them.
CREATED, SAVED, SUBMITTED, APPROVE, REJECT, TASK, EXPIRE, LOCKED, PROCESS = (
    "created", "saved", "submitted", "approve", "reject", "task", "expired", "locked", "process")
# The content a school fills in, kept with each decision so that a resubmission shows what changed since.
CONTENT_FIELDS = ("certificate_id", "level", "majors", "trainee_count", "teachers", "facilities")
ACTION_LABELS = {CREATED: "新建", SAVED: "保存", SUBMITTED: "提交审核", APPROVE: "审核：通过", REJECT: "审核：不通过",
                 TASK: "办理", EXPIRE: "过期", LOCKED: "截止", PROCESS: "流程推进"}


@dataclass(frozen=True)
class Entry:
    """A history entry to write with a step: after tells whether it carries the status after the step; label names
    what was done in the words of the step's form (a decision's x-enum-labels), shown instead of the action's name."""

    action: str
    text: str
    comment: str | None = None
    after: bool = True
    label: str = ""
    snapshot: dict[str, Any] | None = None


def new_declaration(session: Session, values: dict[str, Any]) -> Declaration:
    """Insert a declaration (not yet started: no status until its process says one) and return it as loaded."""
    now = clock.now()
    return rowwrites.insert_loaded(session, Declaration, dict(
        values, status="", status_meaning=DRAFT, locked=False, created_at=now, updated_at=now))


class Step:
    """A declaration's new state and history entries, made from an engine step's outcome and written with the
    step (the engine's side writes)."""

    def __init__(self, decl: Declaration, user: User | None, entries: Sequence[Entry], **changes: Any) -> None:
        self.decl = decl
        self.user = user
        self.entries = entries
        self.changes = changes

    def __call__(self, outcome: StepOutcome) -> list[SubjectWrite]:
        before = self.decl.status
        now = clock.now()
        writes: list[SubjectWrite] = [Change(self.decl, {"instance_id": outcome.instance_id, **_state(outcome),
                                                         **self.changes})]
        # Statements of one step run in no set order, so the entries are a microsecond apart to keep their order.
        writes.extend(Insert(DeclarationEvent, _entry_row(
            self.decl.id, self.user, now + timedelta(microseconds=index), e.action,
            outcome.status if e.after else before, e.comment or ("" if e.label else e.text), e.label, e.snapshot))
            for index, e in enumerate(self.entries))
        return writes


def _state(outcome: StepOutcome) -> dict[str, Any]:
    """The status, its meaning and the lock a step leaves a declaration in."""
    locked = not outcome.waits_for(ROLE_SCHOOL)
    # A status the version does not declare (one published before statuses were declared) reads by the lock.
    return {"status": outcome.status, "status_meaning": outcome.meaning or (WAITING if locked else DRAFT),
            "locked": locked, "updated_at": clock.now()}


def created(decl: Declaration, user: User, submit: bool) -> Step:
    """The first step of a new declaration: a draft, or submitted at once."""
    entries = [Entry(CREATED, "新建申报", after=not submit)]
    if submit:
        return Step(decl, user, [*entries, Entry(SUBMITTED, "提交审核")], submitted_at=clock.now())
    return Step(decl, user, entries)


def submitted(decl: Declaration, user: User) -> Step:
    """The school submits an edited declaration."""
    return Step(decl, user, [Entry(SUBMITTED, "提交审核")], submitted_at=clock.now(), review_comment=None)


def decided(decl: Declaration, user: User, decision: str, label: str, comment: str | None) -> Step:
    """A reviewer's decision (label: the decision as the review form names it, from its x-enum-labels)."""
    return Step(decl, user, [Entry(decision if decision in (APPROVE, REJECT) else TASK, label, comment, label=label,
                                   snapshot=content(decl))],
                decided_at=clock.now(), review_comment=comment)


def content(decl: Declaration) -> dict[str, Any]:
    """The declaration's content as the school filled it in (what a decision is about)."""
    return {name: list(decl.majors or []) if name == "majors" else getattr(decl, name) for name in CONTENT_FIELDS}


def task_done(decl: Declaration, user: User, title: str, decision: Any, label: str, comment: str | None) -> Step:
    """Any other task done on a declaration (a province's own step), with its decision if its form has one."""
    if decision:
        return decided(decl, user, str(decision), f"{title}：{label}", comment)
    return Step(decl, user, [Entry(TASK, title, label=title)])


def followed(subject_type: str, subject_id: int, outcome: StepOutcome, previous_status: str) -> list[SubjectWrite]:
    """A declaration's writes after a step of its process that nobody took on it (a timer fired, a message was sent)
    and that changed its status or its open tasks (the engine's Hooks.followed)."""
    if subject_type != "declaration":
        return []
    writes: list[SubjectWrite] = [Change((Declaration, subject_id), _state(outcome))]
    if outcome.status != previous_status:
        writes.append(Insert(DeclarationEvent, _entry_row(subject_id, None, clock.now(), PROCESS, outcome.status,
                                                          f"流程推进，状态变为“{outcome.status}”")))
    return writes


def saved(session: Session, decl: Declaration, user: User) -> None:
    """Record a saved draft (the process does not move, so neither does the status)."""
    decl.updated_at = clock.now()
    decl.revision += 1
    session.add(DeclarationEvent(**_entry_row(decl.id, user, clock.now(), SAVED, decl.status, "保存（暂不提交审核）")))


@dataclass
class Closed:
    """What the end of a declaration window did."""

    expired: list[int]
    locked: list[int]
    expired_status: str
    final_status: dict[int, str]


def close_window(session: Session, rows: Sequence[Any], vocabulary: Vocabulary, deadline: datetime) -> Closed:
    """End the window of the declarations the school still holds: drafts expire, those returned to the school are
    decided for good (as not approved). rows: (id, status, status_meaning) of each, with its open school task."""
    now = clock.now()
    drafts = [r.id for r in rows if r.status_meaning == DRAFT]
    returned = [r for r in rows if r.status_meaning != DRAFT]
    expired_status = vocabulary.first(EXPIRED) or EXPIRED
    final = vocabulary.first(REJECTED)
    for start in range(0, len(drafts), 1000):
        session.execute(update(Declaration).where(Declaration.id.in_(drafts[start:start + 1000])).values(
            status=expired_status, status_meaning=EXPIRED, locked=True, updated_at=now))
    final_status: dict[int, str] = {}
    for r in returned:
        final_status[r.id] = final or r.status
    if returned:
        changes: dict[str, Any] = {"status_meaning": REJECTED, "locked": True, "updated_at": now}
        if final:
            changes["status"] = final
        session.execute(update(Declaration).where(Declaration.id.in_([r.id for r in returned])).values(**changes))
    text = f"申报截止（{clock.format_local(deadline)}）"
    entries = [_entry_row(i, None, now, EXPIRE, expired_status, f"{text}，未提交，状态变为“{expired_status}”") for i in drafts]
    entries += [_entry_row(r.id, None, now, LOCKED, final_status[r.id], f"{text}，退回修改的申报不能再提交")
                for r in returned]
    if entries:
        session.execute(insert(DeclarationEvent), entries)
    return Closed(drafts, [r.id for r in returned], expired_status, final_status)


def _entry_row(declaration_id: int, user: User | None, at: datetime, action: str, status: str,
               comment: str, label: str = "", snapshot: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"declaration_id": declaration_id, "at": at, "actor_id": user.id if user else None,
            "actor_name": user.display_name if user else "系统", "action": action, "status": status,
            "comment": comment or None, "label": label or None, "snapshot": snapshot}
