"""Reference data kept in memory between requests: process versions in force, forms built from master data.

Every request of a school or a reviewer needs the same small, rarely changing lists: which process version is
in force in a province, the certificates a plan offers, the majors of a school level, certificate names and
levels, division names. Reading them from the database each time is most of the SQL of a declaration.

Each app keeps them here, valid while a shared **generation number** stays the same. Whoever commits a change
to such data (an ORM flush touching one of the REFERENCE_MODELS, or a call to `changed()`) bumps the number in
Redis after the commit and empties its own copy at once. Other processes look at the number at most once per
`CHECK_SECONDS`, so they follow a change within about a second. If Redis cannot be asked, nothing is kept
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
from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)
GENERATION_KEY = "xpilot:refgen"
CHECK_SECONDS = 1.0
MAX_AGE_SECONDS = 300.0
T = TypeVar("T")


class ReferenceCache:
    """Values computed from reference data, dropped when the shared generation number moves."""

    def __init__(self, read_generation: Callable[[], int | None], bump_generation: Callable[[], None]) -> None:
        self._read = read_generation
        self._bump = bump_generation
        self._values: dict[Any, Any] = {}
        self._generation: int | None = None
        self._checked = 0.0
        self._born = 0.0
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
        if now - self._checked < CHECK_SECONDS and self._generation is not None:
            return True
        try:
            generation = self._read()
        except Exception:  # Redis away: keep nothing rather than serve what may be stale
            log.warning("reference cache: cannot read the generation number; not caching", exc_info=True)
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
        try:
            self._bump()
        except Exception:
            log.warning("reference cache: cannot bump the generation number; other processes follow within "
                        "%.0f s", MAX_AGE_SECONDS, exc_info=True)


def _redis_generation() -> int | None:
    from app.queue import jobs
    value = jobs.redis.get(GENERATION_KEY)
    return int(value) if value is not None else 0


def _redis_bump() -> None:
    from app.queue import jobs
    jobs.redis.incr(GENERATION_KEY)


def init_app(app: Any) -> None:
    app.extensions["xpilot_refcache"] = ReferenceCache(_redis_generation, _redis_bump)


def cache() -> ReferenceCache:
    """Return the current app's reference cache."""
    return current_app.extensions["xpilot_refcache"]  # type: ignore[no-any-return]


def cached(session: Session, key: Any, compute: Callable[[], T]) -> T:
    """Return a reference value of the current app.

    Computed afresh outside an app context, and in a transaction that has itself changed reference data (its
    own changes are not committed yet, so they are neither kept nor hidden behind an older copy).
    """
    if not has_app_context() or session.info.get("reference_changed"):
        return compute()
    if session.new and any(isinstance(obj, _reference_models()) for obj in session.new):
        return compute()
    return cache().get(key, compute)


def changed() -> None:
    """Tell every process that reference data changed (call after the commit that changed it)."""
    if has_app_context() and "xpilot_refcache" in current_app.extensions:
        cache().changed()


_MODELS: tuple[type, ...] = ()


def _reference_models() -> tuple[type, ...]:
    global _MODELS
    if not _MODELS:
        from app.models.masterdata import Certificate, Division, Major
        from app.models.plan import DeclarationPlan, PlanCertificate
        from app.models.process import ProcessVersion
        _MODELS = (Certificate, Division, Major, PlanCertificate, DeclarationPlan, ProcessVersion)
    return _MODELS


@event.listens_for(Session, "after_flush")
def _note_reference_changes(session: Session, _context: Any) -> None:
    if session.info.get("reference_changed"):
        return
    models = _reference_models()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, models):
            session.info["reference_changed"] = True
            return


@event.listens_for(Session, "after_commit")
def _announce_reference_changes(session: Session) -> None:
    if session.info.pop("reference_changed", False):
        changed()


@event.listens_for(Session, "after_rollback")
def _forget_reference_changes(session: Session) -> None:
    session.info.pop("reference_changed", None)
