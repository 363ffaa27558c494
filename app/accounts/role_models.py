"""Roles that lanes name, scoped to the nation, a province, a city or a set of certificates; and the
training-evaluation organisations (培训评价组织) whose certificates scope the roles and users that belong to them."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import now
from app.core.db import Base

SCOPE_PROVINCE = "province"
SCOPE_CITY = "city"
SCOPE_SCHOOL = "school"
SCOPE_NATIONAL = "national"
SCOPE_CERTIFICATES = "certificates"  # the declarations of some certificates, in every province or in one


class Organisation(Base):
    """A training-evaluation organisation: it holds certificates, and its members see the tasks of those only."""

    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=now)


class OrganisationCertificate(Base):
    """A certificate an organisation holds."""

    __tablename__ = "organisation_certificate"

    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"), primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificate.id"), primary_key=True)


class Role(Base):
    """A role: lanes of a diagram name one by its code; users hold one."""

    __tablename__ = "role"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(16))  # national / province / city / certificates / school
    builtin: Mapped[bool] = mapped_column(default=False)
    reviews: Mapped[bool] = mapped_column(default=False)  # works a review queue
    # The role belongs to an organisation: its users see only the organisation's certificates.
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=now)


class RoleCertificate(Base):
    """A certificate of a role scoped to a set of certificates."""

    __tablename__ = "role_certificate"

    role_code: Mapped[str] = mapped_column(ForeignKey("role.code", ondelete="CASCADE"), primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificate.id"), primary_key=True)
