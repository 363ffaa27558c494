"""The provincial review queue: filters, sort, paging, scope, 领取 / 释放, and 批量审核通过."""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from app import clock
from app.accounts.models import User
from app.accounts.services import create_staff
from app.declarations import services as decl_service
from app.declarations.models import Declaration
from app.demo import DEMO_PASSWORD
from app.extensions import db
from app.masterdata.models import Certificate, School
from app.processes.models import HumanTask
from app.review import queue_queries
from app.sms.models import SmsMessage
from tests.conftest import run_jobs
from tests.factories import login, with_demo
from tests.test_concurrency import _race

LINGNAN, ZHUJIANG, PENGCHENG, FOSHAN = "岭南交通职业技术学院", "珠江信息职业学院", "鹏城智能制造职业技术学院", "佛山工贸职业技术学院"
NANYUE, JINLING = "广州南粤职业技术大学", "金陵工程职业技术学院"
WEB, LOGISTICS, BIM = "Web前端", "物流管理", "建筑信息模型"
REVIEWER_B = "广东省教育厅审核员（二）"


def _school_user(session: Any, name: str) -> User:
    school = session.scalars(select(School).where(School.name == name)).one()
    school.education_level, school.ownership, school.info_completed_at = "高职专科", "公办", clock.now()
    user = session.scalars(select(User).where(User.school_id == school.id)).first()
    if user is None:
        user = User(username=school.code, role="school", school_id=school.id, province_code=school.province_code,
                    city_code=school.city_code, display_name=school.name, phone=f"139{school.code[-8:]}")
        user.set_password(DEMO_PASSWORD)
        session.add(user)
        session.flush()
    return user


def declare(app: Flask, school: str, certificate: str, level: str, *, submit: bool = True,
            at: datetime | None = None) -> int:
    """Declare through the real service (and submit at the given time); return the declaration id."""
    if at is not None:
        clock.move(at - clock.now())
    with app.app_context():
        session = db.session()
        user = _school_user(session, school)
        cert_id = session.scalars(select(Certificate.id).where(Certificate.name.contains(certificate))).one()
        decl = decl_service.create_declaration(session, user, {
            "certificate_id": cert_id, "level": level, "majors": ["510201"], "trainee_count": 50,
            "teachers": "专任教师 6 人，均具备相关证书与企业经历。", "facilities": "实训室 2 间，工位 80 个，满足考核要求。"},
            "submit" if submit else "save")
        session.commit()
        return decl.id


def _china(today: datetime, day_offset: int, hour: int, minute: int = 0) -> datetime:
    """A China-time moment some days after today (inside the demo plan's window)."""
    return today.replace(hour=hour, minute=minute, second=0, microsecond=0) + timedelta(days=day_offset)


@pytest.fixture
def season(app: Flask) -> dict[str, Any]:
    """Four waiting Guangdong declarations at known China times, a Guangdong draft, one waiting in Jiangsu."""
    with_demo(app)
    with app.app_context():
        create_staff(db.session(), role="province_reviewer", username="gd_reviewer2", password=DEMO_PASSWORD,
                     province_code="440000", display_name=REVIEWER_B)
        db.session.commit()
    today = clock.local(clock.now())
    assert today is not None
    ids = {
        LINGNAN: declare(app, LINGNAN, WEB, "中级", at=_china(today, 1, 10)),
        ZHUJIANG: declare(app, ZHUJIANG, LOGISTICS, "初级", at=_china(today, 2, 23, 30)),
        PENGCHENG: declare(app, PENGCHENG, WEB, "高级", at=_china(today, 3, 0, 30)),  # the day before, in UTC
        FOSHAN: declare(app, FOSHAN, BIM, "中级", at=_china(today, 5, 12)),
        "draft": declare(app, NANYUE, WEB, "初级", submit=False),
        JINLING: declare(app, JINLING, WEB, "中级"),
    }
    return {"ids": ids, "days": [_china(today, n, 0).strftime("%Y-%m-%d") for n in range(7)]}


def client_of(app: Flask, username: str) -> Any:
    client = app.test_client()
    assert login(client, username).status_code == 302
    return client


def schools_listed(html: str) -> list[str]:
    """The school names in the queue's rows, in order."""
    names = (LINGNAN, ZHUJIANG, PENGCHENG, FOSHAN, NANYUE, JINLING)
    rows = re.findall(r"<tr>\s*<td>.*?</tr>", html, flags=re.S)
    return [next(n for n in names if f"<td>{n}</td>" in row) for row in rows]


def test_queue_lists_the_provinces_waiting_declarations_oldest_first(app, season):
    page = client_of(app, "gd_reviewer").get("/review/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert schools_listed(html) == [LINGNAN, ZHUJIANG, PENGCHENG, FOSHAN]
    assert "等待省级审核的申报（共 4 条）" in html and "第 1 / 1 页，共 4 条" in html
    # A province_admin sees its own province only as well; another province's reviewer never sees these.
    assert schools_listed(client_of(app, "gd_admin").get("/review/").get_data(as_text=True)) == [
        LINGNAN, ZHUJIANG, PENGCHENG, FOSHAN]
    js = client_of(app, "js_reviewer").get("/review/?status=全部").get_data(as_text=True)
    assert schools_listed(js) == [JINLING]


@pytest.mark.parametrize("few", [queue_queries.FEW, 0])  # both query shapes of a filtered page (see review.queue_page)
def test_filters_by_certificate_level_city_and_school_name_and_keeps_them_in_the_form(app, season, monkeypatch, few):
    monkeypatch.setattr(queue_queries, "FEW", few)
    reviewer = client_of(app, "gd_reviewer")
    with app.app_context():
        web_id = db.session.scalars(select(Certificate.id).where(Certificate.name.contains(WEB))).one()
    assert schools_listed(reviewer.get(f"/review/?certificate={web_id}").get_data(as_text=True)) == [LINGNAN, PENGCHENG]
    html = reviewer.get(f"/review/?certificate={web_id}&level=高级").get_data(as_text=True)
    assert schools_listed(html) == [PENGCHENG] and "共 1 条" in html
    assert f'<option value="{web_id}" selected>' in html and '<option value="高级" selected>' in html
    assert schools_listed(reviewer.get("/review/?city=440100").get_data(as_text=True)) == [LINGNAN, ZHUJIANG]
    html = reviewer.get("/review/?school=工贸").get_data(as_text=True)
    assert schools_listed(html) == [FOSHAN] and 'value="工贸"' in html
    assert schools_listed(reviewer.get("/review/?school=%25").get_data(as_text=True)) == []  # no LIKE wildcards
    # The city list offers the province's prefectures only.
    assert "广州市" in html and "南京市" not in html


def test_submission_date_filter_counts_days_in_china_time(app, season):
    reviewer = client_of(app, "gd_reviewer")
    days = season["days"]
    # Submitted at 00:30 China time on day 3, which is still day 2 in UTC.
    assert schools_listed(reviewer.get(f"/review/?from={days[3]}&to={days[3]}").get_data(as_text=True)) == [PENGCHENG]
    assert schools_listed(reviewer.get(f"/review/?from={days[2]}&to={days[2]}").get_data(as_text=True)) == [ZHUJIANG]
    html = reviewer.get(f"/review/?from={days[2]}").get_data(as_text=True)
    assert schools_listed(html) == [ZHUJIANG, PENGCHENG, FOSHAN] and f'value="{days[2]}"' in html
    assert schools_listed(reviewer.get(f"/review/?to={days[1]}").get_data(as_text=True)) == [LINGNAN]


def test_sorts_by_submission_time_either_way_and_by_school_name(app, season):
    reviewer = client_of(app, "gd_reviewer")
    newest = reviewer.get("/review/?sort=submitted_desc").get_data(as_text=True)
    assert schools_listed(newest) == [FOSHAN, PENGCHENG, ZHUJIANG, LINGNAN]
    by_name = schools_listed(reviewer.get("/review/?sort=school").get_data(as_text=True))
    # In pinyin order (fo shan, ling nan, peng cheng, zhu jiang), not in code-point order (鹏 after 珠).
    assert by_name == [FOSHAN, LINGNAN, PENGCHENG, ZHUJIANG] and by_name != sorted(by_name)


def test_school_names_sort_by_pinyin_with_polyphones_read_as_in_place_names():
    from app.masterdata.models import School, name_sort_key

    names = ["重庆城市管理职业学院", "长沙民政职业技术学院", "厦门软件职业技术学院", "广州番禺职业技术学院", "北京电子科技职业学院",
             "ABC 职业学校"]
    assert sorted(names, key=name_sort_key) == ["ABC 职业学校", "北京电子科技职业学院", "长沙民政职业技术学院",
                                                 "重庆城市管理职业学院", "广州番禺职业技术学院", "厦门软件职业技术学院"]
    assert name_sort_key("广州番禺职业技术学院").startswith("guang zhou pan yu ")
    school = School(code="X1", name="重庆城市管理职业学院", province_code="500000")
    assert school.name_sort.startswith("chong qing ")
    school.name = "长沙民政职业技术学院"
    assert school.name_sort.startswith("chang sha ")


def test_pages_of_twenty_with_the_total_and_links_that_keep_the_filters(app, season):
    for school in (LINGNAN, ZHUJIANG, PENGCHENG, FOSHAN):
        for cert in ("老年照护", "汽车运用"):
            for level in ("初级", "中级", "高级"):
                declare(app, school, cert, level)
    reviewer = client_of(app, "gd_reviewer")
    first = reviewer.get("/review/?sort=submitted_desc").get_data(as_text=True)
    assert "等待省级审核的申报（共 28 条）" in first and len(schools_listed(first)) == 20 and "第 1 / 2 页" in first
    assert "/review/?sort=submitted_desc&amp;page=2" in first
    second = reviewer.get("/review/?sort=submitted_desc&page=2").get_data(as_text=True)
    assert len(schools_listed(second)) == 8 and schools_listed(second)[-1] == LINGNAN
    assert len(schools_listed(reviewer.get("/review/?per_page=50").get_data(as_text=True))) == 28
    beyond = reviewer.get("/review/?page=9").get_data(as_text=True)
    assert "第 2 / 2 页" in beyond and len(schools_listed(beyond)) == 8


@pytest.mark.parametrize("query, message", [
    ("from=2026-13-45", "提交日期（起）：请输入正确的日期"),
    ("to=yesterday", "提交日期（止）：请输入正确的日期"),
    ("from=2026-05-02&to=2026-05-01", "提交日期：截止日期不能早于起始日期"),
    ("from=0001-01-01", "提交日期（起）：日期超出范围"),
    ("certificate=abc", "证书：请从列表中选择"),
    ("level=特级", "证书等级：请选择初级、中级或高级"),
    ("city=320100", "城市：请从本省的城市中选择"),
    ("status=草稿", "状态：请从列表中选择"),
    ("per_page=7", "每页条数：请选择 20、50、100 或 200"),
    ("sort=id", "排序：请从列表中选择"),
    ("school=%00", "“院校名称”含有不允许的控制字符"),
])
def test_bad_filter_input_is_answered_in_chinese_and_kept(app, season, query, message):
    page = client_of(app, "gd_reviewer").get(f"/review/?{query}" if "school" in query else f"/review/?{query}&school=岭南")
    html = page.get_data(as_text=True)
    assert page.status_code == 422
    assert message in html and ('value="岭南"' in html or "school" in query)
    assert schools_listed(html) == []


def test_a_nonsense_page_number_shows_the_first_page(app, season):
    page = client_of(app, "gd_reviewer").get("/review/?page=-3")
    assert page.status_code == 200 and len(schools_listed(page.get_data(as_text=True))) == 4


def test_status_lists_show_decided_declarations_but_never_drafts(app, season):
    ids = season["ids"]
    reviewer = client_of(app, "gd_reviewer")
    assert reviewer.post(f"/review/declarations/{ids[LINGNAN]}", data={"decision": "approve"}).status_code == 302
    assert reviewer.post(f"/review/declarations/{ids[ZHUJIANG]}",
                         data={"decision": "reject", "comment": "师资情况不详"}).status_code == 302
    assert schools_listed(reviewer.get("/review/").get_data(as_text=True)) == [PENGCHENG, FOSHAN]
    assert schools_listed(reviewer.get("/review/?status=审核通过").get_data(as_text=True)) == [LINGNAN]
    assert schools_listed(reviewer.get("/review/?status=审核不通过").get_data(as_text=True)) == [ZHUJIANG]
    everything = schools_listed(reviewer.get("/review/?status=全部").get_data(as_text=True))
    assert everything == [LINGNAN, ZHUJIANG, PENGCHENG, FOSHAN] and NANYUE not in everything


def test_a_claim_shows_its_holder_and_only_the_holder_may_decide_or_release(app, season):
    decl_id = season["ids"][LINGNAN]
    a, b = client_of(app, "gd_reviewer"), client_of(app, "gd_reviewer2")
    claimed = a.post(f"/review/declarations/{decl_id}/claim", follow_redirects=True).get_data(as_text=True)
    assert "已领取该申报" in claimed and "广东省教育厅审核员" in claimed and "领取</div>" in claimed
    seen_by_b = b.get(f"/review/declarations/{decl_id}").get_data(as_text=True)
    assert "该申报已由广东省教育厅审核员于" in seen_by_b and "提交审核结论" not in seen_by_b
    refused = b.post(f"/review/declarations/{decl_id}", data={"decision": "approve"})
    assert refused.status_code == 403 and "该申报已由广东省教育厅审核员于" in refused.get_data(as_text=True)
    again = b.post(f"/review/declarations/{decl_id}/claim")
    assert again.status_code == 403 and "广东省教育厅审核员" in again.get_data(as_text=True)
    not_b = b.post(f"/review/declarations/{decl_id}/release")
    assert not_b.status_code == 403 and "只有领取人或省级管理员可以释放" in not_b.get_data(as_text=True)
    assert a.post(f"/review/declarations/{decl_id}",
                  data={"decision": "reject", "comment": "场地情况请补充"}).status_code == 302
    with app.app_context():
        assert db.session.get(Declaration, decl_id).status == "审核不通过"
    late = b.post(f"/review/declarations/{decl_id}/claim")
    assert late.status_code == 403 and "没有等待省级审核" in late.get_data(as_text=True)


def test_deciding_an_unclaimed_declaration_records_the_reviewer_and_a_second_decision_is_refused(app, season):
    decl_id = season["ids"][PENGCHENG]
    b = client_of(app, "gd_reviewer2")
    assert b.post(f"/review/declarations/{decl_id}", data={"decision": "approve"}).status_code == 302
    with app.app_context():
        task = db.session.scalars(select(HumanTask).where(HumanTask.subject_id == decl_id,
                                                          HumanTask.lane == "province_reviewer")).one()
        holder = db.session.scalars(select(User).where(User.username == "gd_reviewer2")).one()
        assert task.completed_by_id == holder.id and task.completed_at is not None
    second = client_of(app, "gd_reviewer").post(f"/review/declarations/{decl_id}",
                                                data={"decision": "reject", "comment": "再审"})
    assert second.status_code == 403 and "没有等待省级审核" in second.get_data(as_text=True)


def test_a_province_admin_can_release_another_reviewers_claim(app, season):
    decl_id = season["ids"][ZHUJIANG]
    a, b, admin = client_of(app, "gd_reviewer"), client_of(app, "gd_reviewer2"), client_of(app, "gd_admin")
    assert a.post(f"/review/declarations/{decl_id}/claim").status_code == 302
    queue = admin.get("/review/").get_data(as_text=True)
    assert f"/review/declarations/{decl_id}/release" in queue
    assert admin.post(f"/review/declarations/{decl_id}/release", data={"q": "sort=school&evil=1"}).headers[
        "Location"].endswith("/review/?sort=school")
    assert b.post(f"/review/declarations/{decl_id}/claim").status_code == 302
    assert "广东省教育厅审核员（二）" in a.get(f"/review/declarations/{decl_id}").get_data(as_text=True)


def test_another_provinces_reviewer_can_neither_claim_nor_release(app, season):
    decl_id = season["ids"][LINGNAN]
    js = client_of(app, "js_reviewer")
    assert js.post(f"/review/declarations/{decl_id}/claim").status_code == 404
    assert js.post(f"/review/declarations/{decl_id}/release").status_code == 404
    outcome = js.post("/review/bulk-approve", data={"ids": [str(decl_id)], "confirmed": "1"}, follow_redirects=True)
    assert "不存在或不属于本省" in outcome.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Declaration, decl_id).status == "待审核"


def test_two_reviewers_claiming_at_once_one_wins_and_the_other_is_told_who(app, season):
    decl_id = season["ids"][FOSHAN]
    a, b = client_of(app, "gd_reviewer"), client_of(app, "gd_reviewer2")
    url = f"/review/declarations/{decl_id}/claim"
    results = _race(app, [lambda: a.post(url), lambda: b.post(url)])
    assert sorted(r.status_code for r in results) == [302, 403], [r.status_code for r in results]
    winner = "gd_reviewer" if results[0].status_code == 302 else "gd_reviewer2"
    refused = next(r for r in results if r.status_code == 403).get_data(as_text=True)
    with app.app_context():
        holder = db.session.scalars(select(User).where(User.username == winner)).one()
        task = db.session.scalars(select(HumanTask).where(HumanTask.subject_id == decl_id,
                                                          HumanTask.completed_at.is_(None))).one()
        assert task.claimed_by_id == holder.id and task.claimed_at is not None
        assert f"该申报已由{holder.display_name}于" in refused


def test_a_claim_racing_a_decision_either_comes_first_and_blocks_it_or_finds_it_decided(app, season):
    decl_id = season["ids"][FOSHAN]
    a, b = client_of(app, "gd_reviewer"), client_of(app, "gd_reviewer2")
    url = f"/review/declarations/{decl_id}"
    claim, decision = _race(app, [lambda: b.post(url + "/claim"),
                                  lambda: a.post(url, data={"decision": "approve"})])
    # Exactly one wins: the claim (the decision is then refused, naming the holder) or the decision (the claim
    # then finds nothing waiting).
    assert sorted((claim.status_code, decision.status_code)) == [302, 403], (claim.status_code, decision.status_code)
    with app.app_context():
        task = db.session.scalars(select(HumanTask).where(HumanTask.subject_id == decl_id,
                                                          HumanTask.lane == "province_reviewer")).one()
        status = db.session.get(Declaration, decl_id).status
        b_id = db.session.scalars(select(User.id).where(User.username == "gd_reviewer2")).one()
        if claim.status_code == 302:
            assert task.completed_at is None and task.claimed_by_id == b_id and status == "待审核"
            assert "该申报已由" in decision.get_data(as_text=True)
        else:
            assert task.completed_at is not None and task.claimed_by_id is None and status == "审核通过"
            assert "没有等待省级审核" in claim.get_data(as_text=True)


def test_bulk_approval_decides_each_through_its_process_and_names_the_skipped(app, season):
    ids = season["ids"]
    a, b = client_of(app, "gd_reviewer"), client_of(app, "gd_reviewer2")
    assert a.post(f"/review/declarations/{ids[ZHUJIANG]}/claim").status_code == 302
    assert a.post(f"/review/declarations/{ids[FOSHAN]}",
                  data={"decision": "reject", "comment": "材料不全"}).status_code == 302
    chosen = [ids[LINGNAN], ids[ZHUJIANG], ids[PENGCHENG], ids[FOSHAN]]
    done = b.post("/review/bulk-approve", data={"ids": [str(i) for i in chosen], "q": "sort=school", "confirmed": "1"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/review/?sort=school")
    html = b.get("/review/").get_data(as_text=True)
    assert "已批量审核通过 2 条申报" in html and "以下 2 条申报未审核通过" in html
    assert f"{ZHUJIANG}（物流管理职业技能等级证书·初级）：该申报已由广东省教育厅审核员于" in html
    assert f"{FOSHAN}（建筑信息模型（BIM）职业技能等级证书·中级）：该申报当前状态为“审核不通过”" in html
    run_jobs(app)
    with app.app_context():
        status = {name: db.session.get(Declaration, ids[name]).status for name in (LINGNAN, ZHUJIANG, PENGCHENG, FOSHAN)}
        assert status == {LINGNAN: "审核通过", ZHUJIANG: "待审核", PENGCHENG: "审核通过", FOSHAN: "审核不通过"}
        approved_sms = db.session.scalars(select(SmsMessage).where(SmsMessage.body.contains("审核通过"),
                                                                   SmsMessage.body.not_like("%不通过%"))).all()
        assert len(approved_sms) == 2 and {m.status for m in approved_sms} == {"sent"}
    assert schools_listed(b.get("/review/").get_data(as_text=True)) == [ZHUJIANG]


def test_bulk_approval_refuses_more_than_a_hundred_and_an_empty_choice(app, season):
    reviewer = client_of(app, "gd_reviewer")
    many = [str(season["ids"][LINGNAN])] + [str(n) for n in range(100_000, 100_100)]
    html = reviewer.post("/review/bulk-approve", data={"ids": many, "confirmed": "1"}, follow_redirects=True).get_data(as_text=True)
    assert "一次最多批量审核通过 100 条申报，当前勾选了 101 条" in html
    empty = reviewer.post("/review/bulk-approve", data={}, follow_redirects=True).get_data(as_text=True)
    assert "请先勾选要审核通过的申报" in empty
    with app.app_context():
        assert db.session.get(Declaration, season["ids"][LINGNAN]).status == "待审核"


def test_review_page_shows_school_declaration_and_history(app, season):
    decl_id = season["ids"][LINGNAN]
    html = client_of(app, "gd_reviewer").get(f"/review/declarations/{decl_id}").get_data(as_text=True)
    assert f"审核：{LINGNAN}" in html and "院校基础信息" in html and "广州市" in html
    assert "Web前端开发职业技能等级证书" in html and "办理记录" in html and "提交审核" in html
    assert "尚未领取" in html and "提交审核结论" in html



def test_the_migration_fills_the_pinyin_key_of_schools_stored_before_it(tmp_path):
    from sqlalchemy import create_engine, text

    from app.migrate import upgrade
    from tests.conftest import _new_database

    url, drop = _new_database(tmp_path)
    try:
        upgrade(url, "0004")
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO division (code, name, level, province_code) "
                              "VALUES ('500000', '重庆市', 'province', '500000')"))
            conn.execute(text("INSERT INTO school (code, name, province_code, updated_at) "
                              "VALUES ('4150000001', '重庆城市管理职业学院', '500000', :now)"), {"now": datetime(2026, 1, 5)})
        upgrade(url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT name_sort FROM school")).scalar() == "chong qing cheng shi guan li zhi ye xue yuan"
        engine.dispose()
    finally:
        drop()
