"""Add or update rows of one model by a key column, counting the outcome."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from sqlalchemy import String, select
from sqlalchemy.orm import Session

from app.core.db import Base
from app.masterdata.imports.report import ImportReport

M = TypeVar("M", bound=Base)


class Upserter(Generic[M]):
    """Load all rows of a model once, then add or update them one file row at a time."""

    def __init__(
        self,
        session: Session,
        model: type[M],
        key: str,
        report: ImportReport,
        labels: Mapping[str, str],
    ) -> None:
        self.session = session
        self.model = model
        self.key = key
        self.report = report
        self.labels = labels
        # One query per table instead of one per row keeps full-list imports fast.
        self.existing: dict[str, M] = {getattr(row, key): row for row in session.scalars(select(model))}
        self.seen: dict[str, int] = {}

    def apply(self, line: int, values: Mapping[str, Any]) -> M | None:
        """Add or update the row keyed by values[key]; reject repeats and values too long."""
        key_value = values[self.key]
        label = self.labels.get(self.key, self.key)
        if key_value in self.seen:
            self.report.reject(line, f"{label}“{key_value}”与第 {self.seen[key_value]} 行重复")
            return None
        problem = self._too_long(values)
        if problem:
            self.report.reject(line, problem)
            return None
        self.seen[key_value] = line
        row = self.existing.get(key_value)
        if row is None:
            row = self.model(**values)
            self.session.add(row)
            self.existing[key_value] = row
            self.report.added += 1
            return row
        changed = False
        for name, value in values.items():
            if getattr(row, name) != value:
                setattr(row, name, value)
                changed = True
        if changed:
            self.report.updated += 1
        else:
            self.report.unchanged += 1
        return row

    def _too_long(self, values: Mapping[str, Any]) -> str | None:
        columns = self.model.__table__.columns
        for name, value in values.items():
            column_type = columns[name].type
            limit = column_type.length if isinstance(column_type, String) else None
            if isinstance(value, str) and limit and len(value) > limit:
                return f"{self.labels.get(name, name)}过长（{len(value)} 字，最多 {limit} 字）"
        return None
