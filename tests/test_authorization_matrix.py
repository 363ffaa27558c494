"""Authorization matrix: every route of the app's URL map × every role × its own and another scope is allowed or
forbidden as listed here. A new route without an entry fails the test, so whoever adds one decides who may use it.

Allowed means the request passed the checks (any answer but 403, 404 or, anonymously, the way to the login page);
forbidden means 403 or 404 (a record out of scope is not found) or the login page. Nothing may answer 5xx.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask import Flask, url_for
from sqlalchemy import select

from app.accounts import organisations, roles
from app.accounts.models import User
from app.accounts.services import create_staff
from app.demo import DEMO_PASSWORD
from app.extensions import db
from app.masterdata.models import School
from app.plans.models import PLAN_ANNOUNCING, PLAN_PUBLISHED, DeclarationPlan
from app.processes import admin as process_admin
from app.processes.models import (
    HumanTask,
    ProcessIncident,
    ProcessInstance,
    ProcessScenario,
    ProcessVersion,
    ServiceCall,
)
from app.processes.services import shipped_forms
from app.sms.models import SmsMessage, SmsTemplate
from tests.conftest import run_jobs
from tests.factories import certificate_id, login, school_account, with_demo
from tests.test_role_scopes import BIM, LOGISTICS, VARIANT, WEB, declare, expert_review_xml, school_client

# The actors: one of each built-in role, and users of the roles analysts add (a city role, a role of two
# certificates nationally, and a member of an organisation holding one of them).
ANON, SCHOOL, REVIEWER, PADMIN, ANALYST, MINISTRY = "anonymous", "school", "reviewer", "padmin", "analyst", "ministry"
CITY, CERT, ORG = "city", "cert_expert", "org_expert"
USERNAMES = {SCHOOL: "zjxx_weekly", REVIEWER: "gd_reviewer", PADMIN: "gd_admin", ANALYST: "analyst",
             MINISTRY: "ministry", CITY: "gz_city", CERT: "expert_two", ORG: "expert_org"}
ACTORS = (ANON, *USERNAMES)
EVERYONE = frozenset(ACTORS)
SIGNED_IN = EVERYONE - {ANON}
STAFF = SIGNED_IN - {SCHOOL}
PROVINCIAL = frozenset({REVIEWER, PADMIN})
ANALYSTS = frozenset({ANALYST, MINISTRY})
NATIONAL = frozenset({ANALYST, MINISTRY, CERT, ORG})  # no other province; CERT and ORG have other certificates


@dataclass(frozen=True)
class Entry:
    """Who may use a route (for its records in their own scope), and whether a record of another scope is refused."""

    allowed: frozenset[str]
    scoped: bool = False
    # a record of the state this route acts on (or one made afresh for each request), by the name in World.named
    own: dict[str, str] = field(default_factory=dict)
    # query arguments filled with the record ids of the scope (an export of a plan, say)
    query: dict[str, str] = field(default_factory=dict)


MATRIX: dict[str, Entry] = {
    # public
    "public.home": Entry(EVERYONE),
    "public.announcements": Entry(EVERYONE),
    "public.announcement": Entry(EVERYONE, own={"plan_id": "announced_plan"}),
    "public.healthz": Entry(EVERYONE),
    "static": Entry(EVERYONE),
    "auth.login": Entry(EVERYONE),
    "auth.logout": Entry(EVERYONE),
    "auth.register": Entry(EVERYONE),
    "auth.register_cities": Entry(EVERYONE),
    "auth.register_schools": Entry(EVERYONE),
    "auth.after_login": Entry(SIGNED_IN),
    "auth.change_password": Entry(SIGNED_IN),
    # schools
    "school.dashboard": Entry(frozenset({SCHOOL})),
    "school.info": Entry(frozenset({SCHOOL})),
    "school.new_declaration": Entry(frozenset({SCHOOL})),
    "school.declaration": Entry(frozenset({SCHOOL}), scoped=True),
    "school.edit_declaration": Entry(frozenset({SCHOOL}), scoped=True),
    "school.delete_declaration": Entry(frozenset({SCHOOL}), scoped=True, own={"declaration_id": "school_spare_draft"}),
    # provincial review and the one staff inbox
    "review.queue": Entry(PROVINCIAL),
    "review.bulk_approve": Entry(PROVINCIAL),
    "review.review": Entry(PROVINCIAL, scoped=True),
    "review.claim": Entry(PROVINCIAL, scoped=True),
    "review.release": Entry(PROVINCIAL, scoped=True),
    "tasks.inbox": Entry(STAFF),
    "tasks.task": Entry(PROVINCIAL | {CITY, CERT, ORG}, scoped=True),
    # the province admin
    "province.plans": Entry(frozenset({PADMIN})),
    "province.new_plan": Entry(frozenset({PADMIN})),
    "province.plan": Entry(frozenset({PADMIN}), scoped=True),
    "province.edit_plan": Entry(frozenset({PADMIN}), scoped=True, own={"plan_id": "future_plan"}),
    "province.extend_plan": Entry(frozenset({PADMIN}), scoped=True),
    "province.withdraw_plan": Entry(frozenset({PADMIN}), scoped=True, own={"plan_id": "future_plan"}),
    "schools_admin.schools": Entry(frozenset({PADMIN})),
    "schools_admin.school": Entry(frozenset({PADMIN}), scoped=True),
    "schools_admin.issue": Entry(frozenset({PADMIN}), scoped=True),
    "schools_admin.phone": Entry(frozenset({PADMIN}), scoped=True, own={"school_id": "school_with_account"}),
    "schools_admin.release": Entry(frozenset({PADMIN}), scoped=True, own={"school_id": "school_with_account"}),
    "schools_admin.reset": Entry(frozenset({PADMIN}), scoped=True, own={"school_id": "school_with_account"}),
    "dashboard.province": Entry(frozenset({PADMIN})),
    "dashboard.export": Entry(frozenset({PADMIN}), scoped=True, query={"plan_id": "plan_id"}),
    "admin.outbox": Entry(frozenset({PADMIN, ANALYST, MINISTRY})),
    "admin.resend": Entry(frozenset({PADMIN, MINISTRY}), scoped=True),
    # the ministry
    "dashboard.ministry": Entry(frozenset({MINISTRY})),
    "staff_admin.staff": Entry(frozenset({MINISTRY})),
    "staff_admin.create": Entry(frozenset({MINISTRY})),
    "staff_admin.deactivate": Entry(frozenset({MINISTRY})),
    "staff_admin.reactivate": Entry(frozenset({MINISTRY})),
    "staff_admin.reset": Entry(frozenset({MINISTRY})),
    # analysts (national)
    "roles_admin.roles": Entry(ANALYSTS),
    "roles_admin.create_role": Entry(ANALYSTS),
    "roles_admin.add_member": Entry(ANALYSTS),
    "roles_admin.create_organisation": Entry(ANALYSTS),
    "processes.index": Entry(ANALYSTS),
    "processes.process": Entry(ANALYSTS),
    "processes.edit": Entry(ANALYSTS),
    "processes.check": Entry(ANALYSTS),
    "processes.publish": Entry(ANALYSTS),
    "processes.revert": Entry(ANALYSTS),
    "processes.version": Entry(ANALYSTS),
    "processes.download": Entry(ANALYSTS),
    "processes.migrate": Entry(ANALYSTS),
    "processes.instance": Entry(ANALYSTS),
    "processes.incidents": Entry(ANALYSTS),
    "processes.retry": Entry(ANALYSTS, own={"call_id": "fresh_failed_call"}),
    "processes.resolve": Entry(ANALYSTS, own={"incident_id": "fresh_incident"}),
    "processes.form_preview": Entry(ANALYSTS),
    "manual.show": Entry(ANALYSTS),
    "scenarios.outline": Entry(ANALYSTS),
    "scenarios.run": Entry(ANALYSTS),
    "scenarios.save": Entry(ANALYSTS),
    "scenarios.delete": Entry(ANALYSTS, own={"scenario_id": "fresh_scenario"}),
    "sms_templates.index": Entry(ANALYSTS),
    "sms_templates.new": Entry(ANALYSTS),
    "sms_templates.edit": Entry(ANALYSTS),
    "sms_templates.save": Entry(ANALYSTS),
}
# Routes that change what the others read run last, in this order (a logout ends the actor's sessions).
LAST = ("processes.migrate", "processes.revert", "province.withdraw_plan", "schools_admin.release",
        "school.delete_declaration", "auth.logout")


@dataclass
class World:
    """The records each actor's requests name: its own (by actor) and another scope's."""

    own: dict[str, dict[str, Any]]
    other: dict[str, Any]
    named: dict[str, Any]


def _one(model: Any, *where: Any) -> Any:
    return db.session.scalars(select(model).where(*where)).first()


def _task_of(decl_id: int, lane: str) -> int:
    return db.session.scalars(select(HumanTask.id).where(
        HumanTask.subject_type == "declaration", HumanTask.subject_id == decl_id, HumanTask.lane == lane,
        HumanTask.completed_at.is_(None))).one()


def build_world(app: Flask) -> World:
    """Declarations, tasks, plans, messages and accounts of 广东 (own) and 江苏 / 深圳 / other certificates."""
    with_demo(app)
    gd, js_user = school_client(app, "zjxx_weekly"), school_account(app, "金陵工程职业技术学院")
    school_account(app, "佛山工贸职业技术学院", "13900004444")  # an account without declarations
    js, sz = school_client(app, js_user), school_client(app, school_account(app, "鹏城智能制造职业技术学院", "13900003333"))
    gd_web, gd_bim, js_review = declare(app, gd, WEB), declare(app, gd, BIM), declare(app, js, LOGISTICS)
    draft = gd.post("/school/declarations/new", data={**_form(app, WEB, "初级"), "action": "save"})
    spare = gd.post("/school/declarations/new", data={**_form(app, WEB, "高级"), "action": "save"})
    js_draft = js.post("/school/declarations/new", data={**_form(app, WEB, "初级"), "action": "save"})
    assert {draft.status_code, spare.status_code, js_draft.status_code} == {302}
    web, bim = certificate_id(app, WEB), certificate_id(app, BIM)
    with app.app_context():
        session = db.session()
        analyst = session.scalars(select(User).where(User.username == "analyst")).one()
        roles.create_role(session, analyst, "city_reviewer", "市级初审员", "city")
        roles.create_role(session, analyst, "cert_expert", "证书专家", "certificates",
                          certificate_ids=[str(web), str(bim)])
        org = organisations.create_organisation(session, analyst, "某培训评价组织", [str(bim)])
        create_staff(session, role="city_reviewer", username="gz_city", password=DEMO_PASSWORD,
                     province_code="440000", city_code="440100")
        create_staff(session, role="cert_expert", username="expert_two", password=DEMO_PASSWORD)
        create_staff(session, role="cert_expert", username="expert_org", password=DEMO_PASSWORD).organisation_id = org.id
        create_staff(session, role="province_reviewer", username="gd_spare", password=DEMO_PASSWORD,
                     province_code="440000")
        forms = shipped_forms(app.config["XPILOT"].bpmn_path)
        process_admin.publish(session, analyst, "declaration", VARIANT.read_text("utf-8"), forms, "440000", "市级初审")
        process_admin.publish(session, analyst, "declaration", expert_review_xml(), forms, "320000", "专家评审")
        session.commit()
    gz_city, sz_city = declare(app, gd, LOGISTICS), declare(app, sz, WEB)
    js_web, js_bim, js_logistics = declare(app, js, WEB), declare(app, js, BIM), declare(app, js, LOGISTICS, "初级")
    run_jobs(app)
    with app.app_context():
        session = db.session()
        from app.declarations.models import Declaration
        drafts = list(session.scalars(select(Declaration.id).where(Declaration.status == "草稿")
                                      .order_by(Declaration.id)))
        gd_plan = _one(DeclarationPlan, DeclarationPlan.province_code == "440000")
        # Made after the declarations: a school declares in the newest plan of its province.
        later = timedelta(days=60)
        session.add(DeclarationPlan(province_code="440000", name="广东省第二批计划", starts_at=gd_plan.starts_at + later,
                                    ends_at=gd_plan.ends_at + later, review_deadline=gd_plan.review_deadline + later,
                                    contact_name="李老师", contact_phone="020-83000000", status=PLAN_PUBLISHED))
        session.add(DeclarationPlan(province_code="510000", name="四川省已公示计划", starts_at=gd_plan.starts_at,
                                    ends_at=gd_plan.ends_at, review_deadline=gd_plan.review_deadline,
                                    contact_name="张老师", contact_phone="028-86000000", status=PLAN_ANNOUNCING))
        instance = _one(ProcessInstance)
        session.add(ProcessIncident(instance_id=instance.id, version_id=instance.version_id,
                                    process_key=instance.process_key, province_code=instance.province_code,
                                    element_id="x", error="测试"))
        session.add(ServiceCall(instance_id=instance.id, task_id=uuid.uuid4().hex, task_name="测试",
                                operation="sms_send", status="done"))
        session.commit()
        gd_message = _one(SmsMessage, SmsMessage.province_code == "440000")
        js_message = _one(SmsMessage, SmsMessage.province_code == "320000")
        review_other = _task_of(js_review, "province_reviewer")
        common = {"plan_id": _one(DeclarationPlan, DeclarationPlan.name.like("2026年广东%")).id,
                  "school_id": _one(School, School.name == "岭南交通职业技术学院").id,
                  "staff_id": _one(User, User.username == "gd_spare").id, "message_id": gd_message.id,
                  "key": "declaration", "version_id": _one(ProcessVersion).id, "instance_id": instance.id,
                  "call_id": _one(ServiceCall).id, "incident_id": _one(ProcessIncident).id, "filename": "site.css",
                  "declaration_id": gd_web, "template_id": _one(SmsTemplate, SmsTemplate.name == "review_rejected").id}
        own = {actor: dict(common) for actor in ACTORS}
        own[SCHOOL]["declaration_id"] = drafts[0]
        own[PADMIN]["declaration_id"] = gd_bim
        tasks = {REVIEWER: _task_of(gd_web, "province_reviewer"), PADMIN: _task_of(gd_bim, "province_reviewer"),
                 CITY: _task_of(gz_city, "city_reviewer"), CERT: _task_of(js_web, "cert_expert"),
                 ORG: _task_of(js_bim, "cert_expert")}
        for actor in ACTORS:
            own[actor]["task_id"] = tasks.get(actor, tasks[REVIEWER])
        other = {**common, "declaration_id": js_review, "plan_id": _one(
                     DeclarationPlan, DeclarationPlan.province_code == "320000").id,
                 "school_id": _one(School, School.name == "钟山医药职业学院").id,
                 "staff_id": _one(User, User.username == "js_reviewer").id, "message_id": js_message.id}
        other_tasks = {REVIEWER: review_other, PADMIN: review_other, CITY: _task_of(sz_city, "city_reviewer"),
                       CERT: _task_of(js_logistics, "cert_expert"), ORG: _task_of(js_web, "cert_expert")}
        named = {"school_spare_draft": drafts[1], "other_tasks": other_tasks,
                 "future_plan": _one(DeclarationPlan, DeclarationPlan.name == "广东省第二批计划").id,
                 "announced_plan": _one(DeclarationPlan, DeclarationPlan.name == "四川省已公示计划").id,
                 "school_with_account": _one(School, School.name == "佛山工贸职业技术学院").id,
                 "fresh_incident": lambda: _fresh(app, ProcessIncident, instance_id=instance.id,
                                                  version_id=instance.version_id, process_key=instance.process_key,
                                                  element_id="x", error="测试"),
                 "fresh_scenario": lambda: _fresh(app, ProcessScenario, process_key="declaration", name="测试场景"),
                 "fresh_failed_call": lambda: _fresh(app, ServiceCall, instance_id=instance.id,
                                                     task_id=uuid.uuid4().hex, task_name="测试", operation="sms_send",
                                                     status="failed")}
        return World(own, other, named)


def _fresh(app: Flask, model: Any, **values: Any) -> int:
    """Store a new record and return its id (for a route that can act on a record once only)."""
    with app.app_context():
        record = model(**values)
        db.session.add(record)
        db.session.commit()
        return int(record.id)


def _form(app: Flask, certificate: str, level: str) -> dict[str, Any]:
    from tests.factories import declaration_form
    return declaration_form(app, certificate_id=str(certificate_id(app, certificate)), level=level)


def _cases(app: Flask) -> list[tuple[str, str, str]]:
    """Every (endpoint, method, rule) of the URL map; the routes in LAST at the end."""
    cases = [(rule.endpoint, method, rule.rule) for rule in app.url_map.iter_rules()
             for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})]
    return sorted(cases, key=lambda c: (c[0] in LAST and LAST.index(c[0]) + 1, c[1] != "GET", c[0]))


def _url(app: Flask, endpoint: str, values: dict[str, Any], query: dict[str, str]) -> str:
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    with app.test_request_context():
        return url_for(endpoint, **{k: values[k] for k in rule.arguments}, **{k: values[v] for k, v in query.items()})


def _forbidden(response: Any) -> bool:
    return response.status_code in (403, 404) or (
        response.status_code == 302 and "/login" in response.headers.get("Location", ""))


def test_every_route_has_an_entry_in_the_matrix(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert sorted(endpoints - set(MATRIX)) == [], "routes without an authorization entry: add them to MATRIX"
    assert sorted(set(MATRIX) - endpoints) == [], "entries of routes that no longer exist"


def test_every_route_allows_or_forbids_every_role_in_its_own_and_another_scope(app):
    world = build_world(app)
    clients: dict[str, Any] = {}

    def client(actor: str) -> Any:
        if actor not in clients:
            clients[actor] = app.test_client()
            if actor != ANON:
                assert login(clients[actor], USERNAMES[actor]).status_code == 302
        return clients[actor]

    wrong: list[str] = []
    for endpoint, method, rule in _cases(app):
        entry = MATRIX[endpoint]
        has_records = "<" in rule or bool(entry.query)
        for actor in ACTORS:
            for scope in ("own", "other") if has_records else ("own",):
                values = dict(world.own[actor])
                if scope == "other":
                    values.update(world.other)
                    values["task_id"] = world.named["other_tasks"].get(actor, world.own[actor]["task_id"])
                if scope == "own" or not entry.scoped:
                    values.update({k: world.named[v] for k, v in entry.own.items()})
                values = {k: v() if callable(v) else v for k, v in values.items()}
                expected = actor in entry.allowed and (
                    scope == "own" or not entry.scoped or (actor in NATIONAL and endpoint != "tasks.task"))
                url = _url(app, endpoint, values, entry.query)
                response = client(actor).open(url, method=method, data={})
                if response.status_code >= 500:
                    wrong.append(f"{method} {url} as {actor} ({scope}): {response.status_code}")
                elif _forbidden(response) == expected:
                    wrong.append(f"{method} {url} as {actor} ({scope}): {response.status_code}, expected "
                                 f"{'allowed' if expected else 'forbidden'}")
                if endpoint == "auth.logout":
                    clients.pop(actor, None)  # its sessions ended
    assert wrong == [], "\n".join(wrong)
