"""Python function calls and SQL statements per request of the four requests of a declaration, in process.

Usage: .venv/bin/python bench/calls.py            (SQLite in a temporary folder, Redis db 9 flushed)
       CALLS_PG=1 .venv/bin/python bench/calls.py (a fresh PostgreSQL database on 127.0.0.1, left for inspection)

Function calls repeat exactly where the machine's speed does not: compare builds by them (see bench/README.md).
The school zjxx_weekly of the demo declares each of 7 certificates x 3 levels; gd_reviewer approves each; the first
three declarations warm the caches and are not counted.
"""
import cProfile
import os
import pstats
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.getcwd())
from sqlalchemy import event, select  # noqa: E402

from app import create_app  # noqa: E402
from app.declarations.models import Declaration  # noqa: E402
from app.extensions import db  # noqa: E402
from app.migrate import upgrade  # noqa: E402
from app.processes.services import install_shipped_processes  # noqa: E402
from tests.factories import complete_info, declaration_form, login, with_demo  # noqa: E402

tmp = Path(tempfile.mkdtemp())
url = f"sqlite:///{tmp / 'calls.sqlite3'}"
if os.environ.get("CALLS_PG"):
    import uuid

    from sqlalchemy import create_engine, text
    name = f"xpilot_calls_{uuid.uuid4().hex[:8]}"
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
SQL_LOG = []
upgrade(url)
app = create_app({"env": "test", "testing": True, "database_url": url, "redis_url": "redis://127.0.0.1:6379/9",
                  "instance_path": tmp / "instance", "secret_key": "calls", "service_drain_linger": 0.0})
app.config["WTF_CSRF_ENABLED"] = False
from app.queue import jobs  # noqa: E402

jobs.redis.flushdb()
with app.app_context():
    install_shipped_processes(db.session(), app.config["XPILOT"].bpmn_path)
    db.session.commit()
with_demo(app)
statements = [0]
with app.app_context():
    def _count(conn, cursor, statement, *a, **k):
        statements[0] += 1
        SQL_LOG.append(statement[:150].replace("\n", " "))
    event.listen(db.engine, "before_cursor_execute", _count)
school, reviewer = app.test_client(), app.test_client()
login(school, "zjxx_weekly")
complete_info(school)
login(reviewer, "gd_reviewer")
with app.app_context():
    from app.models import Certificate  # registry in both trees
    certs = [c.id for c in db.session.scalars(select(Certificate).order_by(Certificate.id))][:7]
combos = [(c, lv) for c in certs for lv in ("初级", "中级", "高级")]
totals = {k: [0, 0] for k in ("form", "submit", "review", "approve")}
N = 0


def measure(kind, fn):
    prof = cProfile.Profile()
    before = statements[0]
    prof.enable()
    result = fn()
    prof.disable()
    calls = pstats.Stats(prof).total_calls
    totals[kind][0] += calls
    totals[kind][1] += statements[0] - before
    return result


for index, (cert, level) in enumerate(combos):
    data = {**declaration_form(app, level=level), "certificate_id": str(cert), "action": "submit"}
    warm = index < 3
    r = measure("form", lambda: school.get("/school/declarations/new"))
    r = measure("submit", lambda data=data: school.post("/school/declarations/new", data=data))
    assert r.status_code == 302, r.status_code
    with app.app_context():
        decl_id = db.session.scalars(select(Declaration.id).order_by(Declaration.id.desc())).first()
    r = measure("review", lambda decl_id=decl_id: reviewer.get(f"/review/declarations/{decl_id}"))
    assert r.status_code == 200
    r = measure("approve", lambda decl_id=decl_id: reviewer.post(f"/review/declarations/{decl_id}",
                                                               data={"decision": "approve"}))
    assert r.status_code == 302, r.status_code
    SQL_LOG.clear()
    if warm:
        for k in totals:
            totals[k] = [0, 0]
    else:
        N += 1
print(f"{N} declarations measured")
for k, (calls, sql) in totals.items():
    print(f"{k:8s} calls/request {calls / N:9.0f}   SQL/request {sql / N:5.2f}")
print(f"total    calls/declaration {sum(c for c, _ in totals.values()) / N:9.0f}")
jobs.redis.flushdb()
