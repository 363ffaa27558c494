"""Master data imports on the command line: flask --app app data ..."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from flask.cli import AppGroup

from app.extensions import db
from app.masterdata.imports import (
    ImportFileError,
    ImportReport,
    UnknownProvinceError,
    import_certificates,
    import_divisions,
    import_majors,
    import_schools,
)

data_cli = AppGroup("data", help="导入主数据：行政区划、院校名单、专业目录、1+X 证书。")

FILE = click.argument("file", type=click.Path(dir_okay=False, path_type=Path))


@data_cli.command("import-divisions")
@FILE
def import_divisions_command(file: Path) -> None:
    """导入行政区划代码（csv 或民政部“代码 名称”文本）。"""
    run_import(import_divisions, file)


@data_cli.command("import-schools")
@FILE
@click.option("--province", default=None, metavar="NAME", help="只导入这一个省份的院校（省份全称，如 北京市）。")
def import_schools_command(file: Path, province: str | None) -> None:
    """导入教育部全国高等学校名单（.xls、.csv 或 .json，原样）。"""
    try:
        run_import(import_schools, file, province=province)
    except UnknownProvinceError as exc:
        raise click.BadParameter(str(exc), param_hint="--province") from None


@data_cli.command("import-majors")
@FILE
def import_majors_command(file: Path) -> None:
    """导入职业教育专业目录（.xlsx 或 .csv）。"""
    run_import(import_majors, file)


@data_cli.command("import-certificates")
@FILE
def import_certificates_command(file: Path) -> None:
    """导入 1+X 证书及其培训评价组织（csv，按表头读列）。"""
    run_import(import_certificates, file)


def run_import(importer: Callable[..., ImportReport], file: Path, **options: Any) -> None:
    """Run one importer in the app's session, commit once and print the report."""
    session = db.session()
    try:
        report = importer(session, file, **options)
    except ImportFileError as exc:
        session.rollback()
        click.echo(f"导入失败：{exc}", err=True)
        raise click.exceptions.Exit(1) from None
    except BaseException:
        session.rollback()
        raise
    session.commit()
    click.echo(report.summary())
    for line, message in report.errors:
        click.echo(f"第 {line} 行：{message}")
