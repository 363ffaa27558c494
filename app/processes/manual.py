"""流程分析员手册: what a diagram may use, read from the running app so that it cannot fall behind it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, render_template
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.roles import all_roles
from app.engine import expressions
from app.engine.vocabulary import MEANINGS, NATIONAL_DEFAULTS, REQUIRED_MEANINGS
from app.extensions import db
from app.handlers.registry import HANDLERS
from app.processes import publish_gate
from app.processes.views import ANALYST_ROLES, PROCESS_NAMES, analyst_required
from app.sms.models import NATIONAL, SmsTemplate

bp = Blueprint("manual", __name__, url_prefix="/processes")
NAV_ITEMS = [(62, ANALYST_ROLES, "分析员手册", "manual.show")]

# What each expression function does, in the analyst's words; a function the interpreter allows without an
# entry here fails tests/test_analyst_manual.py.
FUNCTION_HELP: dict[str, tuple[str, str]] = {
    "len": ("len(x)", "长度：文字的字数、列表的项数"),
    "str": ("str(x)", "转为文字"),
    "int": ("int(x)", "转为整数（如 int('12')）"),
    "float": ("float(x)", "转为小数"),
    "bool": ("bool(x)", "转为真/假"),
    "abs": ("abs(x)", "绝对值"),
    "min": ("min(a, b, …)", "最小值"),
    "max": ("max(a, b, …)", "最大值"),
    "round": ("round(x, n)", "四舍五入到 n 位小数（n 不超过 40）"),
    "sum": ("sum(列表)", "数字列表求和"),
    "any": ("any(列表)", "列表中有任一为真"),
    "all": ("all(列表)", "列表中全部为真"),
    "sorted": ("sorted(列表)", "排序后的新列表"),
    "now": ("now()", "当前时间（北京时间）"),
    "today": ("today()", "今天的日期（北京时间），如 '2026-12-01'"),
    "add_seconds": ("add_seconds(时间, 秒)", "时间加上若干秒，得到 ISO 时间文字（可用于定时器）"),
    "add_days": ("add_days(时间, 天)", "时间加上若干天（负数为之前），如 add_days(ends_at, -2) 为截止前两天"),
    "as_datetime": ("as_datetime(文字)", "把 ISO 时间文字转为时间，便于比较"),
    "is_before": ("is_before(a, b)", "时间 a 是否早于时间 b"),
}

SCOPE_HELP: dict[str, str] = {
    "national": "全国：不限省份",
    "province": "省级：只办理本省的任务、查看本省的数据",
    "city": "市级：只办理本市院校的任务",
    "school": "院校：只办理本校的任务",
    "certificates": "按证书：只办理所选证书的申报（全国，或限成员所属的一省）；属于培训评价组织时限于该组织持有的证书",
}


@dataclass(frozen=True)
class Operation:
    name: str
    description: str
    required: tuple[str, ...]
    optional: tuple[str, ...]


def manual_context(session: Session) -> dict[str, Any]:
    """Everything the manual lists, from the registries the publish gate itself checks against."""
    operations = [Operation(name, h.description, h.required, h.optional) for name, h in sorted(HANDLERS.items())]
    vocabularies = {key: list(vocabulary) for key, vocabulary in NATIONAL_DEFAULTS.items()}
    return {
        "roles": all_roles(session),
        "scope_help": SCOPE_HELP,
        "meanings": MEANINGS,
        "required_meanings": REQUIRED_MEANINGS,
        "vocabularies": vocabularies,
        "operations": operations,
        "templates": session.scalars(select(SmsTemplate).where(SmsTemplate.scope == NATIONAL)
                                     .order_by(SmsTemplate.name)).all(),
        "functions": [(name, *FUNCTION_HELP.get(name, (name + "(…)", ""))) for name in expressions.FUNCTIONS],
        "limits": {"source": expressions.MAX_SOURCE, "sequence": expressions.MAX_SEQUENCE,
                   "seconds": expressions.MAX_SECONDS},
        "process_data": publish_gate.PROCESS_DATA,
        "process_names": PROCESS_NAMES,
    }


@bp.route("/manual")
@analyst_required
def show() -> str:
    return render_template("processes/manual.html", **manual_context(db.session()))
