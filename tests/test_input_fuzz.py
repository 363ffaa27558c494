"""Bad bytes in any input: control characters refused naming the field, phones read in any digits, no server error."""
from __future__ import annotations

import random
import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.routing.converters import NumberConverter

from app.accounts.models import User
from app.declarations.models import Declaration
from app.extensions import db
from app.masterdata.models import School
from app.processes.services import shipped_forms
from app.sms.models import SmsMessage
from app.web.control_characters import FIELD_LABELS
from tests.factories import complete_info, declaration_form, login, register, with_demo

LINGNAN = "岭南交通职业技术学院"


def _school_client(app: Flask) -> Any:
    client = app.test_client()
    assert login(client, "zjxx_weekly").status_code == 302
    assert complete_info(client).status_code == 302
    return client


def _refusal(response: Any) -> str:
    assert response.status_code == 422, response.status_code
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


# -- control characters --------------------------------------------------------------------------

def test_a_nul_in_the_declaration_form_is_refused_naming_the_field(app):
    with_demo(app)
    client = _school_client(app)
    page = _refusal(client.post("/school/declarations/new", data={
        **declaration_form(app, teachers="专任教师 8 人\x00，其中 3 人持证"), "action": "submit"}))
    assert "“师资情况”含有不允许的控制字符" in page
    with app.app_context():
        assert db.session.scalars(select(Declaration)).first() is None


@pytest.mark.parametrize(("method", "url", "data", "label"), [
    ("post", "/login", {"username": "zjxx\x00weekly", "password": "x"}, "账号"),
    ("get", "/register/schools?province=440000&q=%E5%B2%AD%00", None, "搜索内容"),
    ("get", "/register/cities?province=44%000000", None, "所在省市"),
    ("post", "/register", {"province": "440000", "city": "440100", "school": LINGNAN + "\x1b", "phone": "13712345678"},
     "院校名称"),
], ids=["login-name", "school-search", "cities", "registration"])
def test_control_characters_in_public_inputs_are_refused_naming_the_field(app, method, url, data, label):
    with_demo(app)
    response = getattr(app.test_client(), method)(url, data=data)
    assert f"“{label}”含有不允许的控制字符" in _refusal(response)


def test_the_school_info_form_refuses_control_characters_but_keeps_line_breaks_and_tabs(app):
    with_demo(app)
    client = _school_client(app)
    info = {"education_level": "高职专科", "ownership": "公办", "contact_name": "陈老师", "contact_phone": "13900001111",
            "address": "广州市天河区示范路 1 号"}
    refused = client.post("/school/info", data={**info, "address": "广州市\x00天河区示范路 1 号"})
    assert "“通讯地址”含有不允许的控制字符" in _refusal(refused)
    kept = client.post("/school/info", data={**info, "introduction": "第一行\r\n\t第二行"})
    assert kept.status_code == 302
    with app.app_context():
        school = db.session.scalars(select(School).where(School.name == "珠江信息职业学院")).one()
        assert school.introduction.replace("\r\n", "\n") == "第一行\n\t第二行"


def test_an_unknown_parameter_is_named_as_sent(app):
    response = app.test_client().get("/?xyz=%01")
    assert "“xyz”含有不允许的控制字符" in _refusal(response)


def test_the_diagram_check_refuses_control_characters_in_its_own_form(app):
    with_demo(app)
    client = app.test_client()
    login(client, "analyst")
    response = client.post("/processes/declaration/check", data={"xml": "<x/>", "scenario": "submit\x00"})
    assert "“试运行场景”含有不允许的控制字符" in _refusal(response)


# -- phones --------------------------------------------------------------------------------------

@pytest.mark.parametrize("typed", ["13٩٠٠٠٠٠٠٠٧", "１３９０００００００７", "139 0000 0007"])
def test_a_phone_typed_in_other_digits_is_stored_and_texted_in_ascii(app, typed):
    with_demo(app)
    client = app.test_client()
    response = register(client, LINGNAN, typed)
    assert response.status_code == 200, response.get_data(as_text=True)
    with app.app_context():
        account = db.session.scalars(select(User).join(School, School.id == User.school_id)
                                     .where(School.name == LINGNAN)).one()
        assert account.phone == "13900000007"
        texted = [(m.template, m.phone) for m in db.session.scalars(select(SmsMessage).order_by(SmsMessage.id))]
        assert texted == [("registration_code", "13900000007"), ("account_issued", "13900000007")]


def test_other_digits_share_the_rate_limit_of_the_same_number(app):
    with_demo(app)
    app.config["XPILOT"].sms_limit_per_phone = (1, 3600)
    app.config["XPILOT"].registration_code_gap = 0  # the minute between two codes to a phone is tested elsewhere
    client = app.test_client()
    assert register(client, LINGNAN, "13900000007").status_code == 200
    again = register(client, "鹏城智能制造职业技术学院", "13٩٠٠٠٠٠٠٠٧", city="440300")
    assert again.status_code == 429 and "该手机号接收短信过于频繁" in again.get_data(as_text=True)


def test_a_phone_with_a_trailing_line_break_or_foreign_letters_is_refused(app):
    with_demo(app)
    client = app.test_client()
    for phone in ("13900000007\n5", "1390000000七", "+8613900000007"):
        response = register(client, LINGNAN, phone)
        assert response.status_code == 422 and "手机号：请输入 11 位中国大陆手机号" in response.get_data(as_text=True)


# -- every route, every role, random input -------------------------------------------------------

ROLES = (None, "zjxx_weekly", "gd_reviewer", "gd_admin", "analyst", "ministry")
CONTROL = "\x00\x01\x08\x0b\x0c\x1b\x1f\x7f"
ODD_TEXT = ["", " ", "\r\n", "\t", "0", "-1", "99999999999999999999999", "1e309", "NaN", "٣", "１２", "13٩٠٠٠٠٠٠٠٧",
            "2026-13-45 25:61", "' OR 1=1 --", "<script>alert(1)</script>", "{{7*7}}", "%s%n%(x)s", "../../etc/passwd",
            "\u202e\u0645\u0631\u062d\u0628\u0627", "\ufeff", "\U0001f600" * 3, "a\u0301\u0301\u0301", "\ufffd",
            "declaration", "approve", "reject", "submit", "save", "440000", "440100", "1"]
UNICODE_RANGES = [(0x20, 0x7e), (0xa0, 0x24f), (0x370, 0x3ff), (0x600, 0x6ff), (0x4e00, 0x9fff), (0xff00, 0xffef),
                  (0x1f300, 0x1faff), (0x10000, 0x10ffff)]


def _value(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.3:
        return rng.choice(ODD_TEXT)
    if kind < 0.55:
        return "".join(chr(rng.randint(*rng.choice(UNICODE_RANGES))) for _ in range(rng.randint(1, 40)))
    if kind < 0.8:
        text = rng.choice(ODD_TEXT) or "x"
        at = rng.randint(0, len(text))
        return text[:at] + rng.choice(CONTROL) + text[at:]
    return rng.choice(["x", "师", "9", "\U0001f600"]) * rng.choice([300, 5000, 120_000])


def _params(rng: random.Random, names: list[str]) -> dict[str, str]:
    chosen = rng.sample(names, rng.randint(1, 6))
    if rng.random() < 0.1:
        chosen.append(_value(rng)[:20] or "empty")
    return {name: _value(rng) for name in chosen}


def _path(rule: Any, rng: random.Random) -> str:
    values: dict[str, Any] = {}
    for arg, converter in rule._converters.items():
        if isinstance(converter, NumberConverter):
            values[arg] = rng.choice([1, 2, 3, 1, 2, 999999, 2**31, 2**63 + 5])
        else:
            values[arg] = rng.choice(["declaration", "plan", "registration", "x" * 300, "申报", "site.css"])
    return rule.build(values, append_unknown=False)[1]


def test_random_input_to_every_route_as_every_role_never_ends_in_a_server_error(app):
    with_demo(app)
    clients = {}
    for username in ROLES:
        client = app.test_client()
        if username is not None:
            assert login(client, username).status_code == 302
            if username == "zjxx_weekly":
                complete_info(client)
        clients[username] = client
    with app.app_context():
        form_fields = {name for schema in shipped_forms(app.config["XPILOT"].bpmn_path).values()
                       for name in schema.get("properties", {})}
    names = sorted(set(FIELD_LABELS) | form_fields)
    rng = random.Random(12)
    failures = []
    sent = 0
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint in ("static", "auth.logout"):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for username, client in clients.items():
                url = _path(rule, rng)
                query = _params(rng, names)
                data = _params(rng, names) if method == "POST" else None
                response = client.open(url, method=method, query_string=query, data=data)
                sent += 1
                if response.status_code >= 500:
                    failures.append((response.status_code, method, url, username, query, data and {
                        k: v[:60] for k, v in data.items()}))
    assert sent > 300
    assert not failures, failures[:5]
