"""The user guide's flows 一 and 二 clicked through in headless Chromium, against the app served for real.

Every locator uses the words of INTERFACES.md (link and button texts, field labels, status words), so a
renamed label fails here. These mirror tests/test_school_flows.py, which drives the same flows through
the Flask test client.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.demo import DEMO_PASSWORD
from app.extensions import db
from app.sms.models import SmsMessage
from tests.factories import texted_code

PROJECT = Path(__file__).resolve().parents[2]
ARTIFACTS = PROJECT / "test-artifacts"  # git-ignored

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.browser

SCHOOL = "岭南交通职业技术学院"
PHONE = "13712345678"
NEW_PASSWORD = "newpass2026"
CERTIFICATE = "Web前端开发职业技能等级证书"
MAJORS = ["510201 计算机应用技术", "510203 软件技术"]
TEACHERS = "专任教师 8 人，其中 3 人持有 Web 前端开发中级证书，具备企业项目经验。"
FACILITIES = "计算机实训室 3 间，每间 50 个工位，具备考核所需网络与软件环境。"
REJECTION = "师资证书情况不详，请补充"
DETAIL_URL = re.compile(r"/school/declarations/\d+$")


# ---------------------------------------------------------------- helpers

def field(page: Any, label: str) -> Any:
    """The input tied to the visible <label> with exactly this text (a required-field marker "*" may follow)."""
    return page.get_by_label(re.compile(rf"^\s*{re.escape(label)}(\s*\*)?\s*$"))


def province_select(page: Any) -> Any:
    """The 所在省市 province select, found through its visible <label for=...>."""
    label = page.locator("label").filter(has_text=re.compile(r"^所在省市$"))
    expect(label).to_have_count(1)
    return page.locator(f"select#{label.get_attribute('for')}")


def log_in(page: Any, username: str, password: str) -> None:
    """Fill 账号 and 密码 on the login page and log in."""
    field(page, "账号").fill(username)
    field(page, "密码").fill(password)
    page.get_by_role("button", name="登录", exact=True).click()


def staff_logs_in(page: Any, username: str) -> None:
    page.goto("/")
    page.get_by_role("link", name="管理部门", exact=True).click()
    log_in(page, username, DEMO_PASSWORD)
    expect(page.get_by_role("heading", name=re.compile("等待省级审核的申报"))).to_be_visible()


def complete_school_info(page: Any, contact: str = "陈老师", phone: str = "13900001111",
                         address: str = "广州市天河区示范路 1 号") -> None:
    """第一步：完善院校基础信息 (from the dashboard)."""
    page.get_by_role("link", name="完善院校基础信息", exact=True).click()
    expect(page.get_by_role("heading", name="第一步：完善院校基础信息")).to_be_visible()
    field(page, "办学层次").select_option(label="高职专科")
    field(page, "办学性质").select_option(label="公办")
    field(page, "联系人").fill(contact)
    field(page, "联系电话").fill(phone)
    field(page, "通讯地址").fill(address)
    page.get_by_role("button", name="保存院校基础信息").click()
    expect(page.get_by_text("院校基础信息已保存")).to_be_visible()


def fill_declaration(page: Any, *, trainee_count: str = "60", teachers: str = TEACHERS,
                     majors: list[str] | None = None) -> None:
    """Fill the declaration form by its labels: 证书 · 证书等级 · 拟申请专业 · 培训人数 · 师资情况 · 场地情况."""
    field(page, "证书").select_option(label=CERTIFICATE)
    field(page, "证书等级").select_option(label="中级")
    field(page, "拟申请专业").select_option(label=MAJORS if majors is None else majors)
    field(page, "培训人数").fill(trainee_count)
    field(page, "师资情况").fill(teachers)
    field(page, "场地情况").fill(FACILITIES)


def submit_for_review(page: Any, *, confirm: bool) -> list[str]:
    """Click 提交审核 and answer the browser's confirm dialog; return the dialog texts seen."""
    seen: list[str] = []

    def answer(dialog: Any) -> None:
        seen.append(dialog.message)
        dialog.accept() if confirm else dialog.dismiss()

    page.once("dialog", answer)
    page.get_by_role("button", name="提交审核", exact=True).click()
    if confirm:
        expect(page).to_have_url(DETAIL_URL)
    return seen


def status_of(page: Any) -> Any:
    return page.locator("#declaration-status")


def review(reviewer: Any, decision: str, comment: str = "") -> None:
    """Open the 岭南 row of the review queue, decide (审核通过 / 审核不通过) with 审核意见."""
    reviewer.get_by_role("link", name="审核", exact=True).first.click()  # the navigation bar's 审核
    row = reviewer.get_by_role("row").filter(has_text=SCHOOL)
    row.get_by_role("link", name="审核", exact=True).click()
    expect(reviewer.get_by_role("heading", name=f"审核：{SCHOOL}")).to_be_visible()
    field(reviewer, decision).check()
    if comment:
        field(reviewer, "审核意见").fill(comment)
    reviewer.get_by_role("button", name="提交审核结论").click()
    expect(reviewer.get_by_text("审核结果已提交")).to_be_visible()


def assert_chinese_renders_as_glyphs(page: Any, name: str) -> None:
    """Fail if Chinese is drawn as identical boxes (no CJK font): two different characters must look different.

    Without a CJK font Chromium draws every Chinese character as the same .notdef box, so the element
    screenshots of "注" and "册" would be byte-identical, and identical to a private-use character's box.
    """
    page.evaluate("""() => {
        const box = document.createElement('div');
        box.id = 'glyph-probe';
        for (const [id, ch] of [['g1', '注'], ['g2', '册'], ['g3', '\\uE000']]) {
            const s = document.createElement('span');
            s.id = id; s.textContent = ch;
            s.style.cssText = 'display:inline-block;width:64px;height:64px;font-size:48px;line-height:64px;' +
                              'text-align:center;background:#fff;color:#000;margin:4px';
            box.appendChild(s);
        }
        document.body.appendChild(box);
    }""")
    shots = {ch: page.locator(f"#{ch}").screenshot() for ch in ("g1", "g2", "g3")}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"{name}-glyphs.png").write_bytes(page.locator("#glyph-probe").screenshot())
    assert shots["g1"] != shots["g2"], "两个不同的汉字渲染得一模一样：没有中文字体（显示为方框）"
    assert shots["g1"] != shots["g3"] and shots["g2"] != shots["g3"], "汉字与缺字方框相同：没有中文字体"
    page.evaluate("() => document.getElementById('glyph-probe').remove()")


def sms_statuses(server: Any, phone: str) -> list[str]:
    with server.app.app_context():
        return [m.status for m in db.session.scalars(select(SmsMessage).where(SmsMessage.phone == phone))]


# ---------------------------------------------------------------- flow 一

def test_flow_one_register_declare_reject_resubmit_approve(browsing: Any) -> None:
    server = browsing.server
    school = browsing.new_page("school")

    # 1. 申报入口: home → 院校 → login → 立即注册.
    school.goto("/")
    expect(school.get_by_role("heading", name="试点院校申报系统入口")).to_be_visible()
    school.get_by_role("link", name="院校", exact=True).click()
    expect(school.get_by_role("heading", name="试点院校登录")).to_be_visible()
    school.get_by_role("link", name="立即注册", exact=True).click()
    expect(school.get_by_role("heading", name="院校注册")).to_be_visible()

    # 2. 注册账号: 所在省市 first, then 院校名称 from the official list (datalist), then 手机号.
    province_select(school).select_option(label="广东省")
    field(school, "所在城市").select_option(label="广州市")
    name_input = field(school, "院校名称")
    name_input.press_sequentially("岭南交通")
    offered = school.locator("#school-list option")
    expect(offered).to_have_count(1)
    expect(offered).to_have_attribute("value", SCHOOL)
    name_input.fill(offered.get_attribute("value"))  # picking the suggestion puts its value in the field
    field(school, "手机号").fill(PHONE)
    # 获取验证码 posts the form and brings it back filled in; the code arrives by SMS (the outbox shows it).
    school.get_by_role("button", name="获取验证码", exact=True).click()
    expect(school.locator("#code-sent")).to_contain_text("验证码已发送至手机 137****5678")
    expect(field(school, "院校名称")).to_have_value(SCHOOL)
    assert server.run_jobs() >= 1  # the worker delivers the code
    field(school, "验证码").fill(texted_code(server.app, PHONE))
    school.get_by_role("button", name="注册", exact=True).click()

    # The page shows the account and the password and the registrant is signed in; the SMS went with the
    # national process's activation.
    expect(school.get_by_role("heading", name="注册成功")).to_be_visible()
    account = school.locator("#account").inner_text().strip()
    password = school.locator("#password").inner_text().strip()
    assert account and password
    expect(school.get_by_text(f"账号：{account}")).to_be_visible()
    expect(school.get_by_text(f"密码：{password}")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    school.screenshot(path=str(ARTIFACTS / "flow1-registered.png"), full_page=True)
    assert_chinese_renders_as_glyphs(school, "flow1-registered")
    assert sms_statuses(server, PHONE) == ["sent", "sent"]  # the code, then the account

    # 开始申报试点证书 leads straight into 证书试点申报, with a prompt (not a wall) to change the password.
    school.get_by_role("link", name="开始申报试点证书", exact=True).click()
    expect(school.get_by_role("heading", name="证书管理 · 证书试点申报")).to_be_visible()
    expect(school.locator("#password-prompt")).to_be_visible()
    school.locator("#password-prompt").get_by_role("link", name="立即修改密码").click()
    field(school, "当前密码").fill(password)
    field(school, "新密码").fill(NEW_PASSWORD)
    field(school, "确认新密码").fill(NEW_PASSWORD)
    school.get_by_role("button", name="保存新密码").click()
    expect(school.get_by_text("密码已修改")).to_be_visible()
    # One next step, 第一步 as the main button; 第二步 has no greyed button beside it.
    expect(school.locator("#next-step").get_by_role("link", name="完善院校基础信息", exact=True)).to_have_class("btn")
    expect(school.get_by_role("button", name="申请新的证书试点", exact=True)).to_have_count(0)
    expect(school.get_by_role("link", name="申请新的证书试点", exact=True)).to_have_count(0)

    # 3. 第一步 完善院校基础信息, 第二步 申请新的证书试点.
    complete_school_info(school)
    school.get_by_role("link", name="申请新的证书试点", exact=True).click()
    expect(school.get_by_role("heading", name="申请新的证书试点")).to_be_visible()
    fill_declaration(school)
    school.get_by_role("button", name="保存，暂不提交审核", exact=True).click()
    expect(school).to_have_url(DETAIL_URL)
    expect(school.get_by_text("已保存草稿")).to_be_visible()
    expect(status_of(school)).to_have_text("草稿")

    # Edit the draft; dismissing the confirm dialog of 提交审核 keeps it a draft.
    school.get_by_role("link", name="修改", exact=True).click()
    expect(field(school, "培训人数")).to_have_value("60")
    expect(field(school, "师资情况")).to_have_value(TEACHERS)
    field(school, "培训人数").fill("80")
    edit_url = school.url
    posts: list[str] = []
    school.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    dialogs = submit_for_review(school, confirm=False)
    assert dialogs and "确认提交审核" in dialogs[0]
    school.wait_for_timeout(300)
    assert school.url == edit_url and posts == []  # nothing was sent
    expect(school.get_by_role("button", name="提交审核", exact=True)).to_be_enabled()
    expect(school.get_by_role("button", name="保存，暂不提交审核", exact=True)).to_be_enabled()
    peek = school.context.new_page()
    peek.goto(edit_url.removesuffix("/edit"))
    expect(status_of(peek)).to_have_text("草稿")
    expect(peek.locator("dd").filter(has_text=re.compile(r"^60$"))).to_have_count(1)
    peek.close()

    # Accept it this time: 待审核, and no 修改 any more (neither on the detail page nor in the list).
    assert submit_for_review(school, confirm=True)
    expect(school.get_by_text("已提交审核，请等待省级教育行政部门审核")).to_be_visible()
    expect(status_of(school)).to_have_text("待审核")
    expect(school.get_by_role("link", name="修改", exact=True)).to_have_count(0)
    expect(school.get_by_text("已提交审核，不能修改")).to_be_visible()
    school.get_by_role("link", name="证书试点申报", exact=True).click()
    row = school.get_by_role("row").filter(has_text=CERTIFICATE)
    expect(row.get_by_text("待审核", exact=True)).to_be_visible()
    expect(row.get_by_role("link", name="修改", exact=True)).to_have_count(0)
    expect(row.get_by_role("button", name="删除", exact=True)).to_have_count(0)

    # The province's reviewer (another browser context) rejects; 审核意见 is required for that.
    reviewer = browsing.new_page("reviewer")
    staff_logs_in(reviewer, "gd_reviewer")
    expect(reviewer.get_by_role("row").filter(has_text=SCHOOL)).to_have_count(1)
    reviewer.get_by_role("row").filter(has_text=SCHOOL).get_by_role("link", name="审核", exact=True).click()
    field(reviewer, "审核不通过").check()
    reviewer.get_by_role("button", name="提交审核结论").click()
    expect(reviewer.get_by_text("审核意见：必填")).to_be_visible()
    review(reviewer, "审核不通过", REJECTION)
    server.run_jobs()

    # The school sees 审核不通过 with the comment, edits and resubmits.
    school.reload()
    row = school.get_by_role("row").filter(has_text=CERTIFICATE)
    expect(row.get_by_text("审核不通过", exact=True)).to_be_visible()
    row.get_by_role("link", name="查看", exact=True).click()
    expect(status_of(school)).to_have_text("审核不通过")
    expect(school.locator("#review-comment")).to_have_text(REJECTION)
    school.get_by_role("link", name="修改", exact=True).click()
    expect(school.get_by_text(f"审核意见：{REJECTION}")).to_be_visible()
    expect(field(school, "培训人数")).to_have_value("80")
    field(school, "拟申请专业").select_option(label=[MAJORS[0]])
    field(school, "师资情况").fill(TEACHERS + "另有 2 人持高级证书。")
    submit_for_review(school, confirm=True)
    expect(status_of(school)).to_have_text("待审核")
    expect(school.get_by_role("link", name="修改", exact=True)).to_have_count(0)

    # The reviewer approves; the school sees 审核通过.
    review(reviewer, "审核通过")
    expect(reviewer.get_by_text("没有等待省级审核的申报")).to_be_visible()
    server.run_jobs()
    school.reload()
    expect(status_of(school)).to_have_text("审核通过")
    history = school.get_by_role("row").filter(has_text="提交审核")
    expect(history).to_have_count(2)
    assert set(sms_statuses(server, PHONE)) == {"sent"} and len(sms_statuses(server, PHONE)) >= 3
    school.screenshot(path=str(ARTIFACTS / "flow1-approved.png"), full_page=True)


# ---------------------------------------------------------------- flow 二

def test_flow_two_legacy_school_drafts_edits_deletes_and_submits(browsing: Any) -> None:
    school = browsing.new_page("legacy")
    school.goto("/")
    school.get_by_role("link", name="院校", exact=True).click()
    log_in(school, "zjxx_weekly", DEMO_PASSWORD)

    # 证书管理 → 证书试点申报: the province's published plan.
    expect(school.get_by_text("证书管理", exact=True)).to_be_visible()
    expect(school.get_by_role("link", name="证书试点申报", exact=True)).to_be_visible()
    plans = school.get_by_role("heading", name="本省证书申报计划").locator("..")
    expect(plans.get_by_role("cell", name="2026年广东省1+X证书试点申报（第一批）")).to_be_visible()
    expect(school.get_by_text("还没有申报记录。")).to_be_visible()
    # 【申报证书试点】 goes straight to declaring: the basic information the account lacks is asked on the form.
    school.locator("#next-step").get_by_role("link", name="申报证书试点", exact=True).click()
    expect(school.get_by_role("heading", name="申请新的证书试点")).to_be_visible()
    expect(school.locator("#school-info-missing")).to_be_visible()
    field(school, "办学性质").select_option(label="公办")
    field(school, "联系人").fill("陈老师")
    field(school, "通讯地址").fill("广州市天河区示范路 1 号")
    fill_declaration(school)
    school.get_by_role("button", name="保存，暂不提交审核", exact=True).click()
    expect(status_of(school)).to_have_text("草稿")

    # Edit it from the list, save again.
    school.get_by_role("link", name="证书试点申报", exact=True).click()
    row = school.get_by_role("row").filter(has_text=CERTIFICATE)
    expect(row.get_by_text("草稿", exact=True)).to_be_visible()
    row.get_by_role("link", name="修改", exact=True).click()
    field(school, "培训人数").fill("75")
    school.get_by_role("button", name="保存，暂不提交审核", exact=True).click()
    expect(status_of(school)).to_have_text("草稿")
    expect(school.locator("dd").filter(has_text=re.compile(r"^75$"))).to_have_count(1)

    # Delete the draft: dismissing the confirm keeps it, accepting deletes it.
    school.get_by_role("link", name="证书试点申报", exact=True).click()
    row = school.get_by_role("row").filter(has_text=CERTIFICATE)
    posts: list[str] = []
    school.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    school.once("dialog", lambda d: d.dismiss())
    row.get_by_role("button", name="删除", exact=True).click()
    school.wait_for_timeout(300)
    assert posts == []
    expect(row).to_have_count(1)
    messages: list[str] = []
    school.once("dialog", lambda d: (messages.append(d.message), d.accept()))
    row.get_by_role("button", name="删除", exact=True).click()
    expect(school.get_by_text("草稿已删除")).to_be_visible()
    assert messages and "删除" in messages[0]
    expect(school.get_by_text("还没有申报记录。")).to_be_visible()

    # Declare again and submit.
    school.get_by_role("link", name="申报证书试点", exact=True).click()
    fill_declaration(school, trainee_count="90")
    submit_for_review(school, confirm=True)
    expect(status_of(school)).to_have_text("待审核")
    school.get_by_role("link", name="证书试点申报", exact=True).click()
    row = school.get_by_role("row").filter(has_text=CERTIFICATE)
    expect(row.get_by_text("待审核", exact=True)).to_be_visible()
    expect(row.get_by_role("link", name="修改", exact=True)).to_have_count(0)


# ---------------------------------------------------------------- bad input

def test_bad_declaration_input_shows_field_messages_and_keeps_what_was_typed(browsing: Any) -> None:
    school = browsing.new_page("legacy")
    school.goto("/login")
    log_in(school, "zjxx_weekly", DEMO_PASSWORD)
    complete_school_info(school)
    school.get_by_role("link", name="申报证书试点", exact=True).click()
    fill_declaration(school, trainee_count="0", teachers="少")
    school.once("dialog", lambda d: d.accept())
    school.get_by_role("button", name="提交审核", exact=True).click()

    expect(school.get_by_text("提交的信息有 2 处需要修改")).to_be_visible()
    expect(school.get_by_text("培训人数：不能小于 1")).to_be_visible()
    expect(school.get_by_text("师资情况：至少 10 个字")).to_be_visible()
    # What was typed and chosen is still there.
    expect(field(school, "证书")).to_have_value(re.compile(r"^\d+$"))
    expect(field(school, "证书").locator("option:checked")).to_have_text(CERTIFICATE)
    expect(field(school, "证书等级")).to_have_value("中级")
    expect(field(school, "拟申请专业")).to_have_values(["510201", "510203"])
    expect(field(school, "培训人数")).to_have_value("0")
    expect(field(school, "师资情况")).to_have_value("少")
    expect(field(school, "场地情况")).to_have_value(FACILITIES)

    # Correcting the two fields saves the draft.
    field(school, "培训人数").fill("60")
    field(school, "师资情况").fill(TEACHERS)
    school.get_by_role("button", name="保存，暂不提交审核", exact=True).click()
    expect(status_of(school)).to_have_text("草稿")


def test_registration_of_an_unlisted_school_names_the_officer_and_keeps_input(browsing: Any) -> None:
    page = browsing.new_page("newcomer")
    page.goto("/register")
    province_select(page).select_option(label="广东省")
    field(page, "所在城市").select_option(label="广州市")
    field(page, "院校名称").press_sequentially("不存在的职业学院")
    # While typing, the search says the school is not in the list and whom to contact.
    expect(page.get_by_text(re.compile(r"没有找到匹配的院校。如本校不在名单中，请联系.*李老师"))).to_be_visible()
    field(page, "手机号").fill("1234")
    page.get_by_role("button", name="注册", exact=True).click()

    expect(page.get_by_role("alert").filter(has_text="不在广东省的教育部院校名单中")).to_contain_text("李老师")
    expect(page.get_by_role("alert").filter(has_text="手机号：请输入 11 位中国大陆手机号")).to_be_visible()
    expect(province_select(page)).to_have_value("440000")
    expect(field(page, "所在城市")).to_have_value("440100")
    expect(field(page, "院校名称")).to_have_value("不存在的职业学院")
    expect(field(page, "手机号")).to_have_value("1234")


def test_registration_fields_are_named_by_their_visible_labels(browsing: Any) -> None:
    page = browsing.new_page("newcomer")
    page.goto("/register")
    expect(page.get_by_role("combobox", name="所在省市", exact=True)).to_have_count(1, timeout=1000)
