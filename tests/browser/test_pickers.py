"""Pickers in Chromium: the school picker takes a partial name and drops old errors (phone size), searchable
multi-selects for the plan's certificates (desk) and 拟申请专业 (phone and desk), date-time pickers and required
markers on the plan form."""
from __future__ import annotations

from typing import Any

import pytest

from tests.browser.test_analyst import client_of, log_in, post
from tests.browser.test_flows import field, province_select
from tests.factories import texted_code

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}
DESK = {"width": 1366, "height": 768}


def sized(browsing: Any, who: str, size: dict[str, int]) -> Any:
    page = browsing.new_page(who)
    page.set_viewport_size(size)
    return page


def test_a_partial_school_name_registers_the_one_listed_school_and_old_errors_go(browsing: Any) -> None:
    page = sized(browsing, "newcomer", PHONE)
    page.goto("/register")
    province_select(page).select_option(label="广东省")
    field(page, "所在城市").select_option(label="广州市")
    field(page, "院校名称").fill("岭南")
    field(page, "手机号").fill("1234")
    page.get_by_role("button", name="注册", exact=True).click()
    phone_error = page.get_by_role("alert").filter(has_text="手机号：请输入 11 位中国大陆手机号")
    expect(phone_error).to_be_visible()
    expect(page.get_by_role("alert").filter(has_text="院校名称")).to_have_count(0)  # “岭南” is one listed school
    field(page, "手机号").fill("13712345678")
    expect(phone_error).to_have_count(0)  # the corrected field's old error is gone
    page.get_by_role("button", name="获取验证码", exact=True).click()  # the partial name passes the check too
    expect(page.locator("#code-sent")).to_contain_text("验证码已发送至手机 137****5678")
    field(page, "验证码").fill(texted_code(browsing.server.app, "13712345678"))
    page.get_by_role("button", name="注册", exact=True).click()
    expect(page.get_by_role("heading", name="注册成功")).to_be_visible()
    expect(page.locator("#account")).to_have_text("9144010001")  # 岭南交通职业技术学院's 学校标识码


def test_plan_form_pickers(browsing: Any) -> None:
    admin = sized(browsing, "admin", DESK)
    log_in(admin, "gd_admin")
    admin.goto("/province/plans/new")
    for label in ("申报开始时间", "申报截止时间", "审核截止时间"):
        expect(field(admin, label)).to_have_attribute("type", "datetime-local")
        expect(admin.locator("label", has_text=label).locator(".req")).to_have_text("*")
    expect(admin.locator("label", has_text="开放申报的证书").locator(".req")).to_have_text("*")
    certificates = field(admin, "开放申报的证书")
    assert certificates.evaluate("e => e.scrollWidth <= e.clientWidth")  # whole names, none cut
    search = admin.get_by_label("开放申报的证书：筛选")
    search.fill("物流")
    shown = certificates.locator("option:not([hidden])")
    expect(shown.first).to_be_visible()
    for text in shown.all_inner_texts():
        assert "物流" in text
    shown.first.click()  # a click chooses without Ctrl
    chosen = shown.first.inner_text()
    expect(admin.get_by_text("已选 1 项")).to_be_visible()
    admin.get_by_role("button", name=f"取消选择 {chosen}").click()
    expect(admin.get_by_text("已选 0 项")).to_be_visible()
    admin.screenshot(path="test-artifacts/plan-form-1366.png", full_page=True)


@pytest.mark.parametrize("size", [PHONE, DESK], ids=["phone", "desk"])
def test_majors_are_searchable(browsing: Any, size: dict[str, int]) -> None:
    client = client_of(browsing.server, "zjxx_weekly")
    info = {"education_level": "高职专科", "ownership": "公办", "contact_name": "陈老师",
            "contact_phone": "13900001111", "address": "广州市天河区示范路 1 号"}
    assert post(client, "/school/info", "/school/info", info).status_code == 302
    school = sized(browsing, "school", size)
    log_in(school, "zjxx_weekly")
    school.goto("/school/declarations/new")
    majors = field(school, "拟申请专业")
    total = majors.locator("option").count()
    assert total > 2
    school.get_by_label("拟申请专业：筛选").fill("计算机")
    shown = majors.locator("option:not([hidden])")
    assert 0 < shown.count() < total
    assert all("计算机" in text for text in shown.all_inner_texts())
    shown.first.click()
    expect(school.get_by_text("已选 1 项")).to_be_visible()
    school.get_by_label("拟申请专业：筛选").fill("")
    expect(majors.locator("option:not([hidden])")).to_have_count(total)
    assert len(majors.evaluate("e => [...e.selectedOptions].map(o => o.value)")) == 1
    school.screenshot(path=f"test-artifacts/majors-{size['width']}.png")
