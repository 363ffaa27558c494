"""The reviewer's day: the queue's filters and sort kept through a decision, 下一条 in the same queue, pages of
200, and what a resubmitted declaration changed since it was returned."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from sqlalchemy import select

from app.declarations import services as decl_service
from app.declarations.models import Declaration, DeclarationEvent
from app.extensions import db
from app.masterdata.models import Certificate
from app.review import queue_queries
from tests.conftest import run_jobs
from tests.test_review_queue import FOSHAN, LINGNAN, PENGCHENG, WEB, ZHUJIANG, _school_user, client_of
from tests.test_review_queue import season as season  # noqa: F401 - the fixture, used by name


def next_of(reviewer: Any, decl_id: int, query: str = "") -> int | None:
    """The declaration the review page's 下一条 opens (None: no 下一条), checking it keeps the query."""
    html = reviewer.get(f"/review/declarations/{decl_id}" + (f"?{query}" if query else "")).get_data(as_text=True)
    found = re.search(r'id="next-link" href="/review/declarations/(\d+)([^"]*)"', html)
    if found is None:
        assert "已是队列中的最后一条" in html
        return None
    assert found.group(2) == (f"?{query}".replace("&", "&amp;") if query else "")
    return int(found.group(1))


def walk(reviewer: Any, first: int, query: str = "") -> list[int]:
    order, current = [first], next_of(reviewer, first, query)
    while current is not None:
        order.append(current)
        current = next_of(reviewer, current, query)
    return order


@pytest.mark.parametrize("few", [queue_queries.FEW, 0])  # both query shapes of a filtered page
def test_next_follows_the_filtered_sorted_queue(app: Flask, season: dict[str, Any], monkeypatch: Any,
                                                few: int) -> None:
    monkeypatch.setattr(queue_queries, "FEW", few)
    ids = season["ids"]
    reviewer = client_of(app, "gd_reviewer")
    assert walk(reviewer, ids[LINGNAN]) == [ids[LINGNAN], ids[ZHUJIANG], ids[PENGCHENG], ids[FOSHAN]]
    assert walk(reviewer, ids[FOSHAN], "sort=submitted_desc") == [
        ids[FOSHAN], ids[PENGCHENG], ids[ZHUJIANG], ids[LINGNAN]]
    # pinyin order: fo shan, ling nan, peng cheng, zhu jiang
    assert walk(reviewer, ids[FOSHAN], "sort=school") == [ids[FOSHAN], ids[LINGNAN], ids[PENGCHENG], ids[ZHUJIANG]]
    with app.app_context():
        web = db.session.scalars(select(Certificate.id).where(Certificate.name.contains(WEB))).one()
    assert walk(reviewer, ids[LINGNAN], f"certificate={web}&sort=school") == [ids[LINGNAN], ids[PENGCHENG]]
    assert walk(reviewer, ids[LINGNAN], urlencode({"status": "全部", "level": "中级"})) == [ids[LINGNAN], ids[FOSHAN]]
    # a wrong filter offers no 下一条 rather than a wrong one
    assert next_of(reviewer, ids[LINGNAN], "sort=nonsense") is None


def test_a_decision_returns_to_the_same_queue_or_opens_the_next_one(app: Flask, season: dict[str, Any]) -> None:
    ids = season["ids"]
    reviewer = client_of(app, "gd_reviewer")
    query = "sort=school&per_page=200"
    page = reviewer.get(f"/review/?{query}").get_data(as_text=True)
    assert f'href="/review/declarations/{ids[FOSHAN]}?sort=school&amp;per_page=200"' in page
    review = reviewer.get(f"/review/declarations/{ids[FOSHAN]}?{query}").get_data(as_text=True)
    assert 'name="q" value="sort=school&amp;per_page=200"' in review and "提交并审核下一条" in review
    back = reviewer.post(f"/review/declarations/{ids[FOSHAN]}", data={"decision": "approve", "q": query,
                                                                       "then": "queue"})
    assert back.status_code == 302 and back.headers["Location"] == f"/review/?{query}"
    onward = reviewer.post(f"/review/declarations/{ids[LINGNAN]}", data={"decision": "approve", "q": query,
                                                                         "then": "next"})
    assert onward.headers["Location"] == f"/review/declarations/{ids[PENGCHENG]}?{query}"
    # the queue has shrunk; the walk still goes on from the decided one's place
    onward = reviewer.post(f"/review/declarations/{ids[PENGCHENG]}", data={
        "decision": "reject", "comment": "请补充场地照片", "q": query, "then": "next"})
    assert onward.headers["Location"] == f"/review/declarations/{ids[ZHUJIANG]}?{query}"
    last = reviewer.post(f"/review/declarations/{ids[ZHUJIANG]}", data={"decision": "approve", "q": query,
                                                                        "then": "next"}, follow_redirects=True)
    html = last.get_data(as_text=True)
    assert last.request.path == "/review/" and "这是队列中的最后一条申报" in html and "没有等待省级审核的申报" in html
    # parameters that are not the queue's are not carried
    stray = reviewer.get(f"/review/?{query}&evil=1").get_data(as_text=True)
    assert "evil" not in stray


def test_two_hundred_rows_a_page(app: Flask, season: dict[str, Any]) -> None:
    reviewer = client_of(app, "gd_reviewer")
    html = reviewer.get("/review/?per_page=200").get_data(as_text=True)
    assert '<option value="200" selected>200</option>' in html and "第 1 / 1 页，共 4 条" in html


def test_a_resubmission_shows_what_changed_since_it_was_returned(app: Flask, season: dict[str, Any]) -> None:
    decl_id = season["ids"][LINGNAN]
    reviewer = client_of(app, "gd_reviewer")
    first = reviewer.get(f"/review/declarations/{decl_id}").get_data(as_text=True)
    assert 'id="changes"' not in first  # never returned: nothing to compare
    reviewer.post(f"/review/declarations/{decl_id}", data={"decision": "reject", "comment": "培训人数偏少"})
    run_jobs(app)  # the process returns it to the school
    with app.app_context():
        session = db.session()
        event = session.scalars(select(DeclarationEvent).where(DeclarationEvent.declaration_id == decl_id,
                                                               DeclarationEvent.action == "reject")).one()
        assert event.snapshot is not None and event.snapshot["trainee_count"] == 50
        assert event.snapshot["majors"] == ["510201"]
        decl = session.get(Declaration, decl_id)
        assert decl is not None
        user = _school_user(session, LINGNAN)
        values = {"certificate_id": decl.certificate_id, "level": decl.level, "majors": ["510201", "510202"],
                  "trainee_count": 80, "teachers": decl.teachers, "facilities": decl.facilities}
        decl_service.update_declaration(session, user, decl_id, values, "save")
        session.commit()
    saved = reviewer.get(f"/review/declarations/{decl_id}").get_data(as_text=True)
    assert 'id="changes"' not in saved  # saved but not submitted again: still with the school
    with app.app_context():
        session = db.session()
        decl_service.update_declaration(session, _school_user(session, LINGNAN), decl_id, values, "submit")
        session.commit()
    html = reviewer.get(f"/review/declarations/{decl_id}").get_data(as_text=True)
    changes = html[html.index('id="changes"'):html.index("</section>")]
    assert "审核不通过时相比" in changes and "培训人数偏少" in changes
    rows = re.findall(r'<th scope="row">(.*?)</th><td class="was">(.*?)</td><td class="now">(.*?)</td>', changes)
    assert [label for label, _, _ in rows] == ["拟申请专业", "培训人数"]
    assert rows[1][1:] == ("50", "80")
    assert rows[0][2].startswith(rows[0][1] + "；510202")


def test_bulk_approval_asks_first_with_the_counts_and_decides_nothing(app: Flask, season: dict[str, Any]) -> None:
    ids = season["ids"]
    a, b = client_of(app, "gd_reviewer"), client_of(app, "gd_reviewer2")
    b.post(f"/review/declarations/{ids[ZHUJIANG]}/claim")
    chosen = [str(ids[LINGNAN]), str(ids[PENGCHENG]), str(ids[ZHUJIANG]), str(ids["draft"]), "999999"]
    asked = a.post("/review/bulk-approve", data={"ids": chosen, "q": "sort=school&evil=1"})
    html = asked.get_data(as_text=True)
    assert asked.status_code == 200 and "确认批量审核通过" in html
    assert '将审核通过 广东省 的 <strong id="approve-count">2</strong> 条申报' in html
    assert '<strong id="sms-count">2</strong> 条“审核通过”短信' in html
    assert "将跳过 3 条" in html and "已由其他审核员领取" in html and "没有等待省级审核" in html
    assert "编号 999999 的申报：不存在或不属于本省" in html
    assert 'name="q" value="sort=school"' in html and 'name="confirmed" value="1"' in html
    with app.app_context():
        assert db.session.get(Declaration, ids[LINGNAN]).status == "待审核"  # nothing decided yet
    done = a.post("/review/bulk-approve", data={"ids": chosen, "q": "sort=school", "confirmed": "1"})
    assert done.headers["Location"] == "/review/?sort=school"
    with app.app_context():
        assert db.session.get(Declaration, ids[LINGNAN]).status == "审核通过"
