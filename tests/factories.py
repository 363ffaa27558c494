"""Factories for tests: demo data, logged-in clients, declarations."""
from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.accounts.models import User
from app.accounts.services import normalize_phone
from app.demo import DEMO_PASSWORD, load_demo
from app.extensions import db
from app.masterdata.models import Certificate, Major, School
from app.sms.models import SmsMessage

GOOD_DECLARATION = {
    "level": "中级", "majors": ["510201", "510203"], "trainee_count": "60",
    "teachers": "专任教师 8 人，其中 3 人持有 Web 前端开发中级证书，具备企业项目经验。",
    "facilities": "计算机实训室 3 间，每间 50 个工位，具备考核所需网络与软件环境。",
}


def with_demo(app: Flask) -> None:
    with app.app_context():
        load_demo(db.session())
        db.session.commit()


def login(client: FlaskClient, username: str, password: str = DEMO_PASSWORD) -> Any:
    return client.post("/login", data={"username": username, "password": password}, follow_redirects=False)


def texted_code(app: Flask, phone: str) -> str:
    """The newest registration code texted to the phone, as the phone (the outbox) shows it."""
    phone = normalize_phone(phone)
    with app.app_context():
        body = db.session.scalars(select(SmsMessage.body).where(
            SmsMessage.phone == phone, SmsMessage.template == "registration_code").order_by(SmsMessage.id.desc())).first()
    match = re.search(r"验证码：(\d{6})", body or "")
    assert match, f"no code texted to {phone}: {body!r}"
    return match.group(1)


def register(client: FlaskClient, school_name: str, phone: str, city: str = "440100", province: str = "440000",
             code: str | None = None) -> Any:
    """Fill the registration form for a school (广东 unless told), ask for the code, then register with it."""
    form = {"province": province, "city": city, "school": school_name, "phone": phone}
    if code is None:
        sent = client.post("/register", data={**form, "action": "send_code"})
        if sent.status_code != 200:
            return sent
        app = client.application
        code = texted_code(app, phone)
    return client.post("/register", data={**form, "sms_code": code, "action": "register"})


def certificate_id(app: Flask, name_part: str = "Web前端") -> int:
    with app.app_context():
        return db.session.scalars(select(Certificate.id).where(Certificate.name.contains(name_part))).one()


def school(app: Flask, name: str) -> School:
    with app.app_context():
        return db.session.scalars(select(School).where(School.name == name)).one()


def user(app: Flask, username: str) -> User:
    with app.app_context():
        return db.session.scalars(select(User).where(User.username == username)).one()


def complete_info(client: FlaskClient) -> Any:
    return client.post("/school/info", data={
        "education_level": "高职专科", "ownership": "公办", "contact_name": "陈老师", "contact_phone": "13900001111",
        "address": "广州市天河区示范路 1 号",
    })


def declaration_form(app: Flask, **overrides: Any) -> dict[str, Any]:
    data = dict(GOOD_DECLARATION)
    data["certificate_id"] = str(certificate_id(app))
    data.update(overrides)
    return data


def majors_of_level(app: Flask, level: str) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(Major.code).where(Major.level == level)))


def pending_registration(app: Flask, school_name: str, phone: str) -> int:
    """Register a school as the form does once the phone is proven, but leave the registration process's steps to
    the worker (as they are after a province's approval): return the waiting account's id."""
    from app.accounts.registration import start_registration

    with app.app_context():
        session = db.session()
        found = session.scalars(select(School).where(School.name == school_name)).one()
        account, _ = start_registration(session, found, phone)
        session.commit()
        return account.id
def school_account(app: Flask, school_name: str, phone: str = "13900002222") -> str:
    """Issue an account to a school of the demo list, its password the demo one; return its username."""
    from app.accounts.registration import issue_account

    with app.app_context():
        session = db.session()
        target = session.scalars(select(School).where(School.name == school_name)).one()
        creds = issue_account(session, target, phone, origin="registered")
        account = session.get(User, creds.user_id)
        account.must_change_password = False
        account.set_password(DEMO_PASSWORD)
        session.commit()
        return creds.username
