"""Import 1+X certificates and their training evaluation organisations from csv."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.masterdata.imports.errors import ImportFileError
from app.masterdata.imports.report import ImportReport
from app.masterdata.imports.tables import extra_cells, read_csv
from app.masterdata.imports.upsert import Upserter
from app.masterdata.models import Certificate

# Header names (as in the shared csv, or Chinese) -> field; other columns such as seq are ignored.
COLUMNS = {
    "certificate_name": "name",
    "证书名称": "name",
    "training_evaluation_org": "organization",
    "培训评价组织": "organization",
    "batch": "batch",
    "批次": "batch",
}
LABELS = {"name": "证书名称", "organization": "培训评价组织"}


def import_certificates(session: Session, path: Path) -> ImportReport:
    """Upsert the certificates of a csv file, keyed by certificate name."""
    if path.suffix.lower() != ".csv":
        raise ImportFileError(f"不支持的文件类型：{path.suffix or '（无扩展名）'}（应为 .csv）")
    report = ImportReport()
    rows = read_csv(path)
    if not rows:
        raise ImportFileError("文件为空")
    header = rows[0][1]
    fields = [COLUMNS.get(name.lower(), "") for name in header]
    if "name" not in fields or "organization" not in fields:
        raise ImportFileError("找不到表头，缺少列：certificate_name、training_evaluation_org")
    upserter = Upserter(session, Certificate, "name", report, LABELS)
    for line, cells in rows[1:]:
        if extra_cells(cells, len(header)):
            report.reject(line, f"列数不对：应为 {len(header)} 列，实际 {len(cells)} 列")
            continue
        data = {field: value for field, value in zip(fields, cells) if field}
        values = _values(line, data, report)
        if values is not None:
            upserter.apply(line, values)
    session.flush()
    return report.in_line_order()


def _values(line: int, data: dict[str, str], report: ImportReport) -> dict[str, Any] | None:
    """Check one row and return the Certificate values, or reject it and return None."""
    if not data["name"]:
        report.reject(line, "证书名称为空")
        return None
    if not data["organization"]:
        report.reject(line, "培训评价组织为空")
        return None
    values: dict[str, Any] = {"name": data["name"], "organization": data["organization"]}
    if "batch" in data:
        # Without a batch column an earlier batch stays as it was.
        if data["batch"] and not data["batch"].isdigit():
            report.reject(line, f"批次“{data['batch']}”应为整数")
            return None
        values["batch"] = int(data["batch"]) if data["batch"] else None
    return values
