"""Transaction plumbing, in one place: actions after commit or after the session's work, savepoints whose actions
roll back with them, and the rows a transaction holds locked.

Everything here keeps its state in the session's `info` under keys of its own; no other module reads or writes them.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction, SessionTransactionOrigin

log = logging.getLogger(__name__)
_AFTER_COMMIT = "xpilot_after_commit"
_AFTER_END = "xpilot_after_end"
_HELD = "xpilot_held_rows"  # kind -> key -> the row, read fresh under a write lock in this transaction
_KEPT = "xpilot_kept"  # kind -> key -> a value the transaction made for its caller (never stored)


def after_commit(session: Session, callback: Callable[[], Any]) -> None:
    """Run callback once the session's transaction commits; drop it on rollback."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def after_end(session: Session, callback: Callable[[], Any]) -> None:
    """Run callback when the session's work is over, committed or not (at the end of the request or job), outside
    its transaction: for records that must outlive a rollback."""
    session.info.setdefault(_AFTER_END, []).append(callback)


def take_after_end(session: Session) -> list[Callable[[], Any]]:
    """Return (and forget) what after_end asked for, for the request's teardown to run once the session is gone."""
    return list(session.info.pop(_AFTER_END, []))


def end_session(session: Session) -> None:
    """Run what after_end asked for now (a job that goes on with the same session after a rollback)."""
    for callback in take_after_end(session):
        callback()


@contextmanager
def savepoint(session: Session) -> Iterator[None]:
    """Run a block in a savepoint: if it raises, its writes and the after-commit actions it added are undone."""
    pending = list(session.info.get(_AFTER_COMMIT, []))
    nested = session.begin_nested()
    try:
        yield
    except BaseException:
        nested.rollback()
        session.info[_AFTER_COMMIT] = pending
        raise
    nested.commit()


def hold(session: Session, kind: str, key: Any, row: Any) -> None:
    """Record a row the transaction read fresh under a write lock (or inserted), so that later steps of the same
    transaction use it as locked instead of asking the database again."""
    session.info.setdefault(_HELD, {}).setdefault(kind, {})[key] = row


def held(session: Session, kind: str, key: Any) -> Any:
    """Return a row of this kind the transaction holds locked, or None."""
    return session.info.get(_HELD, {}).get(kind, {}).get(key)


def keep(session: Session, kind: str, key: Any, value: Any) -> None:
    """Keep a value made in this transaction for the caller to read before the transaction ends (a generated
    password to show on the screen of the request that made it); it is forgotten when the transaction ends."""
    session.info.setdefault(_KEPT, {}).setdefault(kind, {})[key] = value


def kept(session: Session, kind: str, key: Any) -> Any:
    """Return a value this transaction kept, or None."""
    return session.info.get(_KEPT, {}).get(kind, {}).get(key)


def releases_locks(transaction: SessionTransaction) -> bool:
    """Whether the end of this session transaction can end row locks taken in it: the transaction itself, or a
    savepoint (rolled back, it releases the locks taken inside it). A flush runs in a subtransaction of its own,
    whose end releases nothing."""
    return transaction.origin is not SessionTransactionOrigin.SUBTRANSACTION


@event.listens_for(Session, "after_transaction_end")
def _forget_held(session: Session, transaction: SessionTransaction) -> None:
    # Any end of a transaction or savepoint: a savepoint rolled back releases the row locks taken inside it.
    if releases_locks(transaction):
        session.info.pop(_HELD, None)
    if transaction.parent is None:
        session.info.pop(_KEPT, None)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    for callback in session.info.pop(_AFTER_COMMIT, []):
        try:
            callback()
        except redis.RedisError as exc:
            # The transaction is committed: what it did stands and is answered as done. The job that could not
            # be queued is found by the worker's catch-up (app.processes.jobs.catch_up) once Redis is back.
            log.warning("after commit: Redis could not be asked (%s); the worker's catch-up queues it later", exc)


@event.listens_for(Session, "after_rollback")
def _drop_after_commit(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT, None)
