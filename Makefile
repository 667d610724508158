# Connector Studio: `make run` serves the app, `make test` passes the tests. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run dev test lint format lock assets system-packages clean

# The venv is installed from the lock files (every package pinned, with hashes), again only when
# they change (pyspark takes a minute to build). The engine is a local package, so it is not in
# the lock (pip takes no editable requirement with hashes): it is installed after it, on its own.
$(VENV)/.installed: requirements.txt runs/runtime/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e ./runs/runtime
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.txt
	touch $@

# Compile requirements.in, requirements-dev.in and requirements-moto.in (the tests' S3 server) into
# the lock files, keeping every pin that still fits; `make lock LOCK_ARGS=--upgrade` takes the
# newest versions they allow.
LOCK := --universal --python-version 3.11 --generate-hashes --custom-compile-command "make lock"
lock: $(VENV)/.installed-dev
	$(VENV)/bin/uv pip compile --quiet $(LOCK) $(LOCK_ARGS) requirements.in -o requirements.txt
	$(VENV)/bin/uv pip compile --quiet $(LOCK) $(LOCK_ARGS) requirements-dev.in -o requirements-dev.txt
	$(VENV)/bin/uv pip compile --quiet $(LOCK) $(LOCK_ARGS) requirements-moto.in -o requirements-moto.txt

# The production server: gunicorn (connectors_site/gunicorn_conf.py: WEB_WORKERS processes of
# WEB_THREADS threads) and the background worker. When either ends, or on Ctrl-C or SIGTERM, the
# other is stopped too; each stops its sandboxes and a local Spark server it started.
run: $(VENV)/.installed
	$(PY) manage.py migrate --no-input
	$(PY) manage.py collectstatic --no-input --verbosity 0
	$(PY) manage.py ensure_admin
	$(PY) manage.py load_examples
	@echo "Connector Studio: http://$(HOST):$(PORT)/  (Ctrl-C stops the web server and the worker)"
	@trap 'kill $$(jobs -p) 2>/dev/null; wait; exit 0' INT TERM; \
	$(PY) manage.py worker --no-reload & \
	$(PY) -m gunicorn -c connectors_site/gunicorn_conf.py --bind $(HOST):$(PORT) & \
	wait -n; kill $$(jobs -p) 2>/dev/null; wait

# Development: Django's server, restarted when the code changes (static files straight from
# static/), and the worker.
dev: $(VENV)/.installed
	$(PY) manage.py migrate --no-input
	$(PY) manage.py ensure_admin
	$(PY) manage.py load_examples
	@echo "Connector Studio (development): http://$(HOST):$(PORT)/  (Ctrl-C stops both)"
	@trap 'kill $$(jobs -p) 2>/dev/null; wait; exit 0' INT TERM; \
	$(PY) manage.py worker --no-reload & \
	$(PY) manage.py runserver $(HOST):$(PORT) & \
	wait -n; kill $$(jobs -p) 2>/dev/null; wait

# Tests use their own data directory, never the one `make run` uses. The whole suite runs on
# SQLite, then the suites that use the database run again on PostgreSQL: a throw-away cluster
# under .test-data/postgres (tests/postgres.py: loopback, generated password), stopped whatever
# the tests' outcome; the exit status is the first failing run's. Not run again on PostgreSQL
# (PG_TESTS): the browser tests and the Spark suites (slow, and their database use is covered by
# the others) and the engine's tests (no database). Tests whose manage.py subprocesses have a
# SQLite site of their own (tests/runs/manage_site.py) keep it on that run.
PG_TESTS := --ignore=tests/browser --ignore=tests/spark --ignore=tests/engine
test: export DATA_DIR := $(CURDIR)/.test-data
test: export DJANGO_ALLOW_ASYNC_UNSAFE := true
test: $(VENV)/.installed-dev system-packages
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run
	@trap '$(PY) -m tests.postgres stop "$$DATA_DIR/postgres"' EXIT; \
	url=$$($(PY) -m tests.postgres start "$$DATA_DIR/postgres") || exit 1; \
	sqlite=0; postgres=0; \
	echo "pytest  # on SQLite"; $(VENV)/bin/pytest || sqlite=$$?; \
	echo "pytest $(PG_TESTS)  # on PostgreSQL"; \
	DATABASE_URL="$$url" $(VENV)/bin/pytest $(PG_TESTS) || postgres=$$?; \
	if [ $$sqlite != 0 ]; then exit $$sqlite; fi; exit $$postgres

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Rebuild the committed CodeMirror bundle from the pinned npm packages (only needed to upgrade).
assets:
	npm ci --no-audit --no-fund
	npm run build

# What the tests need from the system: bubblewrap (sandbox), chromium (browser tests), Java (Spark),
# PostgreSQL (the second run of the suites; Debian keeps its programs in /usr/lib/postgresql).
system-packages:
	@missing=""; \
	command -v bwrap >/dev/null || missing="$$missing bubblewrap"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null \
	  || missing="$$missing postgresql"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	command -v java >/dev/null || missing="$$missing openjdk-17-jre-headless"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	  else \
	    echo "Missing system packages:$$missing (install them with apt-get, or run as root)"; exit 1; \
	  fi; \
	fi

clean:
	rm -rf $(VENV) .test-data .pytest_cache .ruff_cache
