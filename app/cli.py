"""Command line: `flask --app app ...`."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.accounts.legacy import import_legacy_accounts
from app.accounts.services import AccountError, create_staff
from app.demo import load_demo
from app.engine.specs import InvalidProcess, safe_xml
from app.extensions import db
from app.masterdata.cli import data_cli
from app.migrate import upgrade
from app.processes.services import install_shipped_processes, publish_version, shipped_forms
from app.sms.outbox import newest_messages

db_cli = AppGroup("db", help="数据库")
users_cli = AppGroup("users", help="员工账号")
accounts_cli = AppGroup("accounts", help="院校账号")
process_cli = AppGroup("process", help="流程")
sms_cli = AppGroup("sms", help="短信")
demo_cli = AppGroup("demo", help="演示数据")


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema and install the shipped processes."""
    settings = current_app.config["XPILOT"]
    upgrade(settings.database_url)
    install_shipped_processes(db.session(), settings.bpmn_path)
    db.session.commit()
    click.echo("数据库已是最新结构，内置流程已安装。")


@users_cli.command("create")
@click.option("--role", required=True)
@click.option("--username", required=True)
@click.option("--password", required=True)
@click.option("--province", "province_code", default=None)
@click.option("--city", "city_code", default=None)
@click.option("--phone", default=None)
@click.option("--name", "display_name", default="")
def users_create(role: str, username: str, password: str, province_code: str | None, city_code: str | None,
                 phone: str | None, display_name: str) -> None:
    """Create a staff account."""
    try:
        user = create_staff(db.session(), role=role, username=username, password=password,
                            province_code=province_code, city_code=city_code, phone=phone, display_name=display_name)
        db.session.commit()
    except AccountError as exc:
        db.session.rollback()
        click.echo(f"错误：{exc}", err=True)
        sys.exit(1)
    click.echo(f"已创建 {user.role_label} 账号 {user.username}")


@accounts_cli.command("import-legacy")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def accounts_import_legacy(file: Path) -> None:
    """Upgrade earlier weekly-report accounts to school accounts; passwords are sent by SMS."""
    report = import_legacy_accounts(db.session(), file)
    db.session.commit()
    click.echo(report.summary())
    for line, message in report.errors:
        click.echo(f"  第 {line} 行：{message}")


@process_cli.command("deploy")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--province", "province_code", default=None, help="省级行政区代码；省略则为全国版本")
def process_deploy(file: Path, province_code: str | None) -> None:
    """Validate and publish a new version of a process."""
    settings = current_app.config["XPILOT"]
    xml = file.read_text("utf-8")
    try:
        root = safe_xml(xml)
        process = root.find("{http://www.omg.org/spec/BPMN/20100524/MODEL}process")
        key = process.get("id") if process is not None else ""
        forms = shipped_forms(settings.bpmn_path)
        forms.update(shipped_forms(file.parent) if (file.parent / "forms").is_dir() else {})
        version = publish_version(db.session(), key or "", xml, forms, province_code=province_code,
                                  published_by="cli")
        db.session.commit()
    except InvalidProcess as exc:
        db.session.rollback()
        click.echo("流程校验未通过：", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        sys.exit(1)
    click.echo(f"已发布 {version.process_key} 版本 #{version.id}（{province_code or '全国'}）")


@sms_cli.command("outbox")
@click.option("--phone", default=None)
@click.option("--limit", default=20, type=int)
def sms_outbox(phone: str | None, limit: int) -> None:
    """Print the newest messages of the outbox backend."""
    for message in newest_messages(db.session(), phone=phone, limit=limit):
        click.echo(f"#{message.id} {message.created_at:%Y-%m-%d %H:%M:%S} {message.phone} [{message.status}] "
                   f"{message.body}")


@demo_cli.command("load")
def demo_load() -> None:
    """Load the built-in demo data set (idempotent)."""
    accounts = load_demo(db.session())
    db.session.commit()
    click.echo("演示数据已就绪。演示账号：")
    for line in accounts:
        click.echo(f"  {line}")


def register_commands(app: Flask) -> None:
    """Attach every command group to the app."""
    for group in (db_cli, users_cli, accounts_cli, process_cli, sms_cli, demo_cli, data_cli):
        app.cli.add_command(group)
