"""An analyst writes a dry-run scenario in the editor's 场景 panel, runs it on the draft (path, statuses, the SMS
that would be sent), saves it for 广东, and a publish to 广东 is blocked by a failing saved scenario until it is
fixed. tests/test_scenarios.py pins the same through the Flask client for every process."""
from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from app.extensions import db
from app.processes.models import ProcessScenario, ProcessVersion
from tests.browser.test_analyst import field
from tests.browser.test_flows import ARTIFACTS
from tests.browser.test_province_processes import check_for_guangdong, open_national_draft, publish_for_guangdong

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.browser

NAME = "提交后审核不通过"


def panel(page: Any) -> Any:
    return page.locator("#scenarios")


def step(page: Any, number: int) -> Any:
    return page.locator("#sc-steps > li").nth(number - 1)


def add_step(page: Any, label: str) -> None:
    field(panel(page), "添加步骤").select_option(label=label)
    panel(page).get_by_role("button", name="添加步骤").click()


def run_rows(page: Any) -> Any:
    return page.locator("#scenario-run tbody tr")


def scenarios_of_guangdong(server: Any) -> list[tuple[str, str, str]]:
    with server.app.app_context():
        return [(s.name, s.expect_status, s.expect_sms) for s in db.session.scalars(
            select(ProcessScenario).where(ProcessScenario.province_code == "440000"))]


def guangdong_versions(server: Any) -> int:
    with server.app.app_context():
        return len(db.session.scalars(select(ProcessVersion.id).where(ProcessVersion.province_code == "440000")).all())


def test_an_analyst_writes_runs_and_saves_a_scenario_and_publishing_waits_for_it_to_pass(browsing: Any) -> None:
    analyst = browsing.new_page("analyst")
    open_national_draft(analyst)
    expect(analyst.locator("#scenarios[data-ready=true]")).to_have_count(1)
    # The built-in scenarios are listed, named by the forms' words.
    builtin = analyst.locator("#scenario-list tr", has_text="提交 → 不通过").first
    expect(builtin).to_contain_text("（内置）")
    expect(builtin).to_contain_text("省级审核：审核不通过")

    # 广东省's scope, then a new scenario: the school submits, the reviewer rejects with a comment.
    field(analyst, "适用范围").select_option(label="广东省")
    expect(analyst.locator("#scenario-scope")).to_have_text("广东省")
    panel(analyst).get_by_role("button", name="新建场景").click()
    field(panel(analyst), "场景名称").fill(NAME)
    add_step(analyst, "办理“填写并提交申报”（school）")
    add_step(analyst, "办理“省级审核”（province_reviewer）")
    expect(field(step(analyst, 2), "第 2 步")).to_have_value("task:province_review")
    decision = field(step(analyst, 2), "审核结论")
    expect(decision.locator("option")).to_have_text(["审核通过", "审核不通过"])  # x-enum-labels, not raw values
    decision.select_option(label="审核不通过")
    field(step(analyst, 2), "审核意见").fill("请补充师资证明")
    field(panel(analyst), "预期最终状态").select_option(label="审核不通过")
    field(panel(analyst), "预期发送的短信").select_option(label="review_rejected")

    # 运行: the path, the status at each step, the SMS that would be sent.
    panel(analyst).get_by_role("button", name="运行", exact=True).click()
    expect(analyst.locator("#sc-result .xp-run-passed")).to_have_text("场景通过")
    rows = run_rows(analyst)
    expect(rows).to_have_count(3)
    expect(rows.locator(".status")).to_have_text(["草稿", "待审核", "审核不通过"])
    expect(rows.locator(".xp-run-action")).to_have_text(["开始", "填写并提交申报：初级", "省级审核：审核不通过"])
    expect(rows.nth(2).locator(".xp-run-path")).to_have_text("省级审核 → 审核结论 → 短信通知审核不通过 → 填报")
    expect(rows.nth(2).locator(".xp-run-sms")).to_contain_text("review_rejected")
    expect(rows.nth(2).locator(".xp-run-sms")).to_contain_text("审核不通过，审核意见：请补充师资证明")
    rows.nth(2).locator("summary").click()
    expect(rows.nth(2).locator("dl")).to_contain_text("请补充师资证明")
    ARTIFACTS.mkdir(exist_ok=True)
    analyst.screenshot(path=str(ARTIFACTS / "analyst-scenario-run.png"), full_page=True)

    # 保存: listed for 广东, stored with its expectations.
    panel(analyst).get_by_role("button", name="保存场景").click()
    expect(analyst.locator("#sc-message")).to_have_text(f"已保存场景“{NAME}”")
    mine = analyst.locator("#scenario-list tr", has_text=NAME)
    expect(mine).to_contain_text("填写并提交申报：初级")
    expect(mine).to_contain_text("省级审核：审核不通过")
    expect(mine).to_contain_text("最终状态“审核不通过”；发送短信 review_rejected")
    assert scenarios_of_guangdong(browsing.server) == [(NAME, "审核不通过", "review_rejected")]

    # 校验 for 广东 passes (the saved scenario runs too); then the scenario is edited to expect what does not happen.
    check_for_guangdong(analyst)
    expect(analyst.get_by_role("heading", name="校验通过")).to_be_visible()
    mine = analyst.locator("#scenario-list tr", has_text=NAME)
    mine.get_by_role("button", name=f"编辑场景“{NAME}”").click()
    expect(field(panel(analyst), "场景名称")).to_have_value(NAME)
    expect(field(step(analyst, 2), "审核结论")).to_have_value("reject")
    field(panel(analyst), "预期最终状态").select_option(label="审核通过")
    panel(analyst).get_by_role("button", name="保存场景").click()
    expect(analyst.locator("#sc-message")).to_have_text(f"已保存场景“{NAME}”")

    # 发布 is blocked, naming the scenario and what failed; nothing is published.
    before = guangdong_versions(browsing.server)
    field(analyst, "发布说明").fill("广东省试行")
    analyst.get_by_role("button", name="发布到广东省").click()
    problems = analyst.locator("#problems")
    expect(problems).to_contain_text(f"场景“{NAME}”未通过：预期最终状态为“审核通过”，实际为“审核不通过”")
    assert guangdong_versions(browsing.server) == before

    # Fixed in the panel, the draft checks and publishes.
    analyst.locator("#scenario-list tr", has_text=NAME).get_by_role("button", name=f"编辑场景“{NAME}”").click()
    field(panel(analyst), "预期最终状态").select_option(label="审核不通过")
    panel(analyst).get_by_role("button", name="保存场景").click()
    expect(analyst.locator("#sc-message")).to_have_text(f"已保存场景“{NAME}”")
    analyst.locator("#scenario-list tr", has_text=NAME).get_by_role("button", name=f"运行场景“{NAME}”").click()
    expect(analyst.locator("#sc-result .xp-run-passed")).to_have_text("场景通过")
    check_for_guangdong(analyst)
    expect(analyst.get_by_role("heading", name="校验通过")).to_be_visible()
    publish_for_guangdong(analyst, "广东省试行")
    assert guangdong_versions(browsing.server) == before + 1
    assert re.search(r"/processes/versions/\d+$", analyst.url)
