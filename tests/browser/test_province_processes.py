"""Three province changes made by an analyst in the browser, with no Python change, then run by schools and reviewers.

1. 广东 renames 审核通过 to 省级审核通过 in the editor's 流程状态 panel and in the approval step's 状态表达式;
   the school sees the new word, the season ends with the school announced as a 试点院校.
2. 广东 adds a 专家评审 step with its own status 专家评审中, worked by a new role made on the 角色 page; the
   diagram is uploaded into the editor (tests/test_process_statuses.py builds it), checked and published. The
   reviewer's queue filters by the new status, the province dashboard counts it, the expert works it.
3. 广东 marks an open draft 即将截止 two days before 申报截止时间; the province admin extends the deadline on the
   plan page, and the reminder follows the new deadline (seen on a phone-size screen too).

tests/test_process_statuses.py drives the same diagrams through the services; here every step is a page.
"""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app import clock
from app.demo import PLANS
from app.extensions import db
from app.plans.models import DeclarationPlan
from tests.browser.test_analyst import (
    add_role_with_user,
    diagram_ready,
    first_log_in,
    log_in,
    nav,
    panel_field,
    saved_xml,
)
from tests.browser.test_flows import (
    ARTIFACTS,
    DETAIL_URL,
    complete_school_info,
    field,
    fill_declaration,
    status_of,
    submit_for_review,
)
from tests.browser.test_season import decide, fire_timers, open_queue, queue_row
from tests.test_process_statuses import due_soon_variant, expert_variant

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.browser

GD_CODE = "440000"
GD_PLAN = PLANS[GD_CODE]
GD_SCHOOL = "珠江信息职业学院"  # the legacy account zjxx_weekly
PUBLISHED = re.compile(r"已发布证书试点申报流程版本 #\d+（广东省）")


# ---------------------------------------------------------------- helpers

def open_national_draft(analyst: Any) -> None:
    """流程管理 → 编辑全国版本: the editor on the national declaration process."""
    log_in(analyst, "analyst")
    nav(analyst, "流程管理")
    analyst.locator("#process-declaration").get_by_role("link", name="编辑全国版本").click()
    expect(analyst.get_by_role("heading", name="编辑证书试点申报流程")).to_be_visible()
    diagram_ready(analyst)


def check_for_guangdong(analyst: Any, upload: str | None = None) -> None:
    """校验 for 广东省: the editor's diagram, or an uploaded .bpmn file."""
    field(analyst, "适用范围").select_option(label="广东省")
    if upload is not None:
        field(analyst, "上传 .bpmn 文件").set_input_files(
            {"name": "declaration-guangdong.bpmn", "mimeType": "application/xml", "buffer": upload.encode("utf-8")})
    with analyst.expect_navigation():
        analyst.get_by_role("button", name="校验", exact=True).click()
    diagram_ready(analyst)


def publish_for_guangdong(analyst: Any, note: str) -> None:
    """发布 the checked diagram to 广东省 with a note."""
    expect(analyst.get_by_role("heading", name="校验通过")).to_be_visible()
    expect(analyst.locator("#publish-scope")).to_have_text("广东省")
    field(analyst, "发布说明").fill(note)
    analyst.get_by_role("button", name="发布到广东省").click()
    expect(analyst.get_by_text(PUBLISHED)).to_be_visible()
    expect(analyst.locator("#version-scope")).to_have_text("广东省")
    expect(analyst.get_by_text(note)).to_be_visible()


def dry_run_statuses(analyst: Any) -> list[str]:
    return [s.strip() for s in analyst.locator("#dry-run tbody tr .status").all_inner_texts()]


def school_declares(school: Any, *, submit: bool) -> None:
    """zjxx_weekly completes 基础信息 and declares in 广东's plan: 提交审核, or 保存，暂不提交审核."""
    log_in(school, "zjxx_weekly")
    complete_school_info(school)
    school.get_by_role("link", name="申报证书试点", exact=True).click()
    expect(school.get_by_role("heading", name="申请新的证书试点")).to_be_visible()
    fill_declaration(school)
    if submit:
        submit_for_review(school, confirm=True)
    else:
        school.get_by_role("button", name="保存，暂不提交审核", exact=True).click()
        expect(school).to_have_url(DETAIL_URL)


def school_submits_and_province_approves(browsing: Any, submitted: str, approved: str) -> tuple[Any, Any, str]:
    """zjxx_weekly submits (seeing `submitted`); gd_reviewer approves on the review page; the school sees `approved`.

    Return the school's page, the reviewer's page and the declaration's URL.
    """
    school = browsing.new_page("school")
    school_declares(school, submit=True)
    expect(status_of(school)).to_have_text(submitted)
    declaration_url = school.url
    reviewer = browsing.new_page("reviewer")
    staff_log_in(reviewer, "gd_reviewer")
    decide(reviewer, GD_SCHOOL, "审核通过")
    browsing.server.run_jobs()
    school.goto(declaration_url)
    expect(status_of(school)).to_have_text(approved)
    return school, reviewer, declaration_url


def staff_log_in(page: Any, username: str) -> None:
    log_in(page, username)
    expect(page.get_by_role("heading", name=re.compile("等待省级审核的申报"))).to_be_visible()


def guangdong_plan(server: Any) -> DeclarationPlan:
    with server.app.app_context():
        plan = db.session.scalars(select(DeclarationPlan).where(DeclarationPlan.province_code == GD_CODE)).one()
        db.session.expunge(plan)
        return plan


def declared_status(school: Any) -> Any:
    """The status cell of the (only) declaration on the school's dashboard."""
    school.goto("/school/")
    return school.get_by_role("row").filter(has_text=GD_PLAN).locator(".status")


# ---------------------------------------------------------------- 1. a renamed status

def test_guangdong_renames_approved_in_the_editor_and_schools_see_its_word_to_the_announcement(browsing: Any) -> None:
    server = browsing.server
    analyst = browsing.new_page("analyst")
    open_national_draft(analyst)

    # 流程状态 (nothing selected): rename 审核通过; 校验 now refuses the approval step's old word.
    expect(analyst.locator("#xp-panel legend")).to_have_text("流程状态")
    approved = analyst.get_by_label("第 3 个状态的名称")
    expect(approved).to_have_value("审核通过")
    approved.fill("省级审核通过")
    approved.press("Enter")
    expect(analyst.get_by_label("“省级审核通过”的含义")).to_have_value("approved")
    expect(analyst.locator("#xp-dirty")).to_have_text("有尚未校验的修改")
    check_for_guangdong(analyst)
    expect(analyst.get_by_role("heading", name="校验未通过：1 个问题")).to_be_visible()
    problem = analyst.locator(".xp-problems li")
    expect(problem).to_contain_text("状态“审核通过”没有在流程的状态声明中")
    expect(analyst.get_by_role("button", name="发布到广东省")).to_have_count(0)

    # The problem selects the step; its 状态表达式 takes the new word; 校验 passes and the dry run shows it.
    problem.get_by_role("button", name=re.compile("notify_approved")).click()
    expect(analyst.locator("#xp-panel .xp-element-id code")).to_have_text("notify_approved")
    expect(panel_field(analyst, "状态表达式")).to_have_value("'审核通过'")
    panel_field(analyst, "状态表达式").fill("'省级审核通过'")
    panel_field(analyst, "状态表达式").press("Enter")
    xml = saved_xml(analyst)
    assert '<spiffworkflow:property name="status:省级审核通过" value="approved" />' in xml
    assert 'value="&#39;省级审核通过&#39;"' in xml and "status:审核通过" not in xml
    field(analyst, "试运行场景").select_option(label="提交 → 通过")
    check_for_guangdong(analyst)
    expect(analyst.get_by_role("heading", name="校验通过")).to_be_visible()
    expect(analyst.locator("#diff-changed")).to_contain_text("notify_approved")
    assert dry_run_statuses(analyst) == ["草稿", "待审核", "省级审核通过"]
    publish_for_guangdong(analyst, "广东省：审核通过改称省级审核通过")

    # A 广东 school submits; the province reviewer approves on the review page; the school sees 省级审核通过.
    school, reviewer, _ = school_submits_and_province_approves(browsing, "待审核", "省级审核通过")
    expect(declared_status(school)).to_have_text("省级审核通过")
    open_queue(reviewer, "全部")
    expect(queue_row(reviewer, GD_SCHOOL).locator(".status")).to_have_text("省级审核通过")

    # The window closes, then the review deadline passes: the school is announced and is a 试点院校.
    plan = guangdong_plan(server)
    fire_timers(server, plan.ends_at)
    fire_timers(server, plan.review_deadline)
    public = browsing.new_page("public")
    public.goto("/")
    public.get_by_role("banner").get_by_role("link", name="审核结果公示", exact=True).click()
    public.get_by_role("link", name=f"广东省 · {GD_PLAN}", exact=True).click()
    expect(public.get_by_text("共 1 所院校成为本批次试点院校。")).to_be_visible()
    expect(public.get_by_role("row").filter(has_text=GD_SCHOOL)).to_have_count(1)
    school.goto("/school/")
    expect(school.locator(f"#pilot-result-{plan.id}").get_by_role("heading")).to_contain_text("试点院校")
    expect(declared_status(school)).to_have_text("省级审核通过")


# ---------------------------------------------------------------- 2. a new step, status and role

def test_guangdong_adds_an_expert_review_with_its_own_status_and_role(browsing: Any) -> None:
    server = browsing.server
    analyst = browsing.new_page("analyst")
    log_in(analyst, "analyst")

    # 角色: the expert role and a 广东 expert account.
    expert_password = add_role_with_user(analyst, "expert_reviewer", "省级评审专家", "province", "gd_expert",
                                         "广东省评审专家", province="广东省")

    # The diagram with the expert step is uploaded into the editor, checked and published for 广东.
    open_national_draft(analyst)
    field(analyst, "试运行场景").select_option(label="提交 → 通过")
    check_for_guangdong(analyst, upload=expert_variant())
    expect(analyst.get_by_role("heading", name="校验通过")).to_be_visible()
    expect(analyst.locator("#diff-added")).to_contain_text("专家评审")
    assert dry_run_statuses(analyst) == ["填报中", "省级审核中", "专家评审中", "省级审核通过"]
    expect(analyst.get_by_label("“专家评审中”的含义")).to_have_value("waiting")
    publish_for_guangdong(analyst, "广东省增加专家评审")

    # A school submits; the province reviewer approves; the declaration waits for the expert.
    school, reviewer, declaration_url = school_submits_and_province_approves(browsing, "省级审核中", "专家评审中")

    # The queue's 状态 filter offers the province's statuses, the new one too, and lists what waits for the expert.
    reviewer.get_by_role("navigation").get_by_role("link", name="审核", exact=True).click()
    offered = field(reviewer, "状态").locator("option")
    expect(offered).to_have_text(["等待省级审核", "省级审核中", "专家评审中", "省级审核通过", "退回修改", "未通过",
                                  "逾期未交", "全部"])
    open_queue(reviewer, "专家评审中")
    expect(reviewer.get_by_role("heading", name="本省申报（专家评审中）（共 1 条）")).to_be_visible()
    expect(queue_row(reviewer, GD_SCHOOL).locator(".status")).to_have_text("专家评审中")

    # The province dashboard's status table counts it.
    admin = browsing.new_page("admin")
    staff_log_in(admin, "gd_admin")
    nav(admin, "统计")
    expect(admin.locator("#by-status tr").filter(has_text="专家评审中").get_by_role("cell")).to_have_text(
        ["专家评审中", "1"])

    # The expert (first login: a new password) works it in 我的待办; the school sees the province's approval.
    expert = browsing.new_page("expert")
    first_log_in(expert, "gd_expert", expert_password, "gdexpert2026pw")
    nav(expert, "我的待办")
    row = expert.get_by_role("row").filter(has_text=GD_SCHOOL)
    expect(row.locator(".status")).to_have_text("专家评审中")
    row.get_by_role("link", name="办理").click()
    field(expert, "审核通过").check()
    expert.get_by_role("button", name="提交", exact=True).click()
    expect(expert.get_by_text("“专家评审”已办理")).to_be_visible()
    server.run_jobs()
    school.goto(declaration_url)
    expect(status_of(school)).to_have_text("省级审核通过")


# ---------------------------------------------------------------- 3. a reminder that follows the deadline

def test_an_open_draft_is_marked_due_soon_two_days_before_the_extended_deadline(browsing: Any) -> None:
    server = browsing.server
    analyst = browsing.new_page("analyst")
    open_national_draft(analyst)
    check_for_guangdong(analyst, upload=due_soon_variant())
    publish_for_guangdong(analyst, "广东省：截止前两天提醒未提交的草稿")

    school = browsing.new_page("school")
    school_declares(school, submit=False)
    expect(status_of(school)).to_have_text("草稿")

    # The province admin extends 申报截止时间 by five days on the plan page.
    admin = browsing.new_page("admin")
    staff_log_in(admin, "gd_admin")
    admin.get_by_role("navigation").get_by_role("link", name="申报计划", exact=True).click()
    admin.get_by_role("link", name=GD_PLAN, exact=True).click()
    old_end = clock.parse_local(admin.locator("#plan-ends-at").inner_text())
    new_end_text = clock.format_local(old_end + timedelta(days=5))
    expect(admin.get_by_role("heading", name="延长申报截止时间")).to_be_visible()
    field(admin, "新的申报截止时间").fill(new_end_text)
    field(admin, "延期原因").fill("部分学校网络故障")
    admin.get_by_role("button", name="延长申报截止时间").click()
    expect(admin.get_by_text("申报截止时间已延长，已记录操作人和原因")).to_be_visible()
    expect(admin.locator("#plan-ends-at")).to_have_text(new_end_text)
    new_end = clock.parse_local(new_end_text)

    # At the old reminder time the draft stays 草稿; at the new one it is 即将截止.
    fire_timers(server, old_end - timedelta(days=2))
    expect(declared_status(school)).to_have_text("草稿")
    fire_timers(server, new_end - timedelta(days=2))
    expect(declared_status(school)).to_have_text("即将截止")
    school.get_by_role("row").filter(has_text=GD_PLAN).get_by_role("link", name="查看", exact=True).click()
    expect(status_of(school)).to_have_text("即将截止")
    expect(school.get_by_role("link", name="修改", exact=True)).to_be_visible()  # still the school's draft

    # On a phone the school's page shows the status and its actions without scrolling sideways.
    school.set_viewport_size({"width": 390, "height": 844})
    school.goto("/school/")
    row = school.get_by_role("row").filter(has_text=GD_PLAN)
    expect(row.locator(".status")).to_have_text("即将截止")
    for shown in (row.locator(".status"), row.get_by_role("link", name="修改", exact=True)):
        shown.scroll_into_view_if_needed()
        expect(shown).to_be_in_viewport(ratio=0.95)  # a table may scroll inside its card, by a pixel or two
    assert school.evaluate("() => document.documentElement.scrollWidth") <= 390
    ARTIFACTS.mkdir(exist_ok=True)
    school.screenshot(path=str(ARTIFACTS / "province-due-soon-phone.png"), full_page=True)
