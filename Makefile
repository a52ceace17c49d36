# millwatch — the two commands of the quick start are `make demo` and `make test`.
# Every target sets up what it needs on a fresh machine: a virtualenv with the Python
# dependencies, and the web page built into server/static (served by `millwatch serve`).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
WEB_SOURCES := $(shell find web/src web/index.html web/vite.config.ts web/tsconfig.json -type f 2>/dev/null)
DEMO_MACHINES ?= 50
DEMO_PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: install demo test lint test-python test-web bench clean

install: $(VENV)/.stamp-python server/static/index.html

$(VENV)/.stamp-python: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -e ".[central,postgres,dev]"
	touch $@

web/node_modules/.stamp: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

server/static/index.html: web/node_modules/.stamp $(WEB_SOURCES)
	cd web && npm run build

demo: install
	$(BIN)/millwatch demo --machines $(DEMO_MACHINES) --port $(DEMO_PORT)

lint: install
	$(BIN)/ruff check exporter millwatch_common scraper server tests bench
	$(BIN)/ruff format --check exporter millwatch_common scraper server tests bench
	$(BIN)/mypy
	cd web && npx tsc --noEmit -p .

test: install lint test-web test-python

test-python: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-web: install
	cd web && npx vitest run

bench: install
	$(BIN)/python bench/scrape_fleet.py
	$(BIN)/python bench/parse.py
	$(BIN)/python bench/http_clients.py
	$(BIN)/python bench/ingest.py $(if $(MILLWATCH_BENCH_POSTGRES_URL),--postgres $(MILLWATCH_BENCH_POSTGRES_URL))
	$(BIN)/python bench/scrape_vs_prometheus.py

clean:
	rm -rf $(VENV) web/node_modules server/static .pytest_cache .mypy_cache .ruff_cache
