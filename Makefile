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
# The exporter's tests run a second time under the oldest Python it supports, in a venv holding only
# the exporter's install (from the offline bundle): that proves the 3.9 claim and that the exporter
# needs nothing of the central side.
PY39 ?= $(firstword $(wildcard /root/.pyenv/versions/3.9*/bin/python3.9) $(shell command -v python3.9 2>/dev/null))
VENV39 := .cache/venv-exporter-py39
# Dependency wheels for the bundle tests (tests/server/test_bundle.py, make test-exporter-py39):
# fetched once from the registry here, so that no test reaches it.
BUNDLE_WHEELS := .cache/bundle-wheels
CENTRAL_CP := $(shell $(PYTHON) -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
BUNDLE_WHEEL_DIRS := $(BUNDLE_WHEELS)/linux_x86_64-$(CENTRAL_CP) $(BUNDLE_WHEELS)/win_amd64-cp39 \
	$(BUNDLE_WHEELS)/linux_x86_64-cp39

.PHONY: install demo test lint web-types check-web-types test-python test-web test-exporter-py39 bundle-wheels bench clean

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
	$(MAKE) --no-print-directory check-web-types

# The page's types (web/src/api.gen.ts) are generated from the API's OpenAPI description
# (server/api_models.py, scraper/view_model.py) by openapi-typescript; the file is checked in.
web-types: install
	$(BIN)/python -m server.openapi --typescript web/src/api.gen.ts

check-web-types: install
	$(BIN)/python -m server.openapi --typescript web/src/api.gen.ts --check

test: install lint test-web test-python test-exporter-py39

test-python: install bundle-wheels
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bundle-wheels: $(addsuffix /.stamp,$(BUNDLE_WHEEL_DIRS))

# <platform>-cp<XY>: `millwatch bundle --download-to` for that platform and Python version.
$(BUNDLE_WHEELS)/%/.stamp: pyproject.toml | install
	rm -rf $(BUNDLE_WHEELS)/$*
	$(BIN)/millwatch bundle --platform $(firstword $(subst -, ,$*)) \
		--python-version $(shell echo $(lastword $(subst -, ,$*)) | sed 's/^cp\(.\)/\1./') \
		--download-to $(BUNDLE_WHEELS)/$*
	touch $@

test-exporter-py39: install $(BUNDLE_WHEELS)/linux_x86_64-cp39/.stamp
	@test -n "$(PY39)" || { echo "make: Python 3.9 not found: install it or give PY39=/path/to/python3.9" >&2; exit 1; }
	rm -rf .cache/bundle-py39
	$(BIN)/millwatch bundle --platform linux_x86_64 --python-version 3.9 -o .cache/bundle-py39 \
		--wheels $(BUNDLE_WHEELS)/linux_x86_64-cp39 >/dev/null
	cd .cache/bundle-py39 && $(CURDIR)/$(BIN)/python -m zipfile -e *.zip .
	test -x $(VENV39)/bin/python || $(PY39) -m venv $(VENV39)
	$(VENV39)/bin/python -m pip install --quiet --no-index --find-links .cache/bundle-py39/*/wheels \
		--force-reinstall millwatch-exporter
	test -x $(VENV39)/bin/pytest || $(VENV39)/bin/python -m pip install --quiet "pytest>=8.0" "pytest-timeout>=2.3"
	# The console script, not `python -m pytest`: the source tree stays off sys.path, so the tests
	# import the installed exporter.
	MILLWATCH_EXPORTER_ONLY=1 $(VENV39)/bin/pytest -p no:cacheprovider tests/exporter -q $(PYTEST_ARGS)

test-web: install
	cd web && npx vitest run

bench: install $(BUNDLE_WHEELS)/win_amd64-cp39/.stamp
	$(BIN)/python bench/scrape_fleet.py
	$(BIN)/python bench/exporter_vs_node.py
	$(BIN)/python bench/parse.py
	$(BIN)/python bench/http_clients.py
	$(BIN)/python bench/ingest.py $(if $(MILLWATCH_BENCH_POSTGRES_URL),--postgres $(MILLWATCH_BENCH_POSTGRES_URL))
	$(BIN)/python bench/scrape_vs_prometheus.py
	$(BIN)/python bench/push_ingest.py --machines 50 --readings 15 --seconds 15
	$(BIN)/python bench/page_10k.py

clean:
	rm -rf $(VENV) web/node_modules server/static .pytest_cache .mypy_cache .ruff_cache .cache
