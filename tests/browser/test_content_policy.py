"""Every main page works under the Content-Security-Policy (no inline script): each role's pages visited in
Chromium, their scripts exercised (registration lookups, confirmations, select-all, charts, the BPMN editor),
and any violation the browser reports fails the test (see the `browsing` fixture)."""
from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from app.accounts.models import User
from app.extensions import db
from app.masterdata.models import School
from app.plans.models import DeclarationPlan
from tests.browser.test_analyst import declare, diagram_ready, log_in

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.browser


def visit(page: Any, path: str) -> None:
    """Open a page and wait until its scripts have run."""
    response = page.goto(path)
    assert response is not None and response.ok, f"{path}: {response.status if response else 'no answer'}"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_load_state("load")


def charts_drawn(page: Any, *chart_ids: str) -> None:
    for chart_id in chart_ids:
        expect(page.locator(f"#{chart_id} canvas").first).to_be_visible()


def first_id(server: Any, model: Any, *where: Any) -> int:
    with server.app.app_context():
        return int(db.session.scalars(select(model.id).where(*where).order_by(model.id)).first())


def session_token(server: Any, username: str) -> int:
    with server.app.app_context():
        return int(db.session.scalars(select(User.session_token).where(User.username == username)).one())


def test_public_pages_and_registration_lookups_run_under_the_policy(browsing: Any) -> None:
    page = browsing.new_page("visitor")
    for path in ("/", "/login", "/announcements"):
        visit(page, path)
    visit(page, "/register")
    page.locator("select#province").select_option(label="广东省")
    expect(page.locator("select#city option", has_text="广州市")).to_have_count(1)  # fetched by register.js
    page.locator("#school").fill("职业")
    expect(page.locator("#school-list option").first).to_be_attached()
    missing = page.goto("/no-such-page")
    assert missing is not None and missing.status == 404
    page.get_by_role("link", name="返回上一页").click()
    expect(page).to_have_url(re.compile(r"/register$"))


def test_school_and_reviewer_pages_run_under_the_policy(browsing: Any) -> None:
    server = browsing.server
    declaration_id = declare(server, "zjxx_weekly", "初级")
    school = browsing.new_page("school")
    log_in(school, "zjxx_weekly")
    for path in ("/school/", "/school/info", f"/school/declarations/{declaration_id}", "/school/declarations/new"):
        visit(school, path)
    reviewer = browsing.new_page("reviewer")
    log_in(reviewer, "gd_reviewer")
    visit(reviewer, "/review/")
    boxes = reviewer.locator("#bulk-form input[name=ids]")
    expect(boxes).to_have_count(1)
    reviewer.get_by_label("全选本页").check()  # site.js ticks every box of the page
    expect(boxes.first).to_be_checked()
    visit(reviewer, f"/review/declarations/{declaration_id}")


def test_province_and_ministry_pages_and_their_charts_run_under_the_policy(browsing: Any) -> None:
    server = browsing.server
    declare(server, "zjxx_weekly", "初级")
    plan_id = first_id(server, DeclarationPlan, DeclarationPlan.province_code == "440000")
    school_id = first_id(server, School, School.name == "珠江信息职业学院")  # has an account (zjxx_weekly)
    admin = browsing.new_page("province admin")
    log_in(admin, "gd_admin")
    for path in ("/province/plans", "/province/plans/new", f"/province/schools/{school_id}", "/province/schools",
                 "/admin/outbox", "/review/"):
        visit(admin, path)
    visit(admin, "/province/dashboard")
    charts_drawn(admin, "chart-status", "chart-certificates", "chart-groups")
    visit(admin, f"/province/plans/{plan_id}")
    visit(admin, f"/province/schools/{school_id}")
    token = session_token(server, "zjxx_weekly")
    asked: list[str] = []
    admin.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    admin.locator("form[action$='/reset'] button").click()  # the confirmation comes from data-confirm
    assert asked and "重置" in asked[0]
    assert session_token(server, "zjxx_weekly") == token  # dismissed: nothing was sent

    ministry = browsing.new_page("ministry")
    log_in(ministry, "ministry")
    visit(ministry, "/ministry/dashboard")
    charts_drawn(ministry, "chart-status", "chart-certificates", "chart-groups")
    for path in ("/admin/outbox", "/admin/roles", "/ministry/staff"):
        visit(ministry, path)
    asked.clear()
    ministry.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    ministry.get_by_role("button", name="停用").first.click()
    assert asked and "停用" in asked[0]
    with server.app.app_context():  # dismissed: nothing was sent
        assert db.session.scalars(select(User).where(User.is_active_account.is_(False))).all() == []


def test_analyst_pages_and_the_bpmn_editor_run_under_the_policy(browsing: Any) -> None:
    analyst = browsing.new_page("analyst")
    log_in(analyst, "analyst")
    for path in ("/processes", "/processes/declaration", "/processes/incidents", "/admin/outbox"):
        visit(analyst, path)
    visit(analyst, "/processes/declaration/edit")
    diagram_ready(analyst)
    analyst.locator("#xp-canvas .djs-element").first.wait_for()
    version = analyst.goto("/processes/declaration")
    assert version is not None and version.ok
    analyst.locator("a[href*='/processes/versions/']").first.click()
    diagram_ready(analyst)
