"""Process-wide extension objects, bound to an app in create_app."""
from __future__ import annotations

import time
from typing import Any

from flask import Flask
from flask_login import LoginManager
from flask_wtf import CSRFProtect
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import scoped_session, sessionmaker

from app.core.transactions import take_after_end

login_manager = LoginManager()
csrf = CSRFProtect()
IDLE_PING_SECONDS = 5.0  # pooled connections idle longer than this are pinged before use (not SQLite)


class Database:
    """One SQLAlchemy engine and a scoped session per app."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.session = scoped_session(sessionmaker(expire_on_commit=False))

    def init_app(self, app: Flask, url: str) -> None:
        self.engine = make_engine(url)
        self.session.configure(bind=self.engine)

        @app.teardown_appcontext
        def _remove_session(exc: BaseException | None) -> None:
            callbacks = take_after_end(self.session()) if self.session.registry.has() else []
            self.session.remove()
            for callback in callbacks:
                callback()



def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Take the write lock at BEGIN so load-act-save is serialized like FOR UPDATE.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        engine.dialect._xpilot_sqlite = True  # type: ignore[attr-defined]
        # pysqlite's own transaction handling must be off for BEGIN IMMEDIATE to work.

        @event.listens_for(engine, "connect", insert=True)
        def _no_autobegin(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None

        return engine
    engine = create_engine(url, pool_size=10, max_overflow=20)

    # A connection that sat in the pool for a while (the database may have restarted meanwhile) is pinged when
    # taken out, and replaced if the ping fails; one in steady use is not (a ping is a round trip per request).
    @event.listens_for(engine, "checkin")
    def _idle_since(_dbapi_conn: Any, record: Any) -> None:
        record.info["xpilot_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("xpilot_idle_since")
        if since is None or time.monotonic() - since <= IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the pool discards this connection and checks out another
            raise DisconnectionError(f"idle connection failed its ping: {exc}") from exc

    return engine


db = Database()
