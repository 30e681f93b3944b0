# Two commands do everything on a fresh machine: `make run` and `make test`.
# Each creates the virtual environment when it is missing and installs the project into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PLAN ?= plans/seed.yaml
# `make run` demonstrates the seed plan: agents take their estimated time (scaled to ~15 s)
RUN_FLAGS ?= --simulate
STAMP := $(VENV)/.installed
# pytest-xdist workers: the machine's cores, at most two (each worker starts its own dev server)
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ "$$n" -gt 2 ] && n=2; echo $$n)

.PHONY: run test lint typecheck install clean browser services docs

# compileall: bytecode for src/ as a pip-installed worker has (the editable install writes none
# where PYTHONDONTWRITEBYTECODE is set), since the workflow sandbox imports plan_workflow.py anew
# at every run (bench/overhead.py)
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m compileall -q src
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/pee run $(PLAN) $(RUN_FLAGS) $(ARGS)

# lint first (seconds), then the suite on both cores; the docs' strict build runs inside it
# (tests/test_docs.py)
test: lint browser services
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# headless Debian chromium for the HTML report tests, installed with apt-get when missing, and
# mermaid.js (npm) to render the Mermaid report in it
browser:
	@./.ci/install-chromium
	@./.ci/install-mermaid

# Debian's PostgreSQL binaries for the shared-store tests, installed with apt-get when missing
# (each test session runs its own server from a temporary folder; the S3 API server is moto,
# a test dependency)
services:
	@./.ci/install-postgresql

# ruff (lint and format), the package layers (import-linter), and mypy with the pydantic plugin
# the two ruff checks also run before each commit after `.venv/bin/pre-commit install`
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) -m mypy

# mypy alone (its files and settings are pyproject's [tool.mypy])
typecheck: $(STAMP)
	$(PY) -m mypy

# the docs site into site/ (git-ignored); --strict fails on any warning: a broken link or anchor,
# a page missing from the nav. The CLI reference is generated from the argument parser at build
# time (docs/gen_cli.py, an mkdocs hook)
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts .cache/mermaid site
