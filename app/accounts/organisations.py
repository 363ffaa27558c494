"""Training-evaluation organisations (培训评价组织): each holds certificates; the roles and users that belong to one
see the tasks of its certificates only, in every province."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import ROLE_ANALYST, ROLE_MINISTRY_ADMIN, User
from app.accounts.role_models import Organisation, OrganisationCertificate
from app.core.errors import Forbidden, ServiceError
from app.masterdata.models import Certificate
from app.sms.models import AuditEntry


@dataclass
class OrganisationRow:
    """An organisation with the names of its certificates."""

    organisation: Organisation
    certificates: list[str]


def certificate_choices(session: Session) -> list[Certificate]:
    """Return every certificate, for choosing the certificates of a role or an organisation."""
    return list(session.scalars(select(Certificate).order_by(Certificate.batch, Certificate.id)))


def organisations(session: Session) -> list[OrganisationRow]:
    """Return every organisation with its certificates' names."""
    names: dict[int, list[str]] = {}
    for org_id, name in session.execute(
            select(OrganisationCertificate.organisation_id, Certificate.name)
            .join(Certificate, Certificate.id == OrganisationCertificate.certificate_id).order_by(Certificate.id)):
        names.setdefault(org_id, []).append(name)
    return [OrganisationRow(o, names.get(o.id, []))
            for o in session.scalars(select(Organisation).order_by(Organisation.name))]


def parse_certificates(session: Session, raw: Iterable[str], errors: dict[str, str], field: str) -> list[int]:
    """Return the chosen certificate ids, adding an error for one that is not in the catalog."""
    try:
        chosen = sorted({int(value) for value in raw if str(value).strip()})
    except ValueError:
        errors[field] = "证书：请从列表中选择"
        return []
    known = set(session.scalars(select(Certificate.id).where(Certificate.id.in_(chosen)))) if chosen else set()
    if set(chosen) - known:
        errors[field] = "证书：请从列表中选择"
    return chosen


def parse_organisation(session: Session, raw: str, errors: dict[str, str]) -> Organisation | None:
    """Return the chosen organisation (none if left empty), adding an error for an unknown one."""
    raw = (raw or "").strip()
    if not raw:
        return None
    organisation = session.get(Organisation, int(raw)) if raw.isdigit() else None
    if organisation is None:
        errors["organisation_id"] = "所属培训评价组织：请从列表中选择"
    return organisation


def create_organisation(session: Session, user: User, name: str, certificate_ids: Iterable[str]) -> Organisation:
    """Add a training-evaluation organisation holding the chosen certificates."""
    if user.role not in (ROLE_ANALYST, ROLE_MINISTRY_ADMIN):
        raise Forbidden("只有流程分析员或部级管理员可以新增培训评价组织")
    name = name.strip()
    errors: dict[str, str] = {}
    if not 2 <= len(name) <= 64:
        errors["name"] = "组织名称：2–64 个字"
    elif session.scalars(select(Organisation.id).where(Organisation.name == name)).first() is not None:
        errors["name"] = f"组织名称：{name} 已存在"
    certificates = parse_certificates(session, certificate_ids, errors, "certificate_ids")
    if not certificates and "certificate_ids" not in errors:
        errors["certificate_ids"] = "持有的证书：请至少选择一个证书"
    if errors:
        raise ServiceError("培训评价组织信息有误", errors)
    organisation = Organisation(name=name, created_at=clock.now())
    session.add(organisation)
    session.flush()
    session.add_all(OrganisationCertificate(organisation_id=organisation.id, certificate_id=c) for c in certificates)
    session.add(AuditEntry(at=clock.now(), actor_id=user.id, action="create_organisation",
                           target=f"organisation:{organisation.id}",
                           detail=f"{user.display_name} 新增培训评价组织 {name}（{len(certificates)} 个证书）"))
    session.flush()
    return organisation
