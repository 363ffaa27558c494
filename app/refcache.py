"""Reference data kept in memory between requests: process versions in force, forms built from master data.

Every request of a school or a reviewer needs the same small, rarely changing lists: which process version is
in force in a province, the certificates a plan offers, the majors of a school level, certificate names and
levels, division names. Reading them from the database each time is most of the SQL of a declaration.

The logged-in user's account row and school row, read on every request, are kept the same way in a cache of
their own (kind "accounts"), so that a login, which writes the account row, does not drop the reference data.

Each app keeps them here, valid while a shared **generation number** (one per kind, in Redis: see KINDS)
stays the same. Whoever commits a change to such data (an ORM flush touching one of the models of `_kind_of`,
or a call to `changed()`) bumps the number after the commit and empties its own copy at once. Other processes
look at the number at most once per `CHECK_SECONDS`, so they follow a change within about a second. If Redis cannot be asked, nothing is kept
(every lookup goes to the database) until it can. A copy is also dropped after `MAX_AGE_SECONDS` whatever the
number says, in case a bump was lost between commit and Redis.

Values kept here are shared between requests: callers must treat them as read-only.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, has_app_context
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from app import rowwrites
from app.accounts.models import User
from app.masterdata.models import Certificate, Division, Major, School
from app.plans.models import DeclarationPlan, PlanCertificate
from app.processes.models import ProcessVersion
from app.queue import jobs

log = logging.getLogger(__name__)
CHECK_SECONDS = 1.0
MAX_AGE_SECONDS = 300.0
WARN_SECONDS = 60.0
T = TypeVar("T")
M = TypeVar("M")


class ReferenceCache:
    """Values computed from reference data, dropped when the shared generation number moves."""

    def __init__(self, read_generation: Callable[[], int | None], bump_generation: Callable[[], None]) -> None:
        self._read = read_generation
        self._bump = bump_generation
        self._values: dict[Any, Any] = {}
        self._generation: int | None = None
        self._checked = 0.0
        self._born = 0.0
        self._warned = -WARN_SECONDS
        self._lock = threading.Lock()

    def get(self, key: Any, compute: Callable[[], T]) -> T:
        """Return the kept value for key, computing (and keeping) it if there is none or the copy is stale."""
        if not self._fresh():
            return compute()
        try:
            return self._values[key]  # type: ignore[no-any-return]
        except KeyError:
            pass
        value = compute()
        with self._lock:
            self._values[key] = value
        return value

    def _fresh(self) -> bool:
        now = time.monotonic()
        if now - self._checked < CHECK_SECONDS:
            return self._generation is not None  # None: Redis was away at the last look, keep nothing meanwhile
        try:
            generation = self._read()
        except Exception as exc:  # Redis away: keep nothing rather than serve what may be stale
            self._warn(now, f"reference cache: cannot read the generation number ({exc}); not caching until it can")
            generation = None
        with self._lock:
            if generation is None or generation != self._generation or now - self._born > MAX_AGE_SECONDS:
                self._values.clear()
                self._born = now
            self._generation = generation
            self._checked = now
        return generation is not None

    def changed(self) -> None:
        """Reference data changed (and is committed): drop this copy and tell the other processes."""
        with self._lock:
            self._values.clear()
            self._generation = None
            self._checked = 0.0  # look again at the next lookup
        try:
            self._bump()
        except Exception as exc:
            self._warn(time.monotonic(), f"reference cache: cannot bump the generation number ({exc}); other "
                                         f"processes follow within {MAX_AGE_SECONDS:.0f} s")

    def _warn(self, now: float, message: str) -> None:
        """Log Redis trouble at most once per WARN_SECONDS (it would otherwise repeat on every request)."""
        if now - self._warned >= WARN_SECONDS:
            self._warned = now
            log.warning(message)


def _redis_generation(key: str) -> Callable[[], int | None]:
    def read() -> int | None:
        value = jobs.redis.get(key)
        return int(value) if value is not None else 0
    return read


def _redis_bump(key: str) -> Callable[[], None]:
    def bump() -> None:
        jobs.redis.incr(key)
    return bump


# kind -> generation key in Redis. "reference": master data, plans and their certificates, process versions;
# "accounts": account and school rows (who is logged in is checked on every request).
KINDS = {"reference": "xpilot:refgen", "accounts": "xpilot:usergen"}


def init_app(app: Any) -> None:
    app.extensions["xpilot_refcache"] = {kind: ReferenceCache(_redis_generation(key), _redis_bump(key))
                                         for kind, key in KINDS.items()}


def cache(kind: str = "reference") -> ReferenceCache:
    """Return one of the current app's caches."""
    return current_app.extensions["xpilot_refcache"][kind]  # type: ignore[no-any-return]


def cached(session: Session, key: Any, compute: Callable[[], T], kind: str = "reference") -> T:
    """Return a value of the current app's cache of that kind.

    Computed afresh outside an app context, and in a transaction that has itself changed data of that kind (its
    own changes are not committed yet, so they are neither kept nor hidden behind an older copy).
    """
    if not has_app_context() or kind in session.info.get(_CHANGED, ()):
        return compute()
    if session.new and any(_kind_of(obj) == kind for obj in session.new):
        return compute()
    return cache(kind).get(key, compute)


def attach(session: Session, model: type[M], ident: Any, kind: str = "reference") -> M | None:
    """Return the row of `model` with primary key `ident` as a persistent object of the session, built from the
    kept copy of its columns (read once, then shared by every request until the generation moves).

    The object behaves as if just loaded: changes are flushed as usual (only the changed columns), and
    relationships load lazily; many-to-one relationships to objects attached the same way cost no query.
    An object the session already has is returned as it is.
    """
    found = session.identity_map.get(identity_key(model, ident))
    if found is not None:
        return found  # type: ignore[no-any-return]
    values = cached(session, ("row", model.__name__, ident), lambda: _row_values(session, model, model_pk(model) == ident),
                    kind)
    return _attached(session, model, values) if values is not None else None


def attach_all(session: Session, model: type[M], key: Any, where: Callable[[], Any], order_by: Callable[[], Any],
               kind: str = "reference") -> list[M]:
    """Return the rows of `model` matching `where()` (kept under `key`) as persistent objects of the session."""
    def load() -> list[dict[str, Any]]:
        columns = _columns(model)
        rows = session.execute(select(*columns.values()).where(where()).order_by(*order_by())).all()
        return [dict(zip(columns, row, strict=True)) for row in rows]
    out: list[M] = []
    pk = _pk_key(model)
    for values in cached(session, ("rows", model.__name__, key), load, kind):
        found = session.identity_map.get(identity_key(model, values[pk]))
        out.append(found if found is not None else _attached(session, model, values))
    return out


def model_pk(model: type) -> Any:
    return getattr(model, _pk_key(model))


def _pk_key(model: type) -> str:
    mapper: Any = inspect(model)
    return str(mapper.get_property_by_column(mapper.primary_key[0]).key)


def _columns(model: type) -> dict[str, Any]:
    mapper: Any = inspect(model)
    return {attr.key: attr.columns[0] for attr in mapper.column_attrs}


def _row_values(session: Session, model: type, where: Any) -> dict[str, Any] | None:
    columns = _columns(model)
    row = session.execute(select(*columns.values()).where(where)).first()
    return dict(zip(columns, row, strict=True)) if row is not None else None


def _attached(session: Session, model: type[M], values: dict[str, Any]) -> M:
    obj = rowwrites.loaded(session, model, values)
    # The identity map holds objects weakly: keep attached ones alive for the transaction, so that a lazy load
    # (decl.school, school.city, ...) finds them even when the caller did not keep a reference.
    session.info.setdefault(_ATTACHED, []).append(obj)
    return obj


_ATTACHED = "xpilot_attached_rows"


@event.listens_for(Session, "after_transaction_end")
def _release_attached(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_ATTACHED, None)


def changed(kind: str = "reference") -> None:
    """Tell every process that data of that kind changed (call after the commit that changed it)."""
    if has_app_context() and "xpilot_refcache" in current_app.extensions:
        cache(kind).changed()


_CHANGED = "xpilot_changed_caches"
_MODELS: dict[type, str] = {}


def _kind_of(obj: object) -> str | None:
    if not _MODELS:
        for model in (Certificate, Division, Major, PlanCertificate, DeclarationPlan, ProcessVersion):
            _MODELS[model] = "reference"
        _MODELS[User] = _MODELS[School] = "accounts"
    return _MODELS.get(type(obj))


@event.listens_for(Session, "after_flush")
def _note_changes(session: Session, _context: Any) -> None:
    kinds = {_kind_of(obj) for obj in (*session.new, *session.dirty, *session.deleted)} - {None}
    if kinds:
        session.info.setdefault(_CHANGED, set()).update(kinds)


@event.listens_for(Session, "after_commit")
def _announce_changes(session: Session) -> None:
    for kind in session.info.pop(_CHANGED, ()):
        changed(kind)


@event.listens_for(Session, "after_rollback")
def _forget_changes(session: Session) -> None:
    session.info.pop(_CHANGED, None)
