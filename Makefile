# `make run` and `make test` work on a fresh machine with Python 3.11+ and Java 17 or 21.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/dagster_home
export SPARK_LOCAL_IP ?= 127.0.0.1
export PYSPARK_PYTHON := $(CURDIR)/$(BIN)/python

.PHONY: setup run test lint bench backtest ui java browser clean

java:
	@command -v java >/dev/null 2>&1 || [ -x "$$JAVA_HOME/bin/java" ] || { \
	  echo "astro: Java was not found. Spark needs Java 17 or 21: install it (Debian/Ubuntu:"; \
	  echo "       apt-get install openjdk-17-jre-headless; macOS: brew install openjdk@17) or set JAVA_HOME."; \
	  exit 1; }

# The UI test drives Debian's Chromium. Installed here when missing and we may (root with apt-get);
# otherwise the test is skipped with this reason (CI fails it instead).
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "astro: installing Debian's chromium for the UI test"; \
	    apt-get install -y -q chromium >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; \
	  else \
	    echo "astro: /usr/bin/chromium is missing (apt-get install chromium): the UI test will be skipped"; \
	  fi; }

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "astro: Python 3.11+ is needed, found " + sys.version.split()[0])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

# Materialise the newest complete day end to end (ASTRO_DATA_DIR, ASTRO_KEYWORDS honoured).
run: java setup
	$(BIN)/astro-run

# The layers' import contracts and the linter, the test suite, then every asset check on a freshly
# materialised sample partition.
test: java setup browser lint
	$(BIN)/python -m pytest
	$(BIN)/astro-ci-checks

# Import contracts (setup.cfg [importlinter]: layers, forbidden packages, no cycles), ruff lint and format.
lint: setup
	$(BIN)/lint-imports --no-cache
	$(BIN)/ruff check astro_assets astro_assets_tests
	$(BIN)/ruff format --check astro_assets astro_assets_tests

# The benchmark (10M keywords by default; BENCH_ARGS="--keywords 1000000,10000000 --json bench.json").
bench: java setup
	$(BIN)/astro-bench $(BENCH_ARGS)

# Would the bids have made money? 20,000 keywords x 14 held-out days by default (BACKTEST_ARGS="--json backtest.json").
backtest: setup
	$(BIN)/astro-backtest $(BACKTEST_ARGS)

ui: java setup
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

clean:
	rm -rf data .pytest_cache test-artifacts
	find dagster_home -mindepth 1 ! -name dagster.yaml -exec rm -rf {} +
