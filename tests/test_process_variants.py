"""An analyst gives one province a city-level first review: no Python change, other provinces untouched."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from app.accounts import roles
from app.accounts.models import User
from app.accounts.services import create_staff
from app.declarations.models import Declaration
from app.demo import DEMO_PASSWORD
from app.extensions import db
from app.processes import admin as process_admin
from app.processes import publish_gate, scenario_runs
from app.processes.services import shipped_forms
from tests.conftest import run_jobs
from tests.factories import complete_info, declaration_form, login, with_demo

VARIANT = Path(__file__).resolve().parents[1] / "bpmn" / "variants" / "declaration-city-review.bpmn"


def _analyst(app) -> User:
    return db.session.scalars(select(User).where(User.username == "analyst")).one()


def _declare(app, username: str, level: str, action: str = "submit") -> int:
    client = app.test_client()
    login(client, username)
    complete_info(client)
    assert client.post("/school/declarations/new",
                       data={**declaration_form(app, level=level), "action": action}).status_code == 302
    with app.app_context():
        return db.session.scalars(select(Declaration.id).order_by(Declaration.id.desc())).first()


def _status(app, decl_id: int) -> str:
    with app.app_context():
        return db.session.get(Declaration, decl_id).status


def _setup_city_review(app) -> None:
    with app.app_context():
        session = db.session()
        analyst = _analyst(app)
        roles.create_role(session, analyst, "city_reviewer", "市级初审员", "city")
        create_staff(session, role="city_reviewer", username="gz_city", password=DEMO_PASSWORD,
                     province_code="440000", city_code="440100", display_name="广州市教育局初审员")
        create_staff(session, role="city_reviewer", username="sz_city", password=DEMO_PASSWORD,
                     province_code="440000", city_code="440300", display_name="深圳市教育局初审员")
        session.commit()


def test_variant_adds_city_review_for_one_province_only(app):
    with_demo(app)
    in_flight = _declare(app, "zjxx_weekly", "初级")  # submitted before the variant: national version
    _setup_city_review(app)
    with app.app_context():
        session = db.session()
        forms = shipped_forms(app.config["XPILOT"].bpmn_path)
        version = process_admin.publish(session, _analyst(app), "declaration", VARIANT.read_text("utf-8"), forms,
                                        "440000", "广东省增加市级初审")
        session.commit()
        assert version.province_code == "440000"
    new = _declare(app, "zjxx_weekly", "中级")
    assert _status(app, new) == "市级初审中"
    assert _status(app, in_flight) == "待审核"
    # The city reviewer of the school's city sees it; another city's does not; the province queue does not yet.
    gz, sz, province = app.test_client(), app.test_client(), app.test_client()
    login(gz, "gz_city")
    login(sz, "sz_city")
    login(province, "gd_reviewer")
    inbox = gz.get("/tasks/").get_data(as_text=True)
    assert "市级初审" in inbox and "珠江信息职业学院" in inbox
    assert "珠江信息职业学院" not in sz.get("/tasks/").get_data(as_text=True)
    with app.app_context():
        from app.processes.models import HumanTask
        city_task = db.session.scalars(select(HumanTask.id).where(HumanTask.lane == "city_reviewer",
                                                                  HumanTask.completed_at.is_(None))).one()
    assert sz.post(f"/tasks/{city_task}", data={"decision": "approve"}).status_code == 404
    assert gz.post(f"/tasks/{city_task}", data={"decision": "approve"}).status_code == 302
    assert _status(app, new) == "待审核"
    # Provincial review then finishes it; the in-flight one finishes on its old version.
    assert province.post(f"/review/declarations/{new}", data={"decision": "approve"}).status_code == 302
    assert province.post(f"/review/declarations/{in_flight}", data={"decision": "approve"}).status_code == 302
    run_jobs(app)
    assert _status(app, new) == "审核通过" and _status(app, in_flight) == "审核通过"
    # Another province keeps the national process.
    with app.app_context():
        session = db.session()
        from app.accounts.registration import issue_account
        from app.masterdata.models import School
        school = session.scalars(select(School).where(School.name == "金陵工程职业技术学院")).one()
        creds = issue_account(session, school, "13900002222", origin="registered")
        user = session.get(User, creds.user_id)
        user.must_change_password = False
        user.set_password(DEMO_PASSWORD)
        session.commit()
    js_decl = _declare(app, creds.username, "初级")
    assert _status(app, js_decl) == "待审核"


def test_waiting_instances_migrate_where_safe_and_the_rest_are_refused_with_reasons(app):
    with_demo(app)
    draft = _declare(app, "zjxx_weekly", "初级", action="save")
    submitted = _declare(app, "zjxx_weekly", "中级")
    _setup_city_review(app)
    with app.app_context():
        session = db.session()
        forms = shipped_forms(app.config["XPILOT"].bpmn_path)
        version = process_admin.publish(session, _analyst(app), "declaration", VARIANT.read_text("utf-8"), forms,
                                        "440000", "广东省增加市级初审")
        session.commit()
        report = process_admin.migrate_waiting(session, _analyst(app), version.id)
        session.commit()
        by_subject = {line.subject: line for line in report}
    assert by_subject[f"declaration #{draft}"].migrated
    refused = by_subject[f"declaration #{submitted}"]
    assert not refused.migrated and any("填写并提交申报" in r for r in refused.reasons)
    # The migrated draft now goes through the city review when submitted.
    client = app.test_client()
    login(client, "zjxx_weekly")
    assert client.post(f"/school/declarations/{draft}/edit",
                       data={**declaration_form(app, level="初级"), "action": "submit"}).status_code == 302
    assert _status(app, draft) == "市级初审中"
    assert _status(app, submitted) == "待审核"


def test_province_goes_back_to_the_national_process(app):
    with_demo(app)
    _setup_city_review(app)
    with app.app_context():
        session = db.session()
        forms = shipped_forms(app.config["XPILOT"].bpmn_path)
        process_admin.publish(session, _analyst(app), "declaration", VARIANT.read_text("utf-8"), forms, "440000", "试行")
        session.commit()
        assert process_admin.revert_to_national(session, _analyst(app), "declaration", "440000") == 1
        session.commit()
    assert _status(app, _declare(app, "zjxx_weekly", "初级")) == "待审核"


def test_dry_run_shows_the_path_and_statuses_of_a_draft(app):
    with app.app_context():
        forms = shipped_forms(app.config["XPILOT"].bpmn_path)
        parsed = app.extensions["xpilot_engine"].parse(VARIANT.read_text("utf-8"), forms,
                                                        lanes=["school", "province_reviewer", "city_reviewer"])
        run = scenario_runs.run(parsed, "declaration", scenario_runs.BUILTINS["submit_reject_resubmit_approve"],
                                publish_gate.sample_data("declaration"))
    steps = run.steps
    statuses = [s.status for s in steps]
    assert statuses == ["草稿", "市级初审中", "待审核", "审核不通过", "市级初审中", "待审核", "审核通过"]
    assert "短信通知审核不通过" in steps[3].path
    # Steps are named by the task and the form's own words for the choice, never by the raw value.
    assert [s.action for s in steps[1:4]] == ["填写并提交申报", "市级初审：审核通过", "省级审核：审核不通过"]
    assert [m.template for m in steps[3].messages] == ["review_rejected"]
    assert "审核意见：请补充材料" in steps[3].messages[0].text and run.passed
