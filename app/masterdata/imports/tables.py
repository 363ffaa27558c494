"""Read csv, xls, xlsx, text and json files into numbered rows of stripped strings."""
from __future__ import annotations

import csv
import io
import json
import struct
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from app.masterdata.imports.errors import ImportFileError

# A row of a file: its 1-based line number (the sheet row for Excel) and its cells.
Row = tuple[int, list[str]]


def cell_text(value: Any) -> str:
    """Return a cell as a stripped string; Excel numbers like 4111010001.0 lose the '.0'."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def read_text(path: Path) -> str:
    """Return the decoded text of a file (UTF-8 with or without BOM, else GB18030)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImportFileError(f"找不到文件：{path}") from None
    except OSError as exc:
        raise ImportFileError(f"无法读取文件：{path}（{exc.strerror}）") from None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFileError(f"无法识别文件编码（应为 UTF-8 或 GBK）：{path}")


def read_csv(path: Path) -> list[Row]:
    """Return the non-blank records of a csv file with the line each record starts on."""
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    rows: list[Row] = []
    start = 1
    try:
        for record in reader:
            if any(cell.strip() for cell in record):
                rows.append((start, [cell.strip() for cell in record]))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ImportFileError(f"第 {start} 行起 csv 格式错误：{exc}") from None
    return rows


def read_xls(path: Path) -> list[Row]:
    """Return the non-blank rows of the first sheet of an .xls workbook."""
    import xlrd
    from xlrd.compdoc import CompDocError

    _require_file(path)
    broken = (xlrd.XLRDError, CompDocError, OSError, ValueError, IndexError, KeyError, struct.error)
    try:
        sheet = xlrd.open_workbook(str(path)).sheet_by_index(0)
    except broken as exc:
        raise ImportFileError(f"无法读取 Excel 文件 {path.name}：{exc}") from None
    return _numbered((index + 1, sheet.row_values(index)) for index in range(sheet.nrows))


def read_xlsx(path: Path, sheet_name: str | None = None) -> list[Row]:
    """Return the non-blank rows of the named sheet (else the first) of an .xlsx workbook."""
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    _require_file(path)
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:
        raise ImportFileError(f"无法读取 Excel 文件 {path.name}：{exc}") from None
    try:
        sheet = workbook[sheet_name] if sheet_name in workbook.sheetnames else workbook.worksheets[0]
        return _numbered(enumerate(sheet.iter_rows(values_only=True), start=1))
    finally:
        workbook.close()


def read_lines(path: Path) -> list[Row]:
    """Return the non-blank lines of a text file split on whitespace."""
    return [
        (number, line.split())
        for number, line in enumerate(read_text(path).splitlines(), start=1)
        if line.strip()
    ]


def read_json_list(path: Path) -> list[tuple[int, Any]]:
    """Return the items of a top-level JSON array with the line each item starts on."""
    text = read_text(path)
    decoder = json.JSONDecoder()
    items: list[tuple[int, Any]] = []
    line, counted = 1, 0
    pos = _skip_space(text, 0)
    if not text.startswith("[", pos):
        raise ImportFileError("JSON 文件应为一个数组（[ … ]）")
    pos = _skip_space(text, pos + 1)
    while not text.startswith("]", pos):
        line += text.count("\n", counted, pos)
        counted = pos
        try:
            item, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise ImportFileError(f"JSON 格式错误：第 {exc.lineno} 行第 {exc.colno} 列") from None
        items.append((line, item))
        pos = _skip_space(text, pos)
        if text.startswith(",", pos):
            pos = _skip_space(text, pos + 1)
        elif not text.startswith("]", pos):
            raise ImportFileError(f"JSON 格式错误：第 {line + text.count(chr(10), counted, pos)} 行缺少逗号或 ]")
    return items


def find_header(rows: list[Row], required: Iterable[str]) -> int:
    """Return the index in rows of the first row holding all required column names."""
    wanted = set(required)
    for index, (_line, cells) in enumerate(rows):
        if wanted <= set(cells):
            return index
    raise ImportFileError("找不到表头，缺少列：" + "、".join(sorted(wanted)))


def extra_cells(cells: list[str], width: int) -> bool:
    """Tell whether a row has a different number of columns than its header."""
    return len(cells) < width or any(cells[width:])


def _numbered(rows: Iterable[tuple[int, Iterable[Any]]]) -> list[Row]:
    numbered: list[Row] = []
    for number, values in rows:
        cells = [cell_text(value) for value in values]
        if any(cells):
            numbered.append((number, cells))
    return numbered


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise ImportFileError(f"找不到文件：{path}")


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos
