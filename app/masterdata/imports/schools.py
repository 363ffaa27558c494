"""Import the Ministry of Education list of higher-education schools."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.masterdata.imports.errors import UnknownProvinceError
from app.masterdata.imports.report import ImportReport
from app.masterdata.imports.school_places import Places
from app.masterdata.imports.school_rows import ADULT, SchoolRow, read_school_rows
from app.masterdata.imports.upsert import Upserter
from app.masterdata.models import BINGTUAN_CODE, BINGTUAN_NAME, School

LIST_LEVELS = ("本科", "专科", ADULT)
SCHOOL_CODE = re.compile(r"\d{10}")
LABELS = {
    "code": "学校标识码",
    "name": "学校名称",
    "location": "所在地",
    "department": "主管部门",
    "list_level": "办学层次",
    "remark": "备注",
}
IMPORT_DIVISIONS_FIRST = "尚未导入行政区划，请先运行 flask --app app data import-divisions"


def import_schools(session: Session, path: Path, *, province: str | None = None) -> ImportReport:
    """Upsert the schools of a list file (.xls, .xlsx, .csv or .json), optionally one province only."""
    report = ImportReport()
    rows = read_school_rows(path, report)
    places = Places(session)
    only = _wanted_province(places, province)
    upserter = Upserter(session, School, "code", report, LABELS)
    for row in rows:
        province_code = _province_of(row, upserter.existing, places)
        if only is not None and province_code != only:
            report.skipped += 1
            continue
        values = _values(row, province_code, places, report)
        if values is not None:
            upserter.apply(row.line, values)
    session.flush()
    return report.in_line_order()


def _wanted_province(places: Places, province: str | None) -> str | None:
    if province is None:
        return None
    if not places.provinces:
        raise UnknownProvinceError(IMPORT_DIVISIONS_FIRST)
    code = places.province_code(province.strip())
    if code is None:
        raise UnknownProvinceError(f"未知省份“{province}”（应为省级行政区划的全称，如 北京市）")
    return code


def _province_of(row: SchoolRow, existing: dict[str, School], places: Places) -> str | None:
    """Return the province of a row: 兵团 by department, else as listed, else as known, else by code."""
    if row.department.startswith(BINGTUAN_NAME):
        return places.province_code(BINGTUAN_CODE)
    if row.province is not None:
        return places.province_code(row.province)
    # The json lists carry no province: keep what an earlier xls/csv import said.
    school = existing.get(row.code)
    if school is not None:
        return school.province_code
    return places.province_from_school_code(row.code)


def _values(row: SchoolRow, province_code: str | None, places: Places, report: ImportReport) -> dict[str, Any] | None:
    """Check one row and return the School values, or reject it and return None."""
    if not SCHOOL_CODE.fullmatch(row.code):
        report.reject(row.line, f"学校标识码“{row.code}”应为 10 位数字")
        return None
    if not row.name:
        report.reject(row.line, "学校名称为空")
        return None
    if province_code is None:
        report.reject(row.line, _province_problem(row, places))
        return None
    if row.level not in LIST_LEVELS:
        report.reject(row.line, f"办学层次“{row.level}”应为本科或专科")
        return None
    return {
        "code": row.code,
        "name": row.name,
        "province_code": province_code,
        "city_code": places.city_code(province_code, row.location),
        "location": row.location or None,
        "department": row.department or None,
        "list_level": row.level,
        "remark": row.remark or None,
    }


def _province_problem(row: SchoolRow, places: Places) -> str:
    if not places.provinces:
        return IMPORT_DIVISIONS_FIRST
    if row.department.startswith(BINGTUAN_NAME):
        return f"未找到{BINGTUAN_NAME}（{BINGTUAN_CODE}），请重新导入行政区划"
    if row.province is not None:
        return f"未知省份“{row.province}”" if row.province else "未找到所属省份（缺少“××省（N所）”标题行或省份为空）"
    return f"无法从学校标识码“{row.code}”推出省份"
