"""Generated passwords reach the phone but stay in no stored message once delivered, and no page shows one;
短信记录 is scoped to the province, and the analyst sees when and how messages went, not what they said."""
from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from app.sms.models import SmsMessage
from tests.conftest import password_in, run_jobs
from tests.factories import login, register, school, with_demo

LINGNAN = "岭南交通职业技术学院"
JINLING = "金陵工程职业技术学院"


def stored(app: Flask, phone: str) -> SmsMessage:
    with app.app_context():
        message = db.session.scalars(select(SmsMessage).where(
            SmsMessage.phone == phone, SmsMessage.template != "registration_code")).one()
        db.session.expunge(message)
        return message


def assert_no_password_stored(message: SmsMessage, password: str) -> None:
    assert password not in message.body and password not in repr(message.params)
    assert "******" in message.body


def test_an_issued_password_reaches_the_phone_and_leaves_no_copy_once_delivered(app, texts_received):
    with_demo(app)
    admin = app.test_client()
    login(admin, "gd_admin")
    lingnan = school(app, LINGNAN)
    assert admin.post(f"/province/schools/{lingnan.id}/issue", data={"phone": "13711112222"}).status_code == 302
    queued = stored(app, "13711112222")
    assert queued.status == "queued" and "初始密码：******" in queued.body  # the body never held it
    run_jobs(app)
    [text] = texts_received["13711112222"]
    password = password_in(text)
    delivered = stored(app, "13711112222")
    assert delivered.status == "sent"
    assert_no_password_stored(delivered, password)
    assert login(app.test_client(), lingnan.code, password).status_code == 302
    for page in ("/admin/outbox", f"/province/schools/{lingnan.id}"):
        assert password not in admin.get(page).get_data(as_text=True)


def test_reset_registration_and_legacy_passwords_leave_no_copy_once_delivered(app, texts_received, tmp_path):
    with_demo(app)
    admin = app.test_client()
    login(admin, "gd_admin")
    admin.post(f"/province/schools/{school(app, '珠江信息职业学院').id}/reset")
    assert register(app.test_client(), JINLING, "13712340000", city="320100", province="320000").status_code == 200
    legacy = tmp_path / "legacy.csv"
    legacy.write_text("学校标识码,账号,手机号\n9144010001,lingnan_weekly,13811112222\n", encoding="utf-8")
    assert app.test_cli_runner().invoke(args=["accounts", "import-legacy", str(legacy)]).exit_code == 0
    run_jobs(app)
    for phone in ("13800138002", "13712340000", "13811112222"):
        [text] = [t for t in texts_received[phone] if "密码" in t]
        message = stored(app, phone)
        assert message.status == "sent"
        assert_no_password_stored(message, password_in(text))


def test_outbox_page_is_scoped_to_the_province_and_shows_the_analyst_no_content(app, texts_received):
    with_demo(app)
    guangdong, jiangsu = app.test_client(), app.test_client()
    login(guangdong, "gd_admin")
    login(jiangsu, "js_admin")
    guangdong.post(f"/province/schools/{school(app, LINGNAN).id}/issue", data={"phone": "13711112222"})
    jiangsu.post(f"/province/schools/{school(app, JINLING).id}/issue", data={"phone": "13722223333"})
    queued = guangdong.get("/admin/outbox").get_data(as_text=True)  # not yet delivered: still masked on screen
    assert "初始密码：******" in queued and LINGNAN in queued and JINLING not in queued
    run_jobs(app)
    passwords = [password_in(texts[0]) for texts in texts_received.values()]
    assert len(passwords) == 2
    own = guangdong.get("/admin/outbox").get_data(as_text=True)
    assert "13711112222" in own and "13722223333" not in own
    analyst = app.test_client()
    login(analyst, "analyst")
    page = analyst.get("/admin/outbox").get_data(as_text=True)
    assert "账号开通" in page and "已发送" in page  # what kind of message, and how it went
    for content in (LINGNAN, JINLING, "初始密码", "13711112222", *passwords):
        assert content not in page
    assert "137****2222" in page


def test_the_outbox_command_prints_no_password(app: Flask, client: FlaskClient, texts_received) -> None:
    with_demo(app)
    assert register(client, LINGNAN, "13712345678").status_code == 200
    run_jobs(app)
    [password] = [password_in(t) for t in texts_received["13712345678"] if "密码" in t]
    result = app.test_cli_runner().invoke(args=["sms", "outbox", "--phone", "13712345678"])
    assert result.exit_code == 0 and "初始密码：******" in result.output and password not in result.output


def test_the_migration_masks_the_passwords_of_messages_stored_before_it(tmp_path):
    from datetime import datetime

    import sqlalchemy as sa

    from app.migrate import upgrade
    from tests.conftest import _new_database

    url, drop = _new_database(tmp_path)
    message = sa.table("sms_message", *(sa.column(name) for name in (
        "id", "idempotency_key", "phone", "template", "body", "backend", "status", "attempts", "created_at")),
        sa.column("params", sa.JSON))
    body = "【1+X证书试点】{school}已注册试点院校申报系统，账号：9144010001，初始密码：{password}。首次登录请修改密码，请勿泄露。"
    try:
        upgrade(url, "0007")
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            for number, (status, password) in enumerate((("sent", "Sent2026pw"), ("failed", "Kept2026pw")), 1):
                params = {"school": LINGNAN, "username": "9144010001", "password": password}
                conn.execute(message.insert().values(
                    id=number, idempotency_key=f"account:{number}", phone="13711112222", template="account_issued",
                    params=params, body=body.format(**params), backend="outbox", status=status, attempts=1,
                    created_at=datetime(2026, 11, 1)))
        upgrade(url)
        with engine.connect() as conn:
            rows = {row.status: row for row in conn.execute(sa.select(message.c.status, message.c.params,
                                                                      message.c.body))}
        engine.dispose()
    finally:
        drop()
    assert "初始密码：******。" in rows["sent"].body and rows["sent"].params["password"] == "******"
    assert "初始密码：******。" in rows["failed"].body
    assert rows["failed"].params["password"] == "Kept2026pw"  # not delivered: a resend can still deliver it
