"""Command line, legacy accounts, login limits, CSRF, scope and escaping."""
from __future__ import annotations

from sqlalchemy import func, select

from app.accounts.models import User
from app.declarations.models import Declaration
from app.extensions import db
from app.sms.models import SmsMessage
from tests.conftest import password_in, run_jobs
from tests.factories import complete_info, declaration_form, login, register, with_demo


def test_demo_load_is_idempotent_and_prints_accounts(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "load"])
    assert first.exit_code == 0 and "gd_reviewer" in first.output and "zjxx_weekly" in first.output
    with app.app_context():
        users = db.session.scalar(select(func.count()).select_from(User))
    second = runner.invoke(args=["demo", "load"])
    assert second.exit_code == 0
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == users


def test_users_create_refuses_province_role_without_province(app):
    with_demo(app)
    runner = app.test_cli_runner()
    bad = runner.invoke(args=["users", "create", "--role", "province_reviewer", "--username", "r1",
                              "--password", "longpassword1"])
    assert bad.exit_code == 1 and "省级角色必须指定" in bad.output
    ok = runner.invoke(args=["users", "create", "--role", "province_reviewer", "--username", "r1",
                             "--password", "longpassword1", "--province", "440000"])
    assert ok.exit_code == 0
    client = app.test_client()
    assert login(client, "r1", "longpassword1").status_code == 302


def test_legacy_accounts_are_upgraded_once_and_passwords_sent_by_sms(app, tmp_path, texts_received):
    with_demo(app)
    csv_file = tmp_path / "legacy.csv"
    csv_file.write_text("学校标识码,账号,手机号\n9144010001,lingnan_weekly,13811112222\n"
                        "0000000000,nobody,13811113333\n9132010006,jinling,123\n", encoding="utf-8")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["accounts", "import-legacy", str(csv_file)])
    assert result.exit_code == 0, result.output
    assert "新增 1" in result.output and "拒绝 2" in result.output
    assert "第 3 行" in result.output and "第 4 行" in result.output
    again = runner.invoke(args=["accounts", "import-legacy", str(csv_file)])
    assert "新增 0" in again.output and "未变 1" in again.output
    run_jobs(app)
    with app.app_context():
        messages = db.session.scalars(select(SmsMessage).where(SmsMessage.phone == "13811112222")).all()
        assert len(messages) == 1 and messages[0].status == "sent" and "lingnan_weekly" in messages[0].body
    # The upgraded school logs in and finds 证书管理 → 证书试点申报 after setting a new password.
    [text] = texts_received["13811112222"]
    assert "lingnan_weekly" in text
    password = password_in(text)
    client = app.test_client()
    assert login(client, "lingnan_weekly", password).status_code == 302
    client.post("/password", data={"current": password, "password": "newpass2026", "confirm": "newpass2026"})
    page = client.get("/school/").get_data(as_text=True)
    assert "证书管理" in page and "证书试点申报" in page


def test_sms_outbox_command_prints_messages(app):
    with_demo(app)
    client = app.test_client()
    assert register(client, "岭南交通职业技术学院", "13712345678").status_code == 200
    run_jobs(app)
    result = app.test_cli_runner().invoke(args=["sms", "outbox", "--phone", "13712345678"])
    assert result.exit_code == 0 and "13712345678" in result.output and "[sent]" in result.output


def test_process_deploy_refuses_an_invalid_diagram_and_publishes_a_valid_one(app, tmp_path):
    with_demo(app)
    bad = tmp_path / "bad.bpmn"
    bad.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', encoding="utf-8")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["process", "deploy", str(bad)])
    assert result.exit_code == 1 and "DTD" in result.output
    good = app.config["XPILOT"].bpmn_path / "declaration.bpmn"
    variant = tmp_path / "declaration.bpmn"
    variant.write_text(good.read_text("utf-8").replace("省级审核", "省级审核（广东）"), encoding="utf-8")
    published = runner.invoke(args=["process", "deploy", str(variant), "--province", "440000"])
    assert published.exit_code == 0 and "440000" in published.output


def test_login_is_rate_limited(app):
    with_demo(app)
    app.config["XPILOT"].login_limit = (3, 300)
    client = app.test_client()
    for _ in range(3):
        assert login(client, "gd_reviewer", "wrong-password").status_code == 422
    blocked = login(client, "gd_reviewer")
    assert blocked.status_code == 429 and "登录失败次数过多" in blocked.get_data(as_text=True)


def test_forms_without_csrf_token_are_refused_in_chinese(app):
    with_demo(app)
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    response = client.post("/login", data={"username": "gd_reviewer", "password": "x"})
    assert response.status_code == 400 and "页面已过期" in response.get_data(as_text=True)


def test_a_school_cannot_see_another_schools_declaration_and_input_is_escaped(app):
    with_demo(app)
    owner = app.test_client()
    login(owner, "zjxx_weekly")
    complete_info(owner)
    owner.post("/school/declarations/new", data={
        **declaration_form(app, teachers="<script>alert('x')</script> 专任教师八人，经验丰富"), "action": "save"})
    with app.app_context():
        decl_id = db.session.scalars(select(Declaration.id)).one()
    page = owner.get(f"/school/declarations/{decl_id}").get_data(as_text=True)
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    from app.accounts.registration import issue_account
    with app.app_context():
        from app.masterdata.models import School
        other_school = db.session.scalars(select(School).where(School.name == "岭南交通职业技术学院")).one()
        creds = issue_account(db.session(), other_school, "13700000001", origin="registered")
        db.session.get(User, creds.user_id).must_change_password = False
        db.session.commit()
    intruder = app.test_client()
    login(intruder, creds.username, creds.password)
    assert intruder.get(f"/school/declarations/{decl_id}").status_code == 404
    assert intruder.post(f"/school/declarations/{decl_id}/delete").status_code == 404
    reviewer = app.test_client()
    login(reviewer, "gd_reviewer")
    assert reviewer.get("/school/").status_code == 403
