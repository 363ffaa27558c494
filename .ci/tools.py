"""Small helpers of .ci/run: create/drop a PostgreSQL database, and the closing summary of the run.

    python .ci/tools.py createdb BASE_URL NAME
    python .ci/tools.py dropdb BASE_URL NAME
    python .ci/tools.py summary ARTIFACT_DIR SMOKE_EXIT_CODE
"""
from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

SUITES = ("embedded", "postgres-redis")


def database(action: str, base_url: str, name: str) -> None:
    """Create or drop a database next to the one in base_url."""
    from sqlalchemy import create_engine, text

    engine = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if action == "createdb":
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        else:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def summary(artifacts: Path, smoke_rc: int) -> int:
    """Print the per-suite counts, the failed tests, and one closing 'N passed, N failed' line."""
    passed = failed = skipped = 0
    for name in SUITES:
        path = artifacts / f"junit-{name}.xml"
        if not path.exists():
            print(f"[ci] suite {name}: no report (the run did not get to pytest)")
            failed += 1
            continue
        root = ET.parse(path).getroot()
        suites = [root] if root.tag == "testsuite" else list(root)
        total = sum(int(s.get("tests", 0)) for s in suites)
        bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
        skip = sum(int(s.get("skipped", 0)) for s in suites)
        print(f"[ci] suite {name}: {total - bad - skip} passed, {bad} failed, {skip} skipped")
        for case in root.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                print(f"[ci]   FAILED {case.get('classname')}::{case.get('name')}")
        if total == 0:
            print(f"[ci] suite {name} ran no test")
            failed += 1
        passed, failed, skipped = passed + total - bad - skip, failed + bad, skipped + skip
    print(f"[ci] production smoke: {'passed' if smoke_rc == 0 else 'FAILED'}")
    passed += smoke_rc == 0
    failed += smoke_rc != 0
    print(f"summary: {passed} passed, {failed} failed, {skipped} skipped", flush=True)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[1] in ("createdb", "dropdb"):
        database(argv[1], argv[2], argv[3])
        return 0
    if len(argv) == 4 and argv[1] == "summary":
        return summary(Path(argv[2]), int(argv[3]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
