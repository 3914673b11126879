# Every target builds the virtual environment it needs from the pinned lock file.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_HOME ?= $(CURDIR)/.posventa/prefect
export PYTHONDONTWRITEBYTECODE := 1
# Prefect's embedded server may start slowly on a busy 2-core machine (its default wait is 20 s).
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120

.PHONY: venv demo test lint bench clean browser-deps

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

# Chromium + chromedriver for the browser tests, Graphviz for the report's journey diagrams (Debian
# packages; root on CI).
browser-deps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v dot >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver graphviz >/dev/null)

demo: $(STAMP)
	mkdir -p "$(PREFECT_HOME)"
	$(BIN)/posventa demo

# Tests get their own Prefect home (its embedded server's database), separate from the demo's.
test: $(STAMP) browser-deps
	mkdir -p .posventa/prefect-test
	PREFECT_HOME=$(CURDIR)/.posventa/prefect-test $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check posventa app infra web ops tasks flows tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .posventa .pytest_cache .mypy_cache .ruff_cache
