"""The built-in demo data set: a few provinces with plans open now, schools, certificates, majors, staff."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import ROLE_SCHOOL, User
from app.accounts.services import create_staff
from app.engine import engine
from app.masterdata.models import (
    BINGTUAN_CODE,
    BINGTUAN_NAME,
    Certificate,
    Division,
    Major,
    School,
)
from app.plans.models import PLAN_PUBLISHED, DeclarationPlan, PlanCertificate
from app.plans.services import plan_data

DEMO_PASSWORD = "demo2026pilot"

PROVINCES = [
    ("110000", "北京市"), ("120000", "天津市"), ("130000", "河北省"), ("140000", "山西省"), ("150000", "内蒙古自治区"),
    ("210000", "辽宁省"), ("220000", "吉林省"), ("230000", "黑龙江省"), ("310000", "上海市"), ("320000", "江苏省"),
    ("330000", "浙江省"), ("340000", "安徽省"), ("350000", "福建省"), ("360000", "江西省"), ("370000", "山东省"),
    ("410000", "河南省"), ("420000", "湖北省"), ("430000", "湖南省"), ("440000", "广东省"), ("450000", "广西壮族自治区"),
    ("460000", "海南省"), ("500000", "重庆市"), ("510000", "四川省"), ("520000", "贵州省"), ("530000", "云南省"),
    ("540000", "西藏自治区"), ("610000", "陕西省"), ("620000", "甘肃省"), ("630000", "青海省"),
    ("640000", "宁夏回族自治区"), ("650000", "新疆维吾尔自治区"), ("710000", "台湾省"), ("810000", "香港特别行政区"),
    ("820000", "澳门特别行政区"), (BINGTUAN_CODE, BINGTUAN_NAME),
]
CITIES = {
    "440000": [("440100", "广州市"), ("440300", "深圳市"), ("440600", "佛山市")],
    "320000": [("320100", "南京市"), ("320500", "苏州市"), ("320200", "无锡市")],
    "510000": [("510100", "成都市"), ("510700", "绵阳市")],
}
OFFICERS = {"440000": ("李老师", "020-83000000"), "320000": ("王老师", "025-83000000"), "510000": ("张老师", "028-86000000")}
# (code, name, province, city, list level)
SCHOOLS = [
    ("9144010001", "岭南交通职业技术学院", "440000", "440100", "专科"),
    ("9144010002", "珠江信息职业学院", "440000", "440100", "专科"),
    ("9144030003", "鹏城智能制造职业技术学院", "440000", "440300", "专科"),
    ("9144060004", "佛山工贸职业技术学院", "440000", "440600", "专科"),
    ("9144010005", "广州南粤职业技术大学", "440000", "440100", "本科"),
    ("9132010006", "金陵工程职业技术学院", "320000", "320100", "专科"),
    ("9132050007", "姑苏智能制造职业学院", "320000", "320500", "专科"),
    ("9132020008", "太湖商贸职业技术学院", "320000", "320200", "专科"),
    ("9132010009", "钟山医药职业学院", "320000", "320100", "专科"),
    ("9151010010", "天府数字职业技术学院", "510000", "510100", "专科"),
    ("9151070011", "涪江科技职业学院", "510000", "510700", "专科"),
    ("9151010012", "锦江建筑职业技术学院", "510000", "510100", "专科"),
]
CERTIFICATES = [
    ("Web前端开发职业技能等级证书", "工业和信息化部教育与考试中心", 1),
    ("建筑信息模型（BIM）职业技能等级证书", "廊坊市中科建筑产业化创新研究中心", 1),
    ("物流管理职业技能等级证书", "北京中物联物流采购培训中心", 1),
    ("老年照护职业技能等级证书", "北京中福长者文化科技有限公司", 1),
    ("汽车运用与维修（含智能新能源汽车）职业技能等级证书", "北京中车行高新技术有限公司", 1),
    ("工业机器人应用编程职业技能等级证书", "北京赛育达科教有限责任公司", 2),
    ("智能财税职业技能等级证书", "中联集团教育科技有限公司", 2),
]
MAJORS = [
    ("510201", "计算机应用技术", "高职专科", "电子与信息大类"), ("510202", "计算机网络技术", "高职专科", "电子与信息大类"),
    ("510203", "软件技术", "高职专科", "电子与信息大类"), ("510205", "大数据技术", "高职专科", "电子与信息大类"),
    ("440301", "建筑工程技术", "高职专科", "土木建筑大类"), ("440501", "工程造价", "高职专科", "土木建筑大类"),
    ("530802", "现代物流管理", "高职专科", "财经商贸大类"), ("530302", "大数据与会计", "高职专科", "财经商贸大类"),
    ("460305", "工业机器人技术", "高职专科", "装备制造大类"), ("500211", "汽车检测与维修技术", "高职专科", "交通运输大类"),
    ("520802", "智慧健康养老服务与管理", "高职专科", "医药卫生大类"),
    ("310201", "计算机应用工程", "职教本科", "电子与信息大类"), ("310203", "软件工程技术", "职教本科", "电子与信息大类"),
    ("340301", "建筑工程", "职教本科", "土木建筑大类"), ("330802", "现代物流管理", "职教本科", "财经商贸大类"),
    ("710201", "计算机应用", "中职", "信息技术类"), ("700206", "汽车运用与维修", "中职", "交通运输类"),
]
STAFF = [
    ("province_reviewer", "gd_reviewer", "440000", "广东省教育厅审核员"),
    ("province_admin", "gd_admin", "440000", "广东省教育厅1+X负责人"),
    ("province_reviewer", "js_reviewer", "320000", "江苏省教育厅审核员"),
    ("province_admin", "js_admin", "320000", "江苏省教育厅1+X负责人"),
    ("province_reviewer", "sc_reviewer", "510000", "四川省教育厅审核员"),
    ("province_admin", "sc_admin", "510000", "四川省教育厅1+X负责人"),
    ("analyst", "analyst", None, "流程分析员"),
    ("ministry_admin", "ministry", None, "部级管理员"),
]
# A school of an earlier batch whose weekly-report account was upgraded (flow 二).
LEGACY_SCHOOL = ("9144010002", "zjxx_weekly", "13800138002")
PLANS = {"440000": "2026年广东省1+X证书试点申报（第一批）", "320000": "2026年江苏省1+X证书试点申报（第一批）"}


def load_demo(session: Session) -> list[str]:
    """Create whatever of the demo data set is missing; return the demo accounts as printable lines."""
    _divisions(session)
    _schools(session)
    certs = _catalog(session)
    _plans(session, certs)
    lines = []
    for role, username, province, name in STAFF:
        if session.scalars(select(User).where(User.username == username)).first() is None:
            create_staff(session, role=role, username=username, password=DEMO_PASSWORD, province_code=province,
                         display_name=name)
        lines.append(f"{name}：账号 {username} 密码 {DEMO_PASSWORD}")
    code, username, phone = LEGACY_SCHOOL
    school = session.scalars(select(School).where(School.code == code)).one()
    if session.scalars(select(User).where(User.username == username)).first() is None:
        user = User(username=username, role=ROLE_SCHOOL, school_id=school.id, phone=phone,
                    province_code=school.province_code, city_code=school.city_code, display_name=school.name,
                    origin="legacy")
        user.set_password(DEMO_PASSWORD)
        session.add(user)
    lines.append(f"往年试点院校（{school.name}）：账号 {username} 密码 {DEMO_PASSWORD}")
    lines.append("新院校注册：在首页选“院校”→“立即注册”，选择广东省/江苏省/四川省的演示院校（如“岭南交通职业技术学院”）")
    session.flush()
    return lines


def _divisions(session: Session) -> None:
    existing = set(session.scalars(select(Division.code)))
    for code, name in PROVINCES:
        if code not in existing:
            officer = OFFICERS.get(code, (None, None))
            session.add(Division(code=code, name=name, level="province", province_code=code, parent_code=None,
                                 officer_name=officer[0], officer_phone=officer[1]))
    for province, cities in CITIES.items():
        for code, name in cities:
            if code not in existing:
                session.add(Division(code=code, name=name, level="prefecture", province_code=province,
                                     parent_code=province))
    session.flush()


def _schools(session: Session) -> None:
    existing = set(session.scalars(select(School.code)))
    for code, name, province, city, level in SCHOOLS:
        if code not in existing:
            session.add(School(code=code, name=name, province_code=province, city_code=city, list_level=level,
                               department=f"{dict(PROVINCES)[province]}教育厅", location=dict(CITIES[province])[city]))
    session.flush()


def _catalog(session: Session) -> list[Certificate]:
    existing = {c.name: c for c in session.scalars(select(Certificate))}
    for name, org, batch in CERTIFICATES:
        if name not in existing:
            cert = Certificate(name=name, organization=org, batch=batch)
            session.add(cert)
            existing[name] = cert
    majors = set(session.scalars(select(Major.code)))
    for code, name, level, category in MAJORS:
        if code not in majors:
            session.add(Major(code=code, name=name, level=level, category=category))
    session.flush()
    return [existing[name] for name, _, _ in CERTIFICATES]


def _plans(session: Session, certs: list[Certificate]) -> None:
    now = clock.now()
    for province, name in PLANS.items():
        if session.scalars(select(DeclarationPlan).where(DeclarationPlan.name == name)).first() is not None:
            continue
        contact = OFFICERS[province]
        plan = DeclarationPlan(province_code=province, name=name, starts_at=now - timedelta(days=1),
                               ends_at=now + timedelta(days=30), review_deadline=now + timedelta(days=45),
                               contact_name=contact[0], contact_phone=contact[1], status=PLAN_PUBLISHED,
                               published_at=now, notes="请按本省要求在申报截止前提交，逾期不能申报。")
        plan.certificates = [PlanCertificate(certificate_id=c.id) for c in certs]
        session.add(plan)
        session.flush()
        plan.instance_id = engine().start(session, "plan", subject_type="plan", subject_id=plan.id,
                                          province_code=province, data=plan_data(session, plan)).instance_id
    session.flush()
