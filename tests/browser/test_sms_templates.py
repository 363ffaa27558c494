"""An analyst gives 广东 its own final-rejection text in the browser: 短信模板 in the menu, a preview on sample data,
a refusal that keeps the typed text, saving, the history; then a 广东 message uses the new text."""
from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from app.extensions import db
from app.sms import services as sms
from app.sms.models import SmsTemplate
from tests.browser.test_analyst import field, log_in, nav

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.browser

OWN_TEXT = "【1+X证书试点】{school}申报的{certificate}（{level}）试点审核不通过，审核意见：{comment}。本批次申报已结束。"


def test_analyst_sets_a_province_text_with_preview_and_history(browsing: Any) -> None:
    page = browsing.new_page("analyst")
    log_in(page, "analyst")
    nav(page, "短信模板")
    expect(page.locator("h1")).to_have_text("短信模板")
    page.locator("#tpl-review_rejected").get_by_role("link", name="review_rejected").click()
    expect(page.locator("#preview-text")).to_contain_text("演示职业技术学院申报的Web前端开发职业技能等级证书")
    page.get_by_label("为某省设置本省文字").select_option(label="广东省")
    page.get_by_role("button", name="设置本省文字").click()
    expect(page.locator("h1")).to_have_text("新建短信模板")
    # A placeholder the declaration process does not fill is refused; the typed text stays.
    field(page, "短信内容").fill(OWN_TEXT.replace("本批次申报已结束。", "{deadline}前可申诉。"))
    field(page, "说明").fill("广东：审核不通过即结束")
    page.get_by_role("button", name="保存", exact=True).click()
    expect(page.locator(".field.has-error .error")).to_contain_text("没有填写 {deadline}")
    expect(field(page, "短信内容")).to_have_value(re.compile(r"\{deadline\}前可申诉"))
    field(page, "短信内容").fill(OWN_TEXT)
    field(page, "示例 {school}").fill("珠江信息职业学院")
    page.get_by_role("button", name="预览").click()
    expect(page.locator("#preview-text")).to_contain_text("珠江信息职业学院申报的")
    expect(page.locator("#preview-text")).to_contain_text("本批次申报已结束。")
    page.get_by_role("button", name="保存", exact=True).click()
    expect(page.locator(".flash.success")).to_contain_text("已保存为第 1 版")
    expect(page.locator("h1")).to_contain_text("广东省")
    field(page, "服务商模板编号").fill("SMS_440100")
    field(page, "修改说明").fill("填写阿里云模板编号")
    page.get_by_role("button", name="保存新版本").click()
    expect(page.locator(".flash.success")).to_contain_text("第 2 版")
    history = page.locator("#history tbody tr")
    expect(history).to_have_count(2)
    expect(history.first).to_contain_text("填写阿里云模板编号")
    app = browsing.server.app
    with app.app_context():
        session = db.session()
        own = session.scalars(select(SmsTemplate).where(SmsTemplate.scope == "440000")).one()
        assert (own.name, own.version, own.provider_code) == ("review_rejected", 2, "SMS_440100")
        message = sms.queue_message(session, key=f"b-{uuid.uuid4().hex}", phone="13900002222",
                                    template="review_rejected", province_code="440000",
                                    params={"school": "珠江信息职业学院", "certificate": "证书", "level": "初级",
                                            "comment": "无"})
        assert message.body.endswith("本批次申报已结束。") and message.provider_template == "SMS_440100"
        session.rollback()
