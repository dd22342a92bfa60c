# Two commands a new user needs: `make demo` and `make test`. Both install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.flowtel-installed

.PHONY: demo test lint typecheck system-deps bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

## Run the demo service instrumented by flowtel and print what it recorded.
demo: $(STAMP)
	$(PY) examples/demo.py

## Prometheus (Debian package) is needed by the integration tests; installed when root.
system-deps:
	@if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  else \
	    echo "prometheus/promtool missing: run 'sudo apt-get install prometheus' (integration tests skip locally, fail in CI)"; \
	  fi; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict src tests/typing

## The whole test suite: lint, strict typing, then pytest.
test: $(STAMP) system-deps lint typecheck
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/run_all.py
