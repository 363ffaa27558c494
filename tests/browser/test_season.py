"""A whole declaration season clicked through in headless Chromium, across two provinces.

The issue's story, step by step: plan published → school declares and submits → reviewer rejects with a
comment → school sees the comment, edits, resubmits → reviewer approves → window closes → results computed →
the school is a 试点院校 → the public announcement lists it; the other province's reviewer never sees the
first province's declarations.

四川 (510000) has no demo plan, so its admin publishes one through the 发布申报计划 form; 广东 keeps its demo
plan, in which the legacy school zjxx_weekly declares alongside. The clock is moved (the server runs in this
process, so it sees the moved clock) and the plan's timers are fired with sweep() + run_jobs, as in
tests/test_plans.py, which drives the same season through the Flask test client.
"""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from app import clock
from app.demo import DEMO_PASSWORD
from app.processes.jobs import sweep
from tests.browser.test_flows import (
    ARTIFACTS,
    CERTIFICATE,
    DETAIL_URL,
    FACILITIES,
    MAJORS,
    complete_school_info,
    field,
    fill_declaration,
    log_in,
    province_select,
    staff_logs_in,
    status_of,
    submit_for_review,
)
from tests.factories import texted_code

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.browser

PLAN = "2026年四川省1+X证书试点申报（第一批）"
SC_SCHOOL = "天府数字职业技术学院"
SC_PHONE = "13912345610"
SC_NEW_PASSWORD = "tianfu2026pw"
GD_SCHOOL = "珠江信息职业学院"  # the legacy account zjxx_weekly
OTHER_CERTIFICATE = "物流管理职业技能等级证书"
REJECTION = "师资情况过于笼统，请写明持证教师人数"
PILOT_CERTIFICATE = f"{CERTIFICATE}（中级）"
PLAN_URL = re.compile(r"/province/plans/(\d+)$")


# ---------------------------------------------------------------- helpers

def fire_timers(server: Any, until: Any) -> None:
    """Move the clock to just past `until` (aware UTC) and fire whatever fell due: sweep, then the worker."""
    clock.move(until - clock.now() + timedelta(minutes=1))
    with server.app.app_context():
        sweep()
    server.run_jobs()


def queue_row(reviewer: Any, school: str) -> Any:
    return reviewer.get_by_role("row").filter(has_text=school)


def open_queue(reviewer: Any, status: str = "待审核") -> None:
    """The navigation bar's 审核, then the queue filtered by 状态."""
    reviewer.get_by_role("navigation").get_by_role("link", name="审核", exact=True).click()
    if status != "待审核":
        field(reviewer, "状态").select_option(label=status)
        reviewer.get_by_role("button", name="查询", exact=True).click()
    expect(reviewer.get_by_role("heading", name=re.compile(r"等待省级审核的申报|本省申报"))).to_be_visible()


def decide(reviewer: Any, school: str, decision: str, comment: str = "") -> None:
    """Open the school's row of the queue and decide (审核通过 / 审核不通过) with 审核意见."""
    open_queue(reviewer)
    queue_row(reviewer, school).get_by_role("link", name="审核", exact=True).click()
    expect(reviewer.get_by_role("heading", name=f"审核：{school}")).to_be_visible()
    field(reviewer, decision).check()
    if comment:
        field(reviewer, "审核意见").fill(comment)
    reviewer.get_by_role("button", name="提交审核结论").click()
    expect(reviewer.get_by_text("审核结果已提交")).to_be_visible()


def publish_plan(admin: Any) -> tuple[int, str, str]:
    """sc_admin publishes the 四川 plan through 发布申报计划; return its id, 申报截止时间 and 审核截止时间 as typed."""
    now = clock.now()
    starts = clock.format_local(now - timedelta(minutes=1))
    ends = clock.format_local(now + timedelta(days=2))
    review_deadline = clock.format_local(now + timedelta(days=5))
    admin.get_by_role("navigation").get_by_role("link", name="申报计划", exact=True).click()
    expect(admin.get_by_role("heading", name="本省证书申报计划")).to_be_visible()
    expect(admin.get_by_text("尚未发布申报计划。")).to_be_visible()  # 四川 has no demo plan
    admin.get_by_role("link", name="发布申报计划", exact=True).click()
    expect(admin.get_by_role("heading", name="发布申报计划")).to_be_visible()
    field(admin, "计划名称").fill(PLAN)
    # date-time pickers (China time): the browser's value is 年-月-日T时:分
    field(admin, "申报开始时间").fill(starts.replace(" ", "T"))
    field(admin, "申报截止时间").fill(ends.replace(" ", "T"))
    field(admin, "审核截止时间").fill(review_deadline.replace(" ", "T"))
    field(admin, "公示天数").fill("7")
    certificates = field(admin, "开放申报的证书")
    options = certificates.locator("option")
    wanted = [options.filter(has_text=name).first.inner_text().strip() for name in (CERTIFICATE, OTHER_CERTIFICATE)]
    certificates.select_option(label=wanted)
    field(admin, "联系人").fill("张老师")
    field(admin, "联系电话").fill("028-86000000")
    field(admin, "说明").fill("请于申报截止前提交，逾期系统自动截止。")
    admin.get_by_role("button", name="发布申报计划", exact=True).click()
    # A confirmation first, saying what publishing does: the province, the window, how many certificates.
    expect(admin.get_by_role("heading", name="确认发布申报计划")).to_be_visible()
    expect(admin.locator("#confirm-province")).to_have_text("四川省")
    expect(admin.locator("#confirm-certificates")).to_have_text("2")
    admin.get_by_role("button", name="确认发布", exact=True).click()
    expect(admin.get_by_text("申报计划已发布")).to_be_visible()
    expect(admin).to_have_url(PLAN_URL)
    expect(admin.get_by_role("heading", name=PLAN)).to_be_visible()
    expect(admin.locator("#plan-status")).to_have_text("申报中")
    expect(admin.locator("#plan-ends-at")).to_have_text(ends)
    match = PLAN_URL.search(admin.url)
    assert match
    return int(match.group(1)), ends, review_deadline


def register_sichuan_school(page: Any, server: Any) -> None:
    """立即注册 → 四川省/成都市 → 天府数字职业技术学院 → 手机号 → 验证码; signed in, change the shown password."""
    page.goto("/")
    page.get_by_role("link", name="院校", exact=True).click()
    page.get_by_role("link", name="立即注册", exact=True).click()
    expect(page.get_by_role("heading", name="院校注册")).to_be_visible()
    province_select(page).select_option(label="四川省")
    field(page, "所在城市").select_option(label="成都市")
    name_input = field(page, "院校名称")
    name_input.press_sequentially("天府数字")
    offered = page.locator("#school-list option")
    expect(offered).to_have_count(1)
    expect(offered).to_have_attribute("value", SC_SCHOOL)
    name_input.fill(offered.get_attribute("value"))
    field(page, "手机号").fill(SC_PHONE)
    page.get_by_role("button", name="获取验证码", exact=True).click()
    expect(page.locator("#code-sent")).to_be_visible()
    field(page, "验证码").fill(texted_code(server.app, SC_PHONE))
    page.get_by_role("button", name="注册", exact=True).click()
    expect(page.get_by_role("heading", name="注册成功")).to_be_visible()
    account = page.locator("#account").inner_text().strip()
    password = page.locator("#password").inner_text().strip()
    assert account and password
    server.run_jobs()  # the code's delivery job

    # Signed in: 开始申报试点证书 leads into 证书试点申报; the prompt offers the password change.
    page.get_by_role("link", name="开始申报试点证书", exact=True).click()
    page.locator("#password-prompt").get_by_role("link", name="立即修改密码").click()
    field(page, "当前密码").fill(password)
    field(page, "新密码").fill(SC_NEW_PASSWORD)
    field(page, "确认新密码").fill(SC_NEW_PASSWORD)
    page.get_by_role("button", name="保存新密码").click()
    expect(page.get_by_text("密码已修改")).to_be_visible()


# ---------------------------------------------------------------- the season

def test_a_whole_season_across_two_provinces(browsing: Any) -> None:
    server = browsing.server
    try:
        _walk_the_season(browsing, server)
    finally:
        clock.reset()


def _walk_the_season(browsing: Any, server: Any) -> None:
    # 1. 四川's admin publishes the plan (start a minute ago, close in 2 days, review by 5 days, 7 days 公示).
    admin = browsing.new_page("sc_admin")
    staff_logs_in(admin, "sc_admin")
    plan_id, ends, review_deadline = publish_plan(admin)

    # 2. A 四川 school registers, completes 基础信息, declares under the new plan and submits.
    school = browsing.new_page("sc_school")
    register_sichuan_school(school, server)
    expect(school.locator("#window-message")).to_contain_text(PLAN)
    complete_school_info(school, "罗老师", "13900002222", "成都市高新区天府大道 100 号")
    new_declaration = school.get_by_role("link", name="申请新的证书试点", exact=True)
    new_declaration_url = new_declaration.get_attribute("href")
    new_declaration.click()
    expect(school.get_by_role("heading", name="申请新的证书试点")).to_be_visible()
    offered = field(school, "证书").locator("option")
    expect(offered.filter(has_text=CERTIFICATE)).to_have_count(1)
    expect(offered.filter(has_text=OTHER_CERTIFICATE)).to_have_count(1)
    expect(offered.filter(has_text="老年照护")).to_have_count(0)  # only the plan's certificates are offered
    fill_declaration(school)
    submit_for_review(school, confirm=True)
    expect(status_of(school)).to_have_text("待审核")
    sc_declaration_path = DETAIL_URL.search(school.url)
    assert sc_declaration_path
    sc_declaration_id = int(sc_declaration_path.group(0).rsplit("/", 1)[1])

    # 3. A 广东 school declares and submits in 广东's demo plan.
    gd_school = browsing.new_page("gd_school")
    gd_school.goto("/login")
    log_in(gd_school, "zjxx_weekly", DEMO_PASSWORD)
    gd_school.get_by_role("link", name="完善院校基础信息", exact=True).click()
    field(gd_school, "办学层次").select_option(label="高职专科")
    field(gd_school, "办学性质").select_option(label="公办")
    field(gd_school, "联系人").fill("陈老师")
    field(gd_school, "联系电话").fill("13900001111")
    field(gd_school, "通讯地址").fill("广州市天河区示范路 2 号")
    gd_school.get_by_role("button", name="保存院校基础信息").click()
    expect(gd_school.get_by_text("院校基础信息已保存")).to_be_visible()
    gd_school.get_by_role("link", name="申报证书试点", exact=True).click()
    fill_declaration(gd_school, trainee_count="45")
    submit_for_review(gd_school, confirm=True)
    expect(status_of(gd_school)).to_have_text("待审核")
    server.run_jobs()

    # 4. 广东's reviewer sees the 广东 declaration only; the 四川 one is not in any view and its URL is 404.
    gd_reviewer = browsing.new_page("gd_reviewer")
    staff_logs_in(gd_reviewer, "gd_reviewer")
    expect(queue_row(gd_reviewer, GD_SCHOOL)).to_have_count(1)
    expect(queue_row(gd_reviewer, SC_SCHOOL)).to_have_count(0)
    open_queue(gd_reviewer, "全部")
    expect(queue_row(gd_reviewer, GD_SCHOOL)).to_have_count(1)
    expect(queue_row(gd_reviewer, SC_SCHOOL)).to_have_count(0)
    response = gd_reviewer.goto(f"/review/declarations/{sc_declaration_id}")
    assert response is not None and response.status == 404
    expect(gd_reviewer.get_by_text(SC_SCHOOL)).to_have_count(0)

    # 5. 四川's reviewer sees only the 四川 declaration and rejects it with 审核意见.
    sc_reviewer = browsing.new_page("sc_reviewer")
    staff_logs_in(sc_reviewer, "sc_reviewer")
    expect(sc_reviewer.get_by_role("heading", name="等待省级审核的申报（共 1 条）")).to_be_visible()
    expect(queue_row(sc_reviewer, SC_SCHOOL)).to_have_count(1)
    expect(queue_row(sc_reviewer, GD_SCHOOL)).to_have_count(0)
    decide(sc_reviewer, SC_SCHOOL, "审核不通过", REJECTION)
    expect(sc_reviewer.get_by_text("没有等待省级审核的申报")).to_be_visible()
    server.run_jobs()

    # 6. The school sees 审核不通过 with the comment, edits and resubmits.
    school.get_by_role("link", name="证书试点申报", exact=True).click()
    row = school.get_by_role("row").filter(has_text=CERTIFICATE)
    expect(row.get_by_text("审核不通过", exact=True)).to_be_visible()
    row.get_by_role("link", name="查看", exact=True).click()
    expect(status_of(school)).to_have_text("审核不通过")
    expect(school.locator("#review-comment")).to_have_text(REJECTION)
    school.get_by_role("link", name="修改", exact=True).click()
    expect(school.get_by_text(f"审核意见：{REJECTION}")).to_be_visible()
    expect(field(school, "培训人数")).to_have_value("60")
    field(school, "师资情况").fill("专任教师 8 人，其中 5 人持有 Web 前端开发中级证书，2 人持高级证书。")
    field(school, "拟申请专业").select_option(label=[MAJORS[1]])
    expect(field(school, "场地情况")).to_have_value(FACILITIES)
    submit_for_review(school, confirm=True)
    expect(status_of(school)).to_have_text("待审核")
    expect(school.get_by_role("link", name="修改", exact=True)).to_have_count(0)

    # 7. 四川's reviewer approves; 广东's reviewer still sees nothing of 四川 (not even among the decided ones).
    expect(queue_row(gd_reviewer, SC_SCHOOL)).to_have_count(0)
    open_queue(sc_reviewer)
    expect(queue_row(sc_reviewer, GD_SCHOOL)).to_have_count(0)
    decide(sc_reviewer, SC_SCHOOL, "审核通过")
    server.run_jobs()
    school.reload()
    expect(status_of(school)).to_have_text("审核通过")
    expect(school.get_by_role("row").filter(has_text="提交审核")).to_have_count(2)
    open_queue(gd_reviewer, "全部")
    expect(queue_row(gd_reviewer, GD_SCHOOL)).to_have_count(1)
    expect(queue_row(gd_reviewer, SC_SCHOOL)).to_have_count(0)
    open_queue(sc_reviewer, "全部")
    expect(queue_row(sc_reviewer, SC_SCHOOL)).to_have_count(1)
    expect(queue_row(sc_reviewer, GD_SCHOOL)).to_have_count(0)

    # 8. 申报截止时间 passes: the plan shows 申报已截止 and the school can no longer declare.
    fire_timers(server, clock.parse_local(ends))
    admin.reload()
    expect(admin.locator("#plan-status")).to_have_text("申报已截止")
    expect(admin.get_by_role("heading", name="延长申报截止时间")).to_have_count(0)
    school.get_by_role("link", name="证书试点申报", exact=True).click()
    expect(school.locator("#window-message")).to_contain_text("申报已截止")
    expect(school.get_by_role("link", name="申请新的证书试点", exact=True)).to_have_count(0)
    expect(school.get_by_role("button", name="申请新的证书试点", exact=True)).to_have_count(0)
    # The declaration time has ended and a certificate is approved: a 试点院校 already, before the review deadline.
    expect(school.locator(f"#pilot-result-{plan_id}").get_by_role("heading")).to_contain_text("试点院校")
    assert new_declaration_url
    response = school.goto(new_declaration_url)
    assert response is not None and response.status == 403
    expect(school.get_by_role("heading", name="暂不能申报")).to_be_visible()
    expect(school.locator("#window-message")).to_contain_text(f"本省申报计划《{PLAN}》")
    expect(school.locator("#window-message")).to_contain_text("申报已截止，不能再申报或提交")
    # Before the review deadline nothing is public yet.
    response = school.goto(f"/announcements/{plan_id}")
    assert response is not None and response.status == 404

    # 9. 审核截止时间 passes: results are computed; the school is a 试点院校 with its certificate.
    fire_timers(server, clock.parse_local(review_deadline))
    admin.reload()
    expect(admin.locator("#plan-status")).to_have_text("结果公示中")
    expect(admin.get_by_role("main").get_by_role("link", name="审核结果公示", exact=True)).to_have_attribute(
        "href", f"/announcements/{plan_id}")
    school.goto("/school/")
    result = school.locator(f"#pilot-result-{plan_id}")
    expect(result.get_by_role("heading")).to_contain_text("试点院校")
    expect(result.get_by_role("heading")).to_contain_text(PLAN)
    expect(result).to_contain_text(f"试点证书：{PILOT_CERTIFICATE}")
    expect(school.locator("#window-message")).to_contain_text("审核结果公示中")
    expect(school.locator("#window-message")).not_to_contain_text("尚未发布")
    ARTIFACTS.mkdir(exist_ok=True)
    school.screenshot(path=str(ARTIFACTS / "season-school-pilot.png"), full_page=True)

    # 10. The public announcement (no login, a fresh browser context) lists the plan, the school and certificate.
    public = browsing.new_page("public")
    public.goto("/")
    public.get_by_role("banner").get_by_role("link", name="审核结果公示", exact=True).click()
    expect(public).to_have_url(re.compile(r"/announcements$"))
    expect(public.get_by_role("heading", name="审核结果公示")).to_be_visible()
    public.get_by_role("link", name=f"四川省 · {PLAN}", exact=True).click()
    expect(public).to_have_url(re.compile(rf"/announcements/{plan_id}$"))
    expect(public.get_by_role("heading", name=f"四川省 · {PLAN}")).to_be_visible()
    expect(public.get_by_text(re.compile(r"^公示期："))).to_contain_text("张老师（028-86000000）")
    expect(public.get_by_text("共 1 所院校成为本批次试点院校。")).to_be_visible()
    pilot = public.get_by_role("row").filter(has_text=SC_SCHOOL)
    expect(pilot).to_have_count(1)
    expect(pilot.get_by_role("cell")).to_have_text(["1", SC_SCHOOL, "成都市", PILOT_CERTIFICATE])
    expect(public.get_by_text(GD_SCHOOL)).to_have_count(0)
    public.screenshot(path=str(ARTIFACTS / "season-announcement.png"), full_page=True)
