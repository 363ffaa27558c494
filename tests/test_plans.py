"""Plans: publish, edit, withdraw, extend; closing on time, results, pilot status and the public announcement."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from app import clock
from app.accounts.models import User
from app.declarations.models import Declaration
from app.extensions import db
from app.plans import closure
from app.plans.models import DeclarationPlan, PlanResult
from app.processes.jobs import sweep
from app.processes.models import ProcessInstance
from app.sms.models import SmsMessage
from tests.conftest import run_jobs
from tests.factories import certificate_id, complete_info, declaration_form, login, register, with_demo


def _plan_form(app, **overrides):
    now = clock.now()
    data = {"name": "2027年广东省1+X证书试点申报（第一批）",
            "starts_at": clock.format_local(now + timedelta(days=2)),
            "ends_at": clock.format_local(now + timedelta(days=10)),
            "review_deadline": clock.format_local(now + timedelta(days=20)),
            "announce_days": "7", "certificate_ids": [str(certificate_id(app))],
            "contact_name": "李老师", "contact_phone": "020-83000000", "notes": "请按时申报", "confirmed": "1"}
    data.update(overrides)
    return data


def _move_and_wake(app, delta):
    clock.move(delta)
    with app.app_context():
        sweep()
    run_jobs(app)


def test_publishing_a_plan_validates_in_chinese_and_keeps_input(app):
    with_demo(app)
    admin = app.test_client()
    login(admin, "gd_admin")
    bad = admin.post("/province/plans/new", data=_plan_form(app, ends_at="2020-01-01 00:00", certificate_ids=[],
                                                          contact_phone="abc"))
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert "申报截止时间：必须晚于申报开始时间" in html and "开放申报的证书：请至少选择一个证书" in html
    assert "联系电话：11 位手机号或带区号的固定电话" in html and 'value="2020-01-01T00:00"' in html  # the date-time picker's form
    good = admin.post("/province/plans/new", data=_plan_form(app))
    assert good.status_code == 302
    assert "2027年广东省1+X证书试点申报" in admin.get("/province/plans").get_data(as_text=True)
    other = app.test_client()
    login(other, "js_admin")
    with app.app_context():
        plan_id = db.session.scalars(select(DeclarationPlan.id).where(DeclarationPlan.name.like("2027%"))).one()
    assert other.get(f"/province/plans/{plan_id}").status_code == 404
    assert "2027年广东省" not in other.get("/province/plans").get_data(as_text=True)


def test_plan_can_be_edited_and_withdrawn_only_before_it_opens(app):
    with_demo(app)
    admin = app.test_client()
    login(admin, "gd_admin")
    admin.post("/province/plans/new", data=_plan_form(app))
    with app.app_context():
        plan_id = db.session.scalars(select(DeclarationPlan.id).where(DeclarationPlan.name.like("2027%"))).one()
    assert admin.post(f"/province/plans/{plan_id}/edit", data=_plan_form(app, name="2027年广东省试点申报（修订）")).status_code == 302
    clock.move(timedelta(days=3))
    assert admin.post(f"/province/plans/{plan_id}/edit", data=_plan_form(app)).status_code == 403
    assert admin.post(f"/province/plans/{plan_id}/withdraw").status_code == 403
    with app.app_context():
        assert db.session.get(DeclarationPlan, plan_id).name == "2027年广东省试点申报（修订）"


def test_deadline_extension_is_recorded_and_never_goes_into_the_past(app):
    with_demo(app)
    admin = app.test_client()
    login(admin, "gd_admin")
    with app.app_context():
        plan = db.session.scalars(select(DeclarationPlan).where(DeclarationPlan.province_code == "440000")).one()
        plan_id, old_end = plan.id, plan.ends_at
    past = admin.post(f"/province/plans/{plan_id}/extend", data={"ends_at": "2020-01-01 00:00", "reason": "系统故障"})
    assert past.status_code == 422 and "不能早于当前时间" in past.get_data(as_text=True)
    new_end = clock.format_local(old_end + timedelta(days=3))
    ok = admin.post(f"/province/plans/{plan_id}/extend", data={"ends_at": new_end, "reason": "部分学校网络故障"})
    assert ok.status_code == 302
    page = admin.get(f"/province/plans/{plan_id}").get_data(as_text=True)
    assert "部分学校网络故障" in page and "gd_admin" in page
    # The armed timer follows: at the old deadline nothing closes; at the new one it does.
    _move_and_wake(app, old_end - clock.now() + timedelta(minutes=1))
    with app.app_context():
        assert db.session.get(DeclarationPlan, plan_id).closed_at is None
    _move_and_wake(app, timedelta(days=3))
    with app.app_context():
        assert db.session.get(DeclarationPlan, plan_id).closed_at is not None


def test_the_whole_season_closes_expires_drafts_computes_pilots_and_announces(app):
    with_demo(app)
    # School A (legacy demo account) submits; school B registers and only saves a draft.
    a = app.test_client()
    login(a, "zjxx_weekly")
    complete_info(a)
    a.post("/school/declarations/new", data={**declaration_form(app), "action": "submit"})
    b = app.test_client()
    page = register(b, "岭南交通职业技术学院", "13712345678").get_data(as_text=True)
    password = page.split('id="password">')[1].split("<")[0]
    login(b, "9144010001", password)
    b.post("/password", data={"current": password, "password": "newpass2026", "confirm": "newpass2026"})
    complete_info(b)
    b.post("/school/declarations/new", data={**declaration_form(app, level="初级"), "action": "save"})
    reviewer = app.test_client()
    login(reviewer, "gd_reviewer")
    with app.app_context():
        a_decl = db.session.scalars(select(Declaration).where(Declaration.status == "待审核")).one()
        plan = db.session.get(DeclarationPlan, a_decl.plan_id)
        ends_at, review_deadline, plan_id = plan.ends_at, plan.review_deadline, plan.id
    assert reviewer.post(f"/review/declarations/{a_decl.id}", data={"decision": "approve"}).status_code == 302
    run_jobs(app)
    # The window closes at 申报截止时间.
    _move_and_wake(app, ends_at - clock.now() + timedelta(seconds=5))
    with app.app_context():
        plan = db.session.get(DeclarationPlan, plan_id)
        assert plan.status == "closed" and plan.closed_at is not None
        b_decl = db.session.scalars(select(Declaration).where(Declaration.school_id != a_decl.school_id)).one()
        assert b_decl.status == "已过期"
        assert db.session.get(ProcessInstance, b_decl.instance_id).completed
        told = db.session.scalars(select(SmsMessage).where(SmsMessage.template == "drafts_expired")).all()
        assert [m.phone for m in told] == ["13712345678"] and told[0].status == "sent"
        # Idempotent: closing again changes nothing.
        assert closure.close_plan(db.session(), plan_id)["already"] is True
        db.session.commit()
    assert "已过期" in b.get("/school/").get_data(as_text=True)
    assert b.post("/school/declarations/new", data={**declaration_form(app, level="高级"), "action": "save"}).status_code == 403
    assert b.get(f"/school/declarations/{b_decl.id}/edit").status_code == 403
    # Results at the review deadline; the announcement is public.
    assert app.test_client().get(f"/announcements/{plan_id}").status_code == 404
    _move_and_wake(app, review_deadline - clock.now() + timedelta(seconds=5))
    with app.app_context():
        results = {r.school_id: r.is_pilot for r in db.session.scalars(select(PlanResult))}
        assert results == {a_decl.school_id: True, b_decl.school_id: False}
    assert "试点院校" in a.get("/school/").get_data(as_text=True)
    assert "未成为试点院校" in b.get("/school/").get_data(as_text=True)
    public = app.test_client().get(f"/announcements/{plan_id}").get_data(as_text=True)
    assert "珠江信息职业学院" in public and "岭南交通职业技术学院" not in public and "公示期" in public
    # After the announcement period the page stays as the final record.
    _move_and_wake(app, timedelta(days=8))
    with app.app_context():
        assert db.session.get(DeclarationPlan, plan_id).status == "finished"
    final = app.test_client().get(f"/announcements/{plan_id}").get_data(as_text=True)
    assert "公示已于" in final and "珠江信息职业学院" in final


def test_publishing_asks_first_and_says_what_will_happen(app):
    with_demo(app)
    admin = app.test_client()
    login(admin, "gd_admin")
    asked = admin.post("/province/plans/new", data={**_plan_form(app), "confirmed": ""})
    html = asked.get_data(as_text=True)
    assert asked.status_code == 200 and "确认发布申报计划" in html
    assert '<strong id="confirm-province">广东省</strong>' in html and '<strong id="confirm-certificates">1</strong>' in html
    with app.app_context():
        accounts = db.session.scalar(select(func.count()).select_from(User).where(
            User.role == "school", User.province_code == "440000"))
        assert db.session.scalar(select(func.count()).select_from(DeclarationPlan).where(
            DeclarationPlan.name.like("2027%"))) == 0  # nothing saved yet
    assert f'<strong id="confirm-schools">{accounts}</strong>' in html
    assert 'name="contact_phone" value="020-83000000"' in html  # the typed values go on with the confirmation
    edit = admin.post("/province/plans/new", data={**_plan_form(app), "confirmed": "", "edit": "1"})
    assert edit.status_code == 200 and 'value="李老师"' in edit.get_data(as_text=True)
    wrong = admin.post("/province/plans/new", data={**_plan_form(app, ends_at="2020-01-01 00:00"), "confirmed": ""})
    assert wrong.status_code == 422 and "确认发布申报计划" not in wrong.get_data(as_text=True)
    assert admin.post("/province/plans/new", data=_plan_form(app)).status_code == 302
