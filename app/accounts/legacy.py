"""Upgrade earlier weekly-report accounts to school accounts (user guide 二.1)."""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.accounts.registration import issue_account
from app.accounts.services import PHONE_RE, normalize_phone
from app.masterdata.models import School

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{3,64}$")


@dataclass
class LegacyReport:
    """Counts and rejected lines of a legacy account import."""

    added: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> str:
        return f"升级账号：新增 {self.added}，未变 {self.unchanged}，拒绝 {self.rejected}（新增账号的密码已通过短信发送）"


def import_legacy_accounts(session: Session, path: Path) -> LegacyReport:
    """Create school accounts from a csv of 学校标识码, 账号, 手机号; send each new password by SMS."""
    report = LegacyReport()
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return report
    header = [h.strip() for h in rows[0]]
    try:
        i_code, i_user, i_phone = header.index("学校标识码"), header.index("账号"), header.index("手机号")
    except ValueError:
        report.rejected += 1
        report.errors.append((1, "表头须包含：学校标识码, 账号, 手机号"))
        return report
    for line_no, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            report.rejected += 1
            report.errors.append((line_no, f"列数不足（应为 {len(header)} 列）"))
            continue
        code, username, phone = row[i_code].strip(), row[i_user].strip(), normalize_phone(row[i_phone])
        problem = _check_row(session, code, username, phone)
        if problem == "unchanged":
            report.unchanged += 1
            continue
        if problem:
            report.rejected += 1
            report.errors.append((line_no, problem))
            continue
        school = session.scalars(select(School).where(School.code == code)).one()
        issue_account(session, school, phone, origin="legacy", username=username)
        report.added += 1
    return report


def _check_row(session: Session, code: str, username: str, phone: str) -> str:
    if not code.isdigit():
        return f"学校标识码“{code}”格式不正确（应为数字）"
    school = session.scalars(select(School).where(School.code == code)).first()
    if school is None:
        return f"学校标识码 {code} 不在院校名单中，请先导入院校名单"
    if not USERNAME_RE.match(username):
        return f"账号“{username}”格式不正确（3–64 位字母、数字或 _.@-）"
    if not PHONE_RE.match(phone):
        return f"手机号“{phone}”不是 11 位中国大陆手机号"
    by_school = session.scalars(select(User).where(User.school_id == school.id)).first()
    by_name = session.scalars(select(User).where(User.username == username)).first()
    if by_school is not None and by_school.username == username:
        return "unchanged"
    if by_school is not None:
        return f"{school.name}已有账号 {by_school.username}，不能再升级为 {username}"
    if by_name is not None:
        return f"账号 {username} 已被其他院校或人员使用"
    return ""
