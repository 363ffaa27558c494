"""Import GB/T 2260 administrative divisions (derived csv or the 民政部 text list)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from app.masterdata.imports.errors import ImportFileError
from app.masterdata.imports.report import ImportReport
from app.masterdata.imports.tables import (
    Row,
    extra_cells,
    read_csv,
    read_lines,
)
from app.masterdata.imports.upsert import Upserter
from app.masterdata.models import (
    BINGTUAN_CODE,
    BINGTUAN_NAME,
    LEVEL_COUNTY,
    LEVEL_PREFECTURE,
    LEVEL_PROVINCE,
    Division,
)

LEVELS = (LEVEL_PROVINCE, LEVEL_PREFECTURE, LEVEL_COUNTY)
LABELS = {"code": "区划代码", "name": "名称"}
CODE = re.compile(r"\d{6}")
# csv header names (English as in divisions_2024.csv, or Chinese) -> field
COLUMNS = {
    "code": "code",
    "代码": "code",
    "name": "name",
    "名称": "name",
    "level": "level",
    "province_code": "province_code",
    "province_name": "province_name",
    "parent_code": "parent_code",
}


@dataclass
class DivisionRow:
    """One division as read from the file; empty fields are derived from the code."""

    line: int
    code: str
    name: str
    level: str = ""
    province_code: str = ""
    province_name: str = ""
    parent_code: str = ""


def import_divisions(session: Session, path: Path) -> ImportReport:
    """Upsert the divisions of a csv or text file and make sure 新疆生产建设兵团 exists."""
    report = ImportReport()
    rows = _read(path, report)
    upserter = Upserter(session, Division, "code", report, LABELS)
    known = {code: row.name for code, row in upserter.existing.items()}
    known.update({row.code: row.name for row in rows if CODE.fullmatch(row.code) and row.name})
    for row in rows:
        values = _values(row, known, report)
        if values is not None:
            upserter.apply(row.line, values)
    _ensure_bingtuan(upserter)
    session.flush()
    return report.in_line_order()


def derive_level(code: str) -> str:
    """Return the level a code stands for: XX0000 province, XXYY00 prefecture, else county."""
    if code.endswith("0000"):
        return LEVEL_PROVINCE
    if code.endswith("00"):
        return LEVEL_PREFECTURE
    return LEVEL_COUNTY


def _read(path: Path, report: ImportReport) -> list[DivisionRow]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _from_csv(read_csv(path), report)
    if suffix == ".txt":
        return _from_lines(read_lines(path), report)
    raise ImportFileError(f"不支持的文件类型：{path.suffix or '（无扩展名）'}（应为 .csv 或 .txt）")


def _from_lines(lines: list[Row], report: ImportReport) -> list[DivisionRow]:
    rows: list[DivisionRow] = []
    for line, cells in lines:
        if len(cells) != 2:
            report.reject(line, f"应为“代码 名称”两项，实际 {len(cells)} 项")
            continue
        rows.append(DivisionRow(line, cells[0], cells[1]))
    return rows


def _from_csv(records: list[Row], report: ImportReport) -> list[DivisionRow]:
    if not records:
        raise ImportFileError("文件为空")
    header = records[0][1]
    fields = [COLUMNS.get(name.lower(), "") for name in header]
    if "code" not in fields or "name" not in fields:
        raise ImportFileError("找不到表头，缺少列：code、name")
    rows: list[DivisionRow] = []
    for line, cells in records[1:]:
        if extra_cells(cells, len(header)):
            report.reject(line, f"列数不对：应为 {len(header)} 列，实际 {len(cells)} 列")
            continue
        data = {field: value for field, value in zip(fields, cells) if field}
        rows.append(DivisionRow(line, **data))
    return rows


def _values(row: DivisionRow, known: dict[str, str], report: ImportReport) -> dict[str, str | None] | None:
    """Check one row and complete it from its code; reject it (and return None) if wrong."""
    if not CODE.fullmatch(row.code) or row.code == "000000":
        report.reject(row.line, f"区划代码“{row.code}”应为 6 位数字")
        return None
    if not row.name:
        report.reject(row.line, "名称为空")
        return None
    level = row.level or derive_level(row.code)
    if level not in LEVELS:
        report.reject(row.line, f"级别“{level}”应为 province、prefecture 或 county")
        return None
    province = row.province_code or row.code[:2] + "0000"
    if province not in known:
        report.reject(row.line, f"所属省级区划 {province} 不存在")
        return None
    if row.province_name and row.province_name != known[province]:
        report.reject(row.line, f"省份名称“{row.province_name}”与代码 {province}（{known[province]}）不符")
        return None
    parent = row.parent_code or _derive_parent(row.code, level, province, known)
    if parent and parent not in known:
        report.reject(row.line, f"上级区划 {parent} 不存在")
        return None
    return {
        "code": row.code,
        "name": row.name,
        "level": level,
        "province_code": province,
        "parent_code": parent or None,
    }


def _derive_parent(code: str, level: str, province: str, known: dict[str, str]) -> str | None:
    if level == LEVEL_PROVINCE:
        return None
    if level == LEVEL_COUNTY and code[:4] + "00" in known:
        return code[:4] + "00"
    # 直辖市 districts and 省直辖县级行政区划 hang directly under the province.
    return province


def _ensure_bingtuan(upserter: Upserter[Division]) -> None:
    if BINGTUAN_CODE in upserter.seen:
        return
    if BINGTUAN_CODE in upserter.existing:
        upserter.report.unchanged += 1
        return
    upserter.apply(
        0,
        {
            "code": BINGTUAN_CODE,
            "name": BINGTUAN_NAME,
            "level": LEVEL_PROVINCE,
            "province_code": BINGTUAN_CODE,
            "parent_code": None,
        },
    )
