# Two entry points: `make lint-sample` runs the linter over the bundled sample project,
# `make test` runs the test suite (what .ci/run calls). Both set up .venv on first use.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: lint-sample test services browser

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

services:
	scripts/ensure-services

# Headless Chromium for tests/test_graph_html.py (installed with apt when missing).
browser:
	scripts/ensure-chromium

# Findings make the linter exit 1: here that is the expected outcome; exit 2 (an error) fails.
lint-sample: $(VENV)/.installed
	$(BIN)/celery-chain-lint check fixtures/shop || test $$? -eq 1

test: $(VENV)/.installed services browser
	$(BIN)/python -m pytest
