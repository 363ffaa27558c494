"""Read the Ministry of Education school lists (.xls, derived .csv, .json) into rows."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from app.masterdata.imports.errors import ImportFileError
from app.masterdata.imports.report import ImportReport
from app.masterdata.imports.tables import (
    Row,
    cell_text,
    extra_cells,
    find_header,
    read_csv,
    read_json_list,
    read_xls,
    read_xlsx,
)

ADULT = "成人"
# Column of the published list -> SchoolRow field; 序号 is not kept.
COLUMNS = {
    "省份": "province",
    "学校名称": "name",
    "学校标识码": "code",
    "主管部门": "department",
    "所在地": "location",
    "办学层次": "level",
    "备注": "remark",
}
JSON_KEYS = {"name": "name", "code": "code", "department": "department", "location": "location",
             "level": "level", "remark": "remark"}
# Group header rows of the xls such as 北京市（92所）
GROUP = re.compile(r"(?P<province>\S+?)\s*[（(]\s*(?P<count>\d+)\s*所\s*[)）]")


@dataclass
class SchoolRow:
    """One school as published; province is None when the file does not say it."""

    line: int
    name: str = ""
    code: str = ""
    department: str = ""
    location: str = ""
    level: str = ""
    remark: str = ""
    province: str | None = None


def read_school_rows(path: Path, report: ImportReport) -> list[SchoolRow]:
    """Return the schools of a list file; rows with the wrong shape are rejected into report."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _from_json(path, report)
    if suffix == ".csv":
        return _from_table(read_csv(path), report)
    if suffix == ".xls":
        return _from_table(read_xls(path), report)
    if suffix == ".xlsx":
        return _from_table(read_xlsx(path), report)
    raise ImportFileError(f"不支持的文件类型：{path.suffix or '（无扩展名）'}（应为 .xls、.xlsx、.csv 或 .json）")


def group_header(cells: list[str]) -> tuple[str, int] | None:
    """Return (province, count) if the row is a group header like 北京市（92所）."""
    match = GROUP.fullmatch(cells[0]) if cells else None
    if match is None or any(cells[1:]):
        return None
    return match["province"], int(match["count"])


def _from_table(rows: list[Row], report: ImportReport) -> list[SchoolRow]:
    start = find_header(rows, ("学校名称", "学校标识码"))
    header = rows[start][1]
    while header and not header[-1]:
        header = header[:-1]
    fields = [COLUMNS.get(name, "") for name in header]
    adult = "level" not in fields
    province: str | None = None
    schools: list[SchoolRow] = []
    for line, cells in rows[start + 1:]:
        group = group_header(cells)
        if group is not None:
            province = group[0]
            continue
        if extra_cells(cells, len(header)):
            report.reject(line, f"列数不对：应为 {len(header)} 列，实际 {len(cells)} 列")
            continue
        school = SchoolRow(line, province=province)
        for field, value in zip(fields, cells):
            if field:
                setattr(school, field, value)
        if adult:
            school.level = ADULT
        schools.append(school)
    return schools


def _from_json(path: Path, report: ImportReport) -> list[SchoolRow]:
    items = read_json_list(path)
    adult = not any(isinstance(item, dict) and "level" in item for _line, item in items)
    schools: list[SchoolRow] = []
    for line, item in items:
        if not isinstance(item, dict):
            report.reject(line, "应为一个学校对象（{ … }）")
            continue
        school = SchoolRow(line)
        for key, field in JSON_KEYS.items():
            setattr(school, field, cell_text(item.get(key)))
        if adult:
            school.level = ADULT
        schools.append(school)
    return schools
