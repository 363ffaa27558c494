"""The school clerk on a phone (390×844) and at a desk (1366×768): a collapsing menu, tables that scroll inside
their card, required markers, drafts as the guide says, nothing lost with a lost session, one next step, pilot
status and error pages that say what to do. Each test runs at both sizes and leaves screenshots of the pages."""
from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app import clock
from app.declarations.models import Declaration
from app.demo import DEMO_PASSWORD
from app.extensions import db
from app.plans import closure
from app.plans.models import DeclarationPlan
from tests.browser.test_flows import CERTIFICATE, DETAIL_URL, FACILITIES, TEACHERS, field, fill_declaration, log_in

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.browser

PROJECT = Path(__file__).resolve().parents[2]
# CI collects test-artifacts/ci (.ci/run); locally the shots go next to the other browser artifacts (git-ignored).
SHOTS = PROJECT / "test-artifacts" / ("ci/screenshots" if os.environ.get("CI") == "true" else "screenshots")
SIZES = {"phone": (390, 844), "desktop": (1366, 768)}


@pytest.fixture(params=list(SIZES))
def size(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def open_page(browsing: Any, who: str, size: str) -> Any:
    page = browsing.new_page(who)
    width, height = SIZES[size]
    page.set_viewport_size({"width": width, "height": height})
    return page


def shot(page: Any, name: str, size: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"school-{name}-{size}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5000


def no_horizontal_overflow(page: Any) -> None:
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px at {page.viewport_size}"


def header_is_one_line(page: Any) -> None:
    """Every visible item of the header sits on the title's row, and the header is one line high."""
    box = page.locator("header.top").bounding_box()
    assert box["height"] <= 62, f"header is {box['height']}px high"
    title = page.locator("header.top .title").bounding_box()
    tops = page.evaluate("""() => [...document.querySelectorAll(
        'header.top .title, header.top .menu-toggle, header.top nav > *, header.top .account > *')]
        .filter(e => e.offsetParent !== null)
        .map(e => { const r = e.getBoundingClientRect(); return [e.textContent.trim(), r.top, r.height]; })""")
    for text, top, height in tops:
        assert abs((top + height / 2) - (title["y"] + title["height"] / 2)) < 12, f"“{text}” is not on the header's line"


def school_logs_in(page: Any) -> None:
    page.goto("/login")
    log_in(page, "zjxx_weekly", DEMO_PASSWORD)
    expect(page.get_by_role("heading", name="证书管理 · 证书试点申报")).to_be_visible()


def menu_link(page: Any, name: str, size: str) -> Any:
    """A link of the header menu, opening the menu first on a phone."""
    if size == "phone" and page.locator("header.top.open").count() == 0:
        page.get_by_role("button", name="菜单").click()
    return page.locator("header.top").get_by_role("link", name=name, exact=True)


# ---------------------------------------------------------------- layout, next step, drafts

def test_school_pages_fit_the_screen_with_one_next_step_and_drafts_as_the_guide_says(browsing: Any, size: str) -> None:
    school = open_page(browsing, "legacy", size)
    school_logs_in(school)
    no_horizontal_overflow(school)
    header_is_one_line(school)
    toggle = school.get_by_role("button", name="菜单")
    nav_link = school.locator("header.top").get_by_role("link", name="证书试点申报", exact=True)
    if size == "phone":
        # The menu collapses behind 菜单 and opens and closes with it.
        expect(toggle).to_be_visible()
        expect(toggle).to_have_attribute("aria-expanded", "false")
        expect(nav_link).to_be_hidden()
        toggle.click()
        expect(nav_link).to_be_visible()
        expect(school.get_by_role("button", name="收起菜单")).to_have_attribute("aria-expanded", "true")
        shot(school, "menu-open", size)
        school.get_by_role("button", name="收起菜单").click()
        expect(nav_link).to_be_hidden()
    else:
        expect(toggle).to_be_hidden()
        expect(nav_link).to_be_visible()

    # Flow 二: one next step, the guide's 【申报证书试点】, styled as the main button; nothing greyed beside it.
    next_step = school.locator("#next-step")
    expect(next_step.get_by_role("link", name="申报证书试点", exact=True)).to_have_class("btn")
    expect(school.get_by_role("link", name="申报证书试点", exact=True)).to_have_count(1)
    expect(school.get_by_role("button", name="申请新的证书试点")).to_have_count(0)
    expect(school.locator("button:disabled, .btn:disabled")).to_have_count(0)
    shot(school, "home", size)

    # Straight to the form: what the Ministry list and the weekly-report account do not say is asked inline.
    next_step.get_by_role("link", name="申报证书试点", exact=True).click()
    expect(school.get_by_role("heading", name="申请新的证书试点")).to_be_visible()
    inline = school.locator("#school-info-missing")
    expect(inline).to_contain_text("只需补充以下 3 项")
    expect(inline.get_by_label(re.compile("^联系人"))).to_be_visible()
    expect(school.get_by_label(re.compile("^联系电话"))).to_have_count(0)
    # Required markers on every required field (and none on the optional 学校简介 etc.).
    for label in ("证书", "证书等级", "拟申请专业", "培训人数", "师资情况", "场地情况", "办学性质", "联系人", "通讯地址"):
        expect(school.locator("label", has_text=re.compile(rf"^{label}")).first.locator(".req")).to_have_text("*")
    no_horizontal_overflow(school)
    shot(school, "declaration-form", size)

    # 保存，暂不提交审核 with only 证书 and 证书等级: stored as a draft.
    field(school, "证书").select_option(label=CERTIFICATE)
    field(school, "证书等级").select_option(label="中级")
    school.get_by_role("button", name="保存，暂不提交审核", exact=True).click()
    expect(school).to_have_url(DETAIL_URL)
    expect(school.get_by_text("已保存草稿")).to_be_visible()
    expect(school.locator("#declaration-status")).to_have_text("草稿")
    expect(school.locator("dd").filter(has_text="未填写")).to_have_count(4)
    no_horizontal_overflow(school)
    shot(school, "draft", size)

    # 提交审核 checks everything and names each field; the inline information is asked too.
    school.get_by_role("link", name="修改", exact=True).click()
    school.once("dialog", lambda d: d.accept())
    school.get_by_role("button", name="提交审核", exact=True).click()
    expect(school.get_by_text(re.compile(r"提交的信息有 \d+ 处需要修改"))).to_be_visible()
    for message in ("培训人数：必填", "师资情况：必填", "联系人：必填", "通讯地址：必填"):
        expect(school.get_by_role("alert").filter(has_text=message)).to_be_visible()
    shot(school, "submit-refused", size)
    field(school, "办学性质").select_option(label="公办")
    field(school, "联系人").fill("陈老师")
    field(school, "通讯地址").fill("广州市天河区示范路 1 号")
    fill_declaration(school)
    school.once("dialog", lambda d: d.accept())
    school.get_by_role("button", name="提交审核", exact=True).click()
    expect(school.locator("#declaration-status")).to_have_text("待审核")
    expect(school.locator("#locked-reason")).to_contain_text("已提交审核，不能修改")

    # The list: the table scrolls inside its card; the certificate name is not squeezed.
    menu_link(school, "证书试点申报", size).click()
    wrap = school.locator(".table-wrap").filter(has_text=CERTIFICATE)
    name_cell = wrap.get_by_role("cell").filter(has_text=CERTIFICATE)
    assert name_cell.bounding_box()["width"] >= 170
    if size == "phone":
        assert wrap.evaluate("e => e.scrollWidth > e.clientWidth"), "the table should scroll inside its card"
    no_horizontal_overflow(school)
    shot(school, "list", size)

    # Error pages say why, what to do and whom to contact (the province's officer).
    school.goto("/school/declarations/999999")
    expect(school.get_by_role("heading", name="未找到")).to_be_visible()
    expect(school.locator("#error-why")).to_contain_text("申报不存在")
    expect(school.locator("#error-steps")).to_contain_text("从页面顶部的菜单重新进入")
    expect(school.locator("#error-contact")).to_contain_text("广东省教育行政部门 1+X 证书试点负责人")
    no_horizontal_overflow(school)
    shot(school, "not-found", size)
    school.goto("/review/")
    expect(school.get_by_role("heading", name="不能执行该操作")).to_be_visible()
    expect(school.locator("#error-contact")).to_contain_text("广东省")
    shot(school, "forbidden", size)

    # A format error says the expected format.
    menu_link(school, "院校基础信息", size).click()
    field(school, "联系电话").fill("12345")
    school.get_by_role("button", name="保存院校基础信息").click()
    expect(school.get_by_text("联系电话：格式不正确，应为11 位手机号或带区号的固定电话")).to_be_visible()
    no_horizontal_overflow(school)
    shot(school, "info", size)


def test_staff_menu_stays_on_one_line_at_1024_and_collapses_on_a_phone(browsing: Any, size: str) -> None:
    admin = open_page(browsing, "admin", size)
    admin.goto("/login?kind=staff")
    log_in(admin, "gd_admin", DEMO_PASSWORD)
    if size == "desktop":
        for width in (1024, 1366):
            admin.set_viewport_size({"width": width, "height": 768})
            header_is_one_line(admin)
            no_horizontal_overflow(admin)
            expect(admin.locator("header.top").get_by_role("link", name="审核", exact=True)).to_be_visible()
    else:
        header_is_one_line(admin)
        expect(admin.locator("header.top").get_by_role("link", name="审核", exact=True)).to_be_hidden()
        admin.get_by_role("button", name="菜单").click()
        expect(admin.locator("header.top").get_by_role("link", name="审核", exact=True)).to_be_visible()
    shot(admin, "staff-menu", size)


# ---------------------------------------------------------------- a lost session loses nothing

def test_what_the_clerk_typed_survives_a_reload_a_lost_login_and_a_stale_form(browsing: Any, size: str) -> None:
    school = open_page(browsing, "legacy", size)
    school_logs_in(school)
    school.goto("/school/declarations/new")
    fill_declaration(school, trainee_count="66")
    field(school, "联系人").fill("陈老师")

    # A reload puts everything back and says so.
    school.reload()
    expect(school.locator("#form-restored")).to_be_visible()
    expect(field(school, "培训人数")).to_have_value("66")
    expect(field(school, "联系人")).to_have_value("陈老师")
    expect(field(school, "拟申请专业")).to_have_values(["510201", "510203"])
    expect(field(school, "证书等级")).to_have_value("中级")

    # The login is lost (the session cookie is gone): the save goes to the login page, which says nothing was lost.
    school.context.clear_cookies()
    school.get_by_role("button", name="保存，暂不提交审核", exact=True).click()
    expect(school.get_by_text(re.compile("登录已过期.*您刚才填写的内容没有丢失"))).to_be_visible()
    shot(school, "session-lost", size)
    log_in(school, "zjxx_weekly", DEMO_PASSWORD)
    kept = school.locator("#form-kept")
    expect(kept).to_contain_text("尚未保存")
    kept.get_by_role("link", name="继续填写").click()
    expect(school.locator("#form-restored")).to_be_visible()
    expect(field(school, "师资情况")).to_have_value(TEACHERS)
    expect(field(school, "场地情况")).to_have_value(FACILITIES)
    expect(field(school, "培训人数")).to_have_value("66")
    shot(school, "form-restored", size)

    # The form's token goes stale while signed in: the page says so and leads back to the restored form.
    school.evaluate("() => { document.querySelector('#declaration-form input[name=csrf_token]').value = 'stale'; }")
    field(school, "培训人数").fill("67")
    school.get_by_role("button", name="保存，暂不提交审核", exact=True).click()
    expect(school.get_by_role("heading", name="页面已过期")).to_be_visible()
    school.get_by_role("link", name="回到表单").click()
    expect(field(school, "培训人数")).to_have_value("67")

    # Saved: the browser forgets its copy.
    school.get_by_role("button", name="保存，暂不提交审核", exact=True).click()
    expect(school.locator("#declaration-status")).to_have_text("草稿")
    assert school.evaluate("() => Object.keys(sessionStorage).filter(k => k.startsWith('xpilot-form:'))") == []
    school.goto("/school/")
    expect(school.locator("#form-kept")).to_have_count(0)
    school.goto("/school/declarations/new")
    expect(school.locator("#form-restored")).to_have_count(0)
    expect(field(school, "培训人数")).to_have_value("")


# ---------------------------------------------------------------- 待办, expired drafts, 试点院校

def test_todo_expired_draft_and_pilot_status_are_worded_by_status(browsing: Any, size: str) -> None:
    server = browsing.server
    school = open_page(browsing, "legacy", size)
    school_logs_in(school)
    school.goto("/school/info")
    field(school, "办学性质").select_option(label="公办")
    field(school, "联系人").fill("陈老师")
    field(school, "通讯地址").fill("广州市天河区示范路 1 号")
    school.get_by_role("button", name="保存院校基础信息").click()
    # A submitted 中级 and a 高级 draft.
    school.goto("/school/declarations/new")
    fill_declaration(school)
    school.once("dialog", lambda d: d.accept())
    school.get_by_role("button", name="提交审核", exact=True).click()
    expect(school.locator("#declaration-status")).to_have_text("待审核")
    school.goto("/school/declarations/new")
    field(school, "证书").select_option(label=CERTIFICATE)
    field(school, "证书等级").select_option(label="高级")
    school.get_by_role("button", name="保存，暂不提交审核", exact=True).click()
    school.goto("/school/")
    expect(school.locator("#todo")).to_contain_text(f"{CERTIFICATE}（高级）")
    shot(school, "todo", size)

    with server.app.app_context():
        submitted = db.session.scalars(select(Declaration).where(Declaration.level == "中级")).one()
        draft_id = db.session.scalars(select(Declaration.id).where(Declaration.level == "高级")).one()
        plan = db.session.get(DeclarationPlan, submitted.plan_id)
        submitted_id, plan_id, ends_at = submitted.id, plan.id, plan.ends_at
    reviewer = open_page(browsing, "reviewer", "desktop")
    reviewer.goto("/login?kind=staff")
    log_in(reviewer, "gd_reviewer", DEMO_PASSWORD)
    reviewer.goto(f"/review/declarations/{submitted_id}")
    field(reviewer, "审核通过").check()
    reviewer.get_by_role("button", name="提交审核结论").click()
    expect(reviewer.get_by_text("审核结果已提交")).to_be_visible()
    server.run_jobs()

    # The declaration time ends: the draft expires; the school is a 试点院校 at once, before the review deadline.
    clock.move(ends_at - clock.now() + timedelta(seconds=5))
    with server.app.app_context():
        closure.close_plan(db.session(), plan_id)
        db.session.commit()
    school.goto("/school/")
    result = school.locator(f"#pilot-result-{plan_id}")
    expect(result.locator(".status.m-pilot")).to_have_text("试点院校")
    expect(result).to_contain_text(f"{CERTIFICATE}（中级）")
    no_horizontal_overflow(school)
    shot(school, "pilot", size)
    school.goto(f"/school/declarations/{draft_id}")
    expect(school.locator("#declaration-status")).to_have_text("已过期")
    expect(school.locator("#locked-reason")).to_have_text("申报截止时仍未提交审核，已过期，不能再修改或提交。")
    expect(school.get_by_text("已提交审核")).to_have_count(0)
    shot(school, "expired", size)
