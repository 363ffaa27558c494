"""The process engine of the app: set-up, shipped diagrams, and process versions."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import refcache
from app.accounts.models import ROLE_PROVINCE_ADMIN, ROLE_PROVINCE_REVIEWER, ROLE_SCHOOL
from app.accounts.roles import lane_roles
from app.declarations import lifecycle
from app.engine import ENGINE_KEY, engine
from app.engine.runtime import Hooks, ProcessEngine
from app.handlers.handler import HANDLERS_KEY
from app.handlers.registry import HANDLERS
from app.processes import jobs, publish_gate
from app.processes.models import ProcessVersion
from app.processes.scenarios import saved_scenarios
from app.sms.templates import install_national_templates, texts_for_scope

SHIPPED_PROCESSES = tuple(publish_gate.PROCESS_DATA)
LANES = (ROLE_SCHOOL, ROLE_PROVINCE_REVIEWER, ROLE_PROVINCE_ADMIN)


def init_engine(app: Flask) -> None:
    """Create the app's engine with the lanes it knows, register the service handlers, and connect the engine to
    the job queue, the reference cache and the declaration lifecycle."""
    hooks = Hooks(service_calls_ready=jobs.service_calls_ready, schedule_wake=jobs.schedule_wake,
                  remember=refcache.cached, followed=lifecycle.followed)
    operations = {name: h.required for name, h in HANDLERS.items()}
    app.extensions[HANDLERS_KEY] = HANDLERS
    app.extensions[ENGINE_KEY] = ProcessEngine(LANES, operations, hooks)


def shipped_forms(bpmn_path: Path) -> dict[str, Any]:
    """Return every JSON-schema form shipped under bpmn/forms."""
    return {p.name: json.loads(p.read_text("utf-8")) for p in sorted((bpmn_path / "forms").glob("*.json"))}


def publish_version(session: Session, process_key: str, xml: str, forms: dict[str, Any], *,
                    province_code: str | None, published_by: str, note: str = "",
                    lanes: list[str] | None = None, run_saved_scenarios: bool = True) -> ProcessVersion:
    """Validate a diagram (with the saved scenarios of its scope) and make it the version in force for its scope
    (no-op if unchanged)."""
    if lanes is None:
        lanes = lane_roles(session)
    scenarios = saved_scenarios(session, process_key, province_code) if run_saved_scenarios else []
    parsed = publish_gate.checked(engine(), process_key, xml, forms, lanes, texts_for_scope(session, province_code),
                                  scenarios)
    scope = ProcessVersion.province_code.is_(None) if province_code is None else ProcessVersion.province_code == province_code
    current = session.scalars(select(ProcessVersion).where(
        ProcessVersion.process_key == process_key, ProcessVersion.active.is_(True), scope)).all()
    for row in current:
        if row.content_hash == parsed.content_hash:
            return row
        row.active = False
    version = ProcessVersion(process_key=process_key, province_code=province_code, content_hash=parsed.content_hash,
                             bpmn_xml=xml, forms=dict(forms), active=True, note=note, published_by=published_by)
    session.add(version)
    session.flush()
    return version


def install_shipped_processes(session: Session, bpmn_path: Path) -> list[ProcessVersion]:
    """Install the shipped national SMS templates the registry lacks, then publish the shipped diagrams as the
    national versions where they differ from the one in force.

    Analysts' saved national scenarios do not run here, so that no scenario can stop a database upgrade; they run
    on the shipped diagram at the next 校验 or publish of the national version (the built-in ones do run).
    """
    install_national_templates(session, bpmn_path)
    forms = shipped_forms(bpmn_path)
    return [publish_version(session, key, (bpmn_path / f"{key}.bpmn").read_text("utf-8"), forms,
                            province_code=None, published_by="system", run_saved_scenarios=False)
            for key in SHIPPED_PROCESSES]
