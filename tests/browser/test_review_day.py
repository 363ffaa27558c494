"""The reviewer's day at a desk (1366x768) in Chromium: a filtered, sorted queue kept through each decision,
下一条 and the keyboard shortcuts, the decision visible without scrolling, a sticky header and unwrapped city
names, what a resubmission changed, and 批量审核通过 that asks first."""
from __future__ import annotations

import re
from typing import Any

import pytest

from app.declarations import services as decl_service
from app.extensions import db
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_analyst import log_in
from tests.test_review_queue import LINGNAN, LOGISTICS, PENGCHENG, WEB, ZHUJIANG, _school_user, declare

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.browser
DESK = {"width": 1366, "height": 768}
QUERY = "sort=school&per_page=200"


def desk_page(browsing: Any, who: str) -> Any:
    page = browsing.new_page(who)
    page.set_viewport_size(DESK)
    return page


def one_line(page: Any, locator: Any) -> bool:
    """Whether the element's text is laid out on a single line."""
    return bool(locator.evaluate("e => { const r = document.createRange(); r.selectNodeContents(e);"
                                 " return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size === 1; }"))


def test_a_reviewer_works_through_a_sorted_queue_by_keyboard(browsing: Any) -> None:
    app = browsing.server.app
    ids = {LINGNAN: declare(app, LINGNAN, WEB, "中级"), ZHUJIANG: declare(app, ZHUJIANG, LOGISTICS, "初级"),
           PENGCHENG: declare(app, PENGCHENG, WEB, "高级")}
    reviewer = desk_page(browsing, "reviewer")
    log_in(reviewer, "gd_reviewer")
    reviewer.goto(f"/review/?{QUERY}")
    table = reviewer.locator("table.queue")
    assert table.locator("th").first.evaluate("e => getComputedStyle(e).position") == "sticky"
    assert table.bounding_box()["width"] > 1200  # not capped at 1100 px
    for cell in table.locator("tbody tr td:nth-child(3)").all():
        assert one_line(reviewer, cell), cell.inner_text()
    expect(reviewer.locator("#q-per-page")).to_have_value("200")
    ARTIFACTS.mkdir(exist_ok=True)
    reviewer.screenshot(path=str(ARTIFACTS / "review-queue-1366.png"))

    # Pinyin order: ling nan, peng cheng, zhu jiang. Open the first; the decision is in view without scrolling.
    reviewer.get_by_role("row").filter(has_text=LINGNAN).get_by_role("link", name="审核", exact=True).click()
    expect(reviewer).to_have_url(re.compile(rf"/review/declarations/{ids[LINGNAN]}\?sort=school&per_page=200$"))
    for shown in (reviewer.get_by_role("button", name="提交审核结论"), reviewer.get_by_label("审核意见"),
                  reviewer.locator("#shortcuts"), reviewer.get_by_role("link", name="下一条")):
        expect(shown).to_be_in_viewport()
    reviewer.screenshot(path=str(ARTIFACTS / "review-declaration-1366.png"))
    reviewer.locator("h1").click()
    reviewer.keyboard.press("a")
    expect(reviewer.get_by_label("审核通过", exact=True)).to_be_checked()
    reviewer.keyboard.press("Control+Enter")
    # back on the same queue, same filter and sort
    expect(reviewer.get_by_text("审核结果已提交")).to_be_visible()
    expect(reviewer).to_have_url(re.compile(r"/review/\?sort=school&per_page=200$"))
    expect(reviewer.locator("#q-sort")).to_have_value("school")
    expect(reviewer.get_by_role("row").filter(has_text=LINGNAN)).to_have_count(0)

    reviewer.get_by_role("row").filter(has_text=PENGCHENG).get_by_role("link", name="审核", exact=True).click()
    reviewer.locator("h1").click()
    reviewer.keyboard.press("n")  # 下一条 of the same queue
    expect(reviewer).to_have_url(re.compile(rf"/review/declarations/{ids[ZHUJIANG]}\?sort=school&per_page=200$"))
    reviewer.locator("h1").click()
    reviewer.keyboard.press("r")
    expect(reviewer.get_by_label("审核不通过", exact=True)).to_be_checked()
    expect(reviewer.get_by_label("审核意见")).to_be_focused()
    reviewer.keyboard.type("请补充实训场地照片")
    expect(reviewer.get_by_label("审核不通过", exact=True)).to_be_checked()  # typing letters is not a shortcut
    expect(reviewer.get_by_text("已是队列中的最后一条")).to_be_visible()
    reviewer.get_by_role("button", name="提交审核结论").click()
    expect(reviewer).to_have_url(re.compile(r"/review/\?sort=school&per_page=200$"))

    # The school edits the returned declaration and submits it again: the reviewer sees what changed.
    browsing.server.run_jobs()
    with app.app_context():
        session = db.session()
        user = _school_user(session, ZHUJIANG)
        decl = decl_service.get_declaration(session, user, ids[ZHUJIANG])
        values = {"certificate_id": decl.certificate_id, "level": decl.level, "majors": list(decl.majors),
                  "trainee_count": 120, "teachers": decl.teachers, "facilities": "实训室 3 间，已补充场地照片。"}
        decl_service.update_declaration(session, user, ids[ZHUJIANG], values, "submit")
        session.commit()
    reviewer.goto(f"/review/declarations/{ids[ZHUJIANG]}?{QUERY}")
    changes = reviewer.locator("#changes")
    expect(changes).to_contain_text("请补充实训场地照片")
    expect(changes.get_by_role("row").filter(has_text="培训人数")).to_contain_text("50")
    expect(changes.get_by_role("row").filter(has_text="培训人数")).to_contain_text("120")
    expect(changes.get_by_role("row").filter(has_text="场地情况")).to_contain_text("已补充场地照片")
    expect(changes.get_by_role("row")).to_have_count(3)  # the header and the two changed fields
    reviewer.screenshot(path=str(ARTIFACTS / "review-changes-1366.png"))

    # 批量审核通过 asks first, with the counts; 返回 keeps the queue.
    reviewer.goto(f"/review/?{QUERY}")
    reviewer.get_by_label("全选本页").check()
    reviewer.get_by_role("button", name="批量审核通过").click()
    expect(reviewer.get_by_role("heading", name="确认批量审核通过")).to_be_visible()
    expect(reviewer.locator("#approve-count")).to_have_text("2")
    expect(reviewer.locator("#sms-count")).to_have_text("2")
    reviewer.get_by_role("button", name="确认审核通过 2 条").click()
    expect(reviewer.get_by_text("已批量审核通过 2 条申报")).to_be_visible()
    expect(reviewer).to_have_url(re.compile(r"/review/\?sort=school&per_page=200$"))
    expect(reviewer.get_by_text("没有等待省级审核的申报")).to_be_visible()
