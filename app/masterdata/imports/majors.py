"""Import the vocational education major catalog (.xlsx sheet 全部专业 or .csv)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.masterdata.imports.errors import ImportFileError
from app.masterdata.imports.report import ImportReport
from app.masterdata.imports.tables import (
    Row,
    extra_cells,
    find_header,
    read_csv,
    read_xlsx,
)
from app.masterdata.imports.upsert import Upserter
from app.masterdata.models import MAJOR_LEVELS, Major

SHEET = "全部专业"
COLUMNS = {
    "专业代码": "code",
    "专业名称": "name",
    "层次": "level",
    "专业大类": "category",
    "专业类": "subcategory",
    "备注": "remark",
}
REQUIRED = ("专业代码", "专业名称", "层次")
MAJOR_CODE = re.compile(r"\d{6}")
LABELS = {"code": "专业代码", "name": "专业名称", "category": "专业大类", "subcategory": "专业类", "remark": "备注"}


def import_majors(session: Session, path: Path) -> ImportReport:
    """Upsert the majors of a catalog file, keyed by 专业代码."""
    report = ImportReport()
    upserter = Upserter(session, Major, "code", report, LABELS)
    rows = _read(path)
    start = find_header(rows, REQUIRED)
    header = rows[start][1]
    fields = [COLUMNS.get(name, "") for name in header]
    for line, cells in rows[start + 1:]:
        if extra_cells(cells, len(header)):
            report.reject(line, f"列数不对：应为 {len(header)} 列，实际 {len(cells)} 列")
            continue
        data = {field: value for field, value in zip(fields, cells) if field}
        values = _values(line, data, report)
        if values is not None:
            upserter.apply(line, values)
    session.flush()
    return report.in_line_order()


def _read(path: Path) -> list[Row]:
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return read_xlsx(path, SHEET)
    if suffix == ".csv":
        return read_csv(path)
    raise ImportFileError(f"不支持的文件类型：{path.suffix or '（无扩展名）'}（应为 .xlsx 或 .csv）")


def _values(line: int, data: dict[str, str], report: ImportReport) -> dict[str, Any] | None:
    """Check one row and return the Major values, or reject it and return None."""
    if not MAJOR_CODE.fullmatch(data["code"]):
        report.reject(line, f"专业代码“{data['code']}”应为 6 位数字")
        return None
    if not data["name"]:
        report.reject(line, "专业名称为空")
        return None
    if data["level"] not in MAJOR_LEVELS:
        report.reject(line, f"层次“{data['level']}”应为{'、'.join(MAJOR_LEVELS)}之一")
        return None
    return {
        "code": data["code"],
        "name": data["name"],
        "level": data["level"],
        "category": data.get("category") or None,
        "subcategory": data.get("subcategory") or None,
        "remark": data.get("remark") or None,
    }
