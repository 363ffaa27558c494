"""What a staff user may see: the lanes it works and the scope of its role (nation, province, city, certificates),
narrowed to the certificates of the training-evaluation organisation it or its role belongs to."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import ROLE_PROVINCE_ADMIN, ROLE_PROVINCE_REVIEWER, ROLE_SCHOOL, User
from app.accounts.role_models import (
    SCOPE_CERTIFICATES,
    SCOPE_CITY,
    SCOPE_PROVINCE,
    OrganisationCertificate,
    Role,
    RoleCertificate,
)
from app.core.errors import Forbidden

# The province admin may do the provincial review as well (it works the review queue too).
EXTRA_LANES = {ROLE_PROVINCE_ADMIN: (ROLE_PROVINCE_REVIEWER,)}


@dataclass(frozen=True)
class StaffScope:
    """The lanes a user works and where: None means no limit on that side."""

    lanes: tuple[str, ...]
    province_code: str | None
    city_code: str | None
    certificate_ids: frozenset[int] | None

    def allows(self, province_code: str | None, city_code: str | None, certificate_id: int | None) -> bool:
        """Return whether a subject of this province, city and certificate is within the scope."""
        return ((self.province_code is None or province_code == self.province_code)
                and (self.city_code is None or city_code == self.city_code)
                and (self.certificate_ids is None or certificate_id in self.certificate_ids))


def organisation_certificates(session: Session, organisation_id: int) -> frozenset[int]:
    """Return the certificates an organisation holds."""
    return frozenset(session.scalars(select(OrganisationCertificate.certificate_id).where(
        OrganisationCertificate.organisation_id == organisation_id)))


def role_certificates(session: Session, code: str) -> frozenset[int]:
    """Return the certificates of a role scoped to a set of certificates."""
    return frozenset(session.scalars(select(RoleCertificate.certificate_id).where(RoleCertificate.role_code == code)))


def staff_scope(session: Session, user: User) -> StaffScope:
    """Return the lanes and scope of a staff user; refuse schools and users without a known role."""
    role = session.get(Role, user.role)
    if role is None or user.role == ROLE_SCHOOL:
        raise Forbidden("该账号没有待办事项")
    province = city = None
    if role.scope in (SCOPE_PROVINCE, SCOPE_CITY) or (role.scope == SCOPE_CERTIFICATES and user.province_code):
        if not user.province_code:
            raise Forbidden("该账号未设置所属省份，请联系流程分析员")
        province = user.province_code
    if role.scope == SCOPE_CITY:
        if not user.city_code:
            raise Forbidden("该账号未设置所属城市，请联系流程分析员")
        city = user.city_code
    certificates = (role_certificates(session, role.code) or None) if role.scope == SCOPE_CERTIFICATES else None
    organisation = user.organisation_id or role.organisation_id
    if organisation is not None:
        held = organisation_certificates(session, organisation)
        certificates = held if certificates is None else certificates & held
    if role.scope == SCOPE_CERTIFICATES and certificates is None:
        certificates = frozenset()  # a certificate role without certificates sees nothing, never everything
    return StaffScope((role.code, *EXTRA_LANES.get(role.code, ())), province, city, certificates)
