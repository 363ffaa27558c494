"""Cost of one user-task step against the number of reject loops, on SQLite and PostgreSQL.

A *step* is one whole transaction of the engine, as a web request does it:
    SELECT ... FOR UPDATE the process_instance row (SQLite: BEGIN IMMEDIATE), restore the workflow
    from its stored state, complete the READY user task with the submitted data, run the engine to
    the next wait, serialize and store the state, sync the human_task / service_call rows, COMMIT.
Both user steps of a declaration are sampled: the school's submit (fill_declaration) and the
reviewer's reject (province_review, which also records the SMS service call).

To sample a step at exactly N loops, one declaration instance is driven through N loops of
submit -> reject -> SMS service call done, then copied K times (state row + open task rows);
every copy gives one submit and one reject sample, so no sample sees a longer history than N.

The baseline is a plain ORM update of the declaration row, also a whole transaction:
SELECT ... FOR UPDATE, change a field, COMMIT. Baseline and step samples alternate, and the loop
counts are sampled round-robin, so a busy machine slows every column alike.

Usage: python bench/step.py [--samples K] [--loops 0,20,100] [--postgres URL | --no-postgres]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TARGET_RATIO = 1.5
TARGET_GROWTH = 1.1
FILL: dict[str, Any] = {
    "level": "中级", "majors": ["510201", "510203"], "trainee_count": 60,
    "teachers": "专任教师 8 人，其中 3 人持有 Web 前端开发中级证书。", "facilities": "计算机实训室 3 间，每间 50 个工位。",
}
REJECT: dict[str, Any] = {"decision": "reject", "comment": "师资情况请补充证书持有人员名单及培训经历。"}


@dataclass
class Row:
    """One line of the result table."""

    backend: str
    loops: int
    step: list[float]
    submit: list[float]
    reject: list[float]
    baseline: list[float]
    state_bytes: int


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@contextmanager
def database(backend: str, postgres_url: str) -> Iterator[str]:
    """Yield the URL of a fresh empty database; drop it afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="xpilot-bench-") as folder:
            yield f"sqlite:///{folder}/bench.sqlite3"
        return
    name = f"xpilot_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield postgres_url.rsplit("/", 1)[0] + "/" + name
    finally:
        from app.extensions import db

        db.session.remove()
        if db.engine is not None:
            db.engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def postgres_reachable(url: str) -> bool:
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return False


class Bench:
    """One backend: an app on a fresh database with the demo master data and one declaration."""

    def __init__(self, url: str, instance_path: Path) -> None:
        from app import create_app
        from app.demo import load_demo
        from app.engine import engine
        from app.engine.runtime import Hooks
        from app.extensions import db
        from app.migrate import upgrade
        from app.processes.services import install_shipped_processes

        upgrade(url)
        # No Redis is used: the engine's after-commit hooks (enqueue jobs, schedule wakes) are switched off
        # and the SMS service calls are completed here, in the same way the worker's job completes them.
        self.app = create_app({"env": "test", "database_url": url, "redis_url": "redis://127.0.0.1:1/0",
                               "instance_path": instance_path, "secret_key": "bench"})
        self.ctx = self.app.app_context()
        self.ctx.push()
        engine().hooks = Hooks()
        self.engine = engine()
        self.session: Session = db.session()
        install_shipped_processes(self.session, self.app.config["XPILOT"].bpmn_path)
        load_demo(self.session)
        self.session.commit()
        self.declaration_id, self.instance_id = self._declaration()

    def close(self) -> None:
        self.session.close()
        self.ctx.pop()

    def _declaration(self) -> tuple[int, int]:
        from app.declarations.models import Declaration
        from app.masterdata.models import Certificate, School
        from app.plans.models import DeclarationPlan

        session = self.session
        plan = session.scalars(select(DeclarationPlan).where(DeclarationPlan.province_code == "440000")).first()
        assert plan is not None, "the demo data has no Guangdong plan"
        school = session.scalars(select(School).where(School.province_code == "440000")).first()
        certificate = session.scalars(select(Certificate).order_by(Certificate.id)).first()
        assert school is not None and certificate is not None
        decl = Declaration(plan_id=plan.id, school_id=school.id, province_code="440000", city_code=school.city_code,
                           certificate_id=certificate.id, level="中级", majors=list(FILL["majors"]),
                           trainee_count=60, teachers=str(FILL["teachers"]), facilities=str(FILL["facilities"]))
        session.add(decl)
        session.flush()
        outcome = self.engine.start(
            session, "declaration", subject_type="declaration", subject_id=decl.id, province_code="440000",
            city_code=school.city_code, school_id=school.id,
            data={"school_phone": "13900001111", "school_name": school.name, "certificate_name": certificate.name,
                  "level": "中级", "decision": "", "comment": ""})
        decl.instance_id = outcome.instance_id
        session.commit()
        return decl.id, outcome.instance_id

    def ready_task(self, instance_id: int, name: str) -> str:
        tasks = [t for t in self.engine.open_tasks(self.session, instance_id) if t.name == name]
        self.session.rollback()
        assert tasks, f"instance {instance_id} has no READY {name}"
        return tasks[0].task_id

    def submit(self, instance_id: int, task_id: str) -> None:
        self.engine.complete_task(self.session, instance_id, task_id, actor_id=None, lanes=["school"], data=FILL)
        self.session.commit()

    def reject(self, instance_id: int, task_id: str) -> None:
        self.engine.complete_task(self.session, instance_id, task_id, actor_id=None, lanes=["province_reviewer"],
                                  data=REJECT)
        self.session.commit()

    def finish_service_calls(self, instance_id: int) -> None:
        from app.processes.models import ServiceCall

        calls = self.session.scalars(select(ServiceCall).where(
            ServiceCall.instance_id == instance_id, ServiceCall.status == "pending")).all()
        for call in calls:
            self.engine.complete_service(self.session, call, {"message_id": 0})
        self.session.commit()

    def loop(self, instance_id: int) -> None:
        """One reject loop: submit, reject, the SMS call done; the fill task is READY again."""
        self.submit(instance_id, self.ready_task(instance_id, "fill_declaration"))
        self.reject(instance_id, self.ready_task(instance_id, "province_review"))
        self.finish_service_calls(instance_id)

    def copies(self, count: int) -> list[int]:
        """Copy the instance row and its open task rows; return the copies' ids."""
        from app.processes.models import HumanTask, ProcessInstance

        session = self.session
        source = session.get(ProcessInstance, self.instance_id)
        assert source is not None
        skip = {"id"}
        columns = [c.key for c in ProcessInstance.__table__.columns if c.key not in skip]
        open_rows = session.scalars(select(HumanTask).where(
            HumanTask.instance_id == source.id, HumanTask.completed_at.is_(None))).all()
        task_columns = [c.key for c in HumanTask.__table__.columns if c.key not in ("id", "instance_id")]
        ids = []
        for _ in range(count):
            copy = ProcessInstance(**{key: getattr(source, key) for key in columns})
            session.add(copy)
            session.flush()
            for row in open_rows:
                session.add(HumanTask(instance_id=copy.id, **{key: getattr(row, key) for key in task_columns}))
            ids.append(copy.id)
        session.commit()
        return ids

    def state_bytes(self) -> int:
        from app.processes.models import ProcessInstance

        instance = self.session.get(ProcessInstance, self.instance_id)
        assert instance is not None
        size = len(instance.state.encode("utf-8"))
        self.session.rollback()
        return size

    def plain_update(self, counter: int) -> None:
        from app.declarations.models import Declaration

        decl = self.session.scalars(select(Declaration).where(Declaration.id == self.declaration_id)
                                    .with_for_update()).one()
        decl.teachers = f"{FILL['teachers']}（第 {counter} 次修改）"
        decl.revision += 1
        self.session.commit()

    def sample(self, row: Row, copy_id: int, fill_task: str, counter: int) -> None:
        """Time one baseline update, one submit, another baseline update and one reject."""
        row.baseline.append(timed(partial(self.plain_update, counter)))
        row.submit.append(timed(partial(self.submit, copy_id, fill_task)))
        review_task = self.ready_task(copy_id, "province_review")
        row.baseline.append(timed(partial(self.plain_update, counter)))
        row.reject.append(timed(partial(self.reject, copy_id, review_task)))


def timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000.0


def run_backend(backend: str, url: str, loop_counts: list[int], samples: int) -> list[Row]:
    """Prepare copies at every loop count first, then sample the counts round-robin (fair under load)."""
    with tempfile.TemporaryDirectory(prefix="xpilot-bench-instance-") as instance:
        bench = Bench(url, Path(instance))
        try:
            warm_task = bench.ready_task(bench.instance_id, "fill_declaration")
            warm = bench.copies(5)
            prepared: list[tuple[Row, str, list[int]]] = []
            done = 0
            for target in sorted(loop_counts):
                while done < target:
                    bench.loop(bench.instance_id)
                    done += 1
                row = Row(backend, target, [], [], [], [], bench.state_bytes())
                fill_task = bench.ready_task(bench.instance_id, "fill_declaration")  # a new task each loop
                prepared.append((row, fill_task, bench.copies(samples)))
            print(f"  {backend}: {samples} copies prepared at {', '.join(map(str, loop_counts))} loops",
                  file=sys.stderr, flush=True)
            for counter, copy_id in enumerate(warm):  # warm-up: caches, pool, prepared statements
                bench.sample(Row(backend, 0, [], [], [], [], 0), copy_id, warm_task, counter)
            for index in range(samples):
                for row, fill_task, copies in prepared:
                    bench.sample(row, copies[index], fill_task, index)
        finally:
            bench.close()
    rows = [row for row, _, _ in prepared]
    for row in rows:
        row.step = row.submit + row.reject
    return rows


def report(rows: list[Row]) -> None:
    print()
    print("One step = lock + load + complete a READY user task + run to the next wait + save + COMMIT")
    print("(school submit and reviewer reject sampled alike); baseline = SELECT ... FOR UPDATE + UPDATE of")
    print("the declaration row + COMMIT. Times in ms; ratio = step median / baseline median;")
    print("growth = step median / step median at 0 loops.")
    print()
    header = (f"{'backend':<10} {'loops':>5} {'step med':>9} {'step p95':>9} {'submit':>7} {'reject':>7} "
              f"{'base med':>9} {'base p95':>9} {'ratio':>6} {'growth':>7} {'state B':>8}")
    print(header)
    print("-" * len(header))
    verdicts = []
    for backend in dict.fromkeys(r.backend for r in rows):
        mine = [r for r in rows if r.backend == backend]
        zero = next((r for r in mine if r.loops == 0), mine[0])
        zero_median = statistics.median(zero.step)
        for r in mine:
            med = statistics.median(r.step)
            base = statistics.median(r.baseline)
            ratio = med / base
            growth = med / zero_median
            print(f"{r.backend:<10} {r.loops:>5} {med:>9.2f} {percentile(r.step, 0.95):>9.2f} "
                  f"{statistics.median(r.submit):>7.2f} {statistics.median(r.reject):>7.2f} {base:>9.3f} "
                  f"{percentile(r.baseline, 0.95):>9.3f} {ratio:>6.1f}x {growth:>6.2f}x {r.state_bytes:>8}")
        last = max(mine, key=lambda r: r.loops)
        worst_ratio = max(statistics.median(r.step) / statistics.median(r.baseline) for r in mine)
        growth = statistics.median(last.step) / zero_median
        verdicts.append(
            f"{backend}: step/plain update at most {worst_ratio:.1f}x (target <= {TARGET_RATIO}x: "
            f"{'met' if worst_ratio <= TARGET_RATIO else 'NOT met'}); growth 0 -> {last.loops} loops "
            f"{growth:.2f}x (target <= {TARGET_GROWTH}x: {'met' if growth <= TARGET_GROWTH else 'NOT met'})")
    print()
    for line in verdicts:
        print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=100, help="instance copies per loop count (2 steps each)")
    parser.add_argument("--loops", default="0,20,100", help="comma-separated reject-loop counts")
    env_url = os.environ.get("DATABASE_URL", "")
    parser.add_argument("--postgres", default=env_url if env_url.startswith("postgresql") else DEFAULT_POSTGRES)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    loop_counts = sorted({int(x) for x in args.loops.split(",")} | {0})

    backends = ["sqlite"]
    if args.no_postgres:
        pass
    elif postgres_reachable(args.postgres):
        backends.append("postgresql")
    else:
        print(f"PostgreSQL not reachable at {args.postgres}: SQLite only", file=sys.stderr)
    started = time.perf_counter()
    rows: list[Row] = []
    for backend in backends:
        with database(backend, args.postgres) as url:
            rows.extend(run_backend(backend, url, loop_counts, args.samples))
    report(rows)
    print(f"\n({args.samples} copies x 2 steps per row; whole run {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
