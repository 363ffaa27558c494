"""One-row writes of the hot paths, built once per shape and compiled once per dialect.

Building a Core statement, computing its cache key and looking up its compiled form costs the web process
several times what the database spends on a one-row write, and an engine step makes a handful of them. A
RowWrite only names its table, the columns it sets and the columns it matches; every write of the same shape
shares one statement, compiled once per dialect and run with `exec_driver_sql` (the type processors of the
compiled form still convert the values, so datetimes and JSON are stored exactly as the ORM stores them).

On PostgreSQL `execute(conn, writes, head=...)` runs the head and the writes as one statement: the writes
become data-modifying CTEs of the head. Elsewhere they run one by one.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import Table, and_, bindparam, inspect, literal_column
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session, make_transient_to_detached

M = TypeVar("M")

# Fixed extra conditions a write may carry, by name (constants written into the SQL, not parameters).
GUARDS: dict[str, Callable[[Table], Any]] = {
    "": lambda table: None,
    "open": lambda table: table.c.completed_at.is_(None),
    "live call": lambda table: table.c.status.in_([literal_column("'pending'"), literal_column("'failed'")]),
}


@dataclass(frozen=True)
class RowWrite:
    """INSERT (where None) or UPDATE ... WHERE column = value AND ... [AND guard] of one table."""

    table: Table
    values: Mapping[str, Any]
    where: Mapping[str, Any] | None = None
    guard: str = ""

    @property
    def shape(self) -> tuple[Any, ...]:
        return (self.table.name, tuple(self.values), None if self.where is None else tuple(self.where), self.guard)

    def statement(self, prefix: str) -> Any:
        """The statement of this shape, its parameters named with the prefix."""
        table = self.table
        values = {name: bindparam(f"{prefix}{name}", type_=table.c[name].type) for name in self.values}
        if self.where is None:
            return table.insert().values(values)
        conditions = [table.c[name] == bindparam(f"{prefix}w_{name}", type_=table.c[name].type)
                      for name in self.where]
        guard = GUARDS[self.guard](table)
        if guard is not None:
            conditions.append(guard)
        return table.update().where(and_(*conditions)).values(values)

    def params(self, prefix: str) -> dict[str, Any]:
        params = {f"{prefix}{name}": value for name, value in self.values.items()}
        for name, value in (self.where or {}).items():
            params[f"{prefix}w_{name}"] = value
        return params


@dataclass(frozen=True)
class _Compiled:
    sql: str
    processors: Mapping[str, Callable[[Any], Any]]
    positions: Sequence[str] | None  # parameter names in order, for positional drivers (SQLite)

    def run(self, conn: Connection, params: dict[str, Any]) -> Any:
        for name, process in self.processors.items():
            if name in params:
                params[name] = process(params[name])
        if self.positions is not None:
            return conn.exec_driver_sql(self.sql, tuple(params[name] for name in self.positions))
        return conn.exec_driver_sql(self.sql, params)


_COMPILED: dict[tuple[Any, ...], _Compiled] = {}


def _compiled(dialect: Dialect, key: tuple[Any, ...], build: Callable[[], Any]) -> _Compiled:
    full_key = (dialect.name, key)
    hit = _COMPILED.get(full_key)
    if hit is None:
        compiled = build().compile(dialect=dialect)
        positions = list(compiled.positiontup or []) if dialect.positional else None
        hit = _Compiled(compiled.string, dict(compiled._bind_processors), positions)
        _COMPILED[full_key] = hit
    return hit


def insert_returning_id(conn: Connection, write: RowWrite) -> int:
    """Run an INSERT write and return the new row's id (RETURNING: PostgreSQL, SQLite 3.35 and later)."""
    assert write.where is None, "an INSERT"
    compiled = _compiled(conn.dialect, ("insert returning id", write.shape),
                         lambda: write.statement("p_").returning(write.table.c.id))
    return int(compiled.run(conn, write.params("p_")).scalar_one())


def insert_loaded(session: Session, model: type[M], values: dict[str, Any]) -> M:
    """Insert a row of `model` and return it as a persistent object of the session, as if just loaded.

    Columns not given take the model's defaults (None where it has none), so that every column is loaded and
    nothing is left to load lazily. The ORM's unit of work, which costs more than the INSERT, is not involved;
    later changes to the object are flushed as usual.
    """
    table = cast(Table, model.__table__)  # type: ignore[attr-defined]
    row = dict(values)
    for column in table.columns:
        if column.key in row or column.key == "id":
            continue
        default: Any = column.default
        if default is None:
            row[column.key] = None
        elif default.is_callable:
            row[column.key] = default.arg(None)  # SQLAlchemy wraps a plain callable to take the context
        elif default.is_scalar:
            row[column.key] = default.arg
        else:
            raise ValueError(f"insert_loaded({model.__name__}): column {column.key} has a default it cannot compute")
    return loaded(session, model, dict(row, id=insert_returning_id(session.connection(), RowWrite(table, row))))


def loaded(session: Session, model: type[M], values: dict[str, Any]) -> M:
    """Return an object of `model` with these column values as a persistent object of the session, built as the ORM
    builds a loaded row (no constructor, no attribute events): the values are its committed state."""
    mapper: Any = inspect(model)
    obj = mapper.class_manager.new_instance()
    obj.__dict__.update(values)
    make_transient_to_detached(obj)
    session.add(obj)
    return obj  # type: ignore[no-any-return]


def run_one(conn: Connection, write: RowWrite) -> Any:
    """Run one write; return the driver's result (rowcount)."""
    return _compiled(conn.dialect, ("one", write.shape), lambda: write.statement("p_")).run(conn, write.params("p_"))


def execute(conn: Connection, writes: Sequence[RowWrite], *, head: RowWrite) -> None:
    """Run the head and the writes: one statement on PostgreSQL (the writes as CTEs of the head), one per write
    elsewhere."""
    if conn.dialect.name != "postgresql":
        for write in (head, *writes):
            run_one(conn, write)
        return

    def build() -> Any:
        statement = head.statement("h_")
        for index, write in enumerate(writes):
            statement = statement.add_cte(write.statement(f"w{index}_").cte(f"step_write_{index}"))
        return statement

    key = ("step", head.shape, tuple(write.shape for write in writes))
    params = head.params("h_")
    for index, write in enumerate(writes):
        params.update(write.params(f"w{index}_"))
    _compiled(conn.dialect, key, build).run(conn, params)
