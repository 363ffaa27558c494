"""Roles that lanes name; analysts can add review roles scoped to a province or a city."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import now
from app.core.db import Base

SCOPE_PROVINCE = "province"
SCOPE_CITY = "city"
SCOPE_SCHOOL = "school"
SCOPE_NATIONAL = "national"


class Role(Base):
    """A role: lanes of a diagram name one by its code; users hold one."""

    __tablename__ = "role"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(16))  # national / province / city / school
    builtin: Mapped[bool] = mapped_column(default=False)
    reviews: Mapped[bool] = mapped_column(default=False)  # works a review queue
    created_at: Mapped[datetime] = mapped_column(default=now)
