# X-Pilot: the two everyday commands are `make run` and `make test`.
#   make run    install into .venv if needed, migrate, load the demo, start web + worker (Ctrl-C stops all)
#   make test   install test tools if needed, run the whole suite (embedded default, or DATABASE_URL/REDIS_URL)
#   make lint   ruff (and mypy: `make typecheck`)
#   make bench  the step-cost benchmark (SQLite, and PostgreSQL when reachable)

PYTHON3 ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip --disable-pip-version-check
# Re-installs happen only when a requirements file is newer than its stamp.
RUN_STAMP := $(VENV)/.stamp-requirements
DEV_STAMP := $(VENV)/.stamp-requirements-dev

.PHONY: run test lint typecheck bench install install-dev clean-instance

run: $(RUN_STAMP)
	$(PY) -m app.runner

test: $(DEV_STAMP)
	$(PY) -m pytest -q

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .

typecheck: $(DEV_STAMP)
	$(VENV)/bin/mypy

bench: $(RUN_STAMP)
	$(PY) bench/step.py

install: $(RUN_STAMP)
install-dev: $(DEV_STAMP)

$(PY):
	$(PYTHON3) -m venv $(VENV)

$(RUN_STAMP): requirements.txt | $(PY)
	$(PIP) install -q -r requirements.txt
	touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PIP) install -q -r requirements-dev.txt
	touch $(RUN_STAMP) $@

# Forget the local SQLite database and embedded Redis data (`make run` recreates them).
clean-instance:
	rm -rf instance/xpilot.sqlite3* instance/redis.db instance/demo-accounts.txt
