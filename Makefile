# Two commands a new user needs: `make demo` and `make test`. Both install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.flowtel-installed

.PHONY: demo test lint typecheck system-deps collector bench bench-quick

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

## A second environment pinned to the oldest OpenTelemetry and sentry-sdk releases that
## pyproject.toml admits, so the range it promises is the range that is tested.
OLDEST_VENV ?= .venv-oldest
OLDEST_STAMP := $(OLDEST_VENV)/.flowtel-installed
$(OLDEST_STAMP): pyproject.toml .ci/oldest-constraints.txt
	$(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(OLDEST_VENV)/bin/python -m pip install --quiet -c .ci/oldest-constraints.txt -e ".[dev]"
	touch $(OLDEST_STAMP)

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

## flowtel's collector distribution (collector/builder-config.yaml) and the Prometheus release the
## compose file pins, built with Go from the Go module proxy into a cache keyed by their inputs
## (${FLOWTEL_CACHE:-~/.cache/flowtel}); a second run costs nothing. The stack tests run them.
collector:
	collector/build.sh all

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict src tests/typing

## The whole test suite: lint, strict typing, then pytest.
test: $(STAMP) $(OLDEST_STAMP) system-deps collector lint typecheck
	$(PY) -m pytest
	@echo "== the same suite on the oldest admitted releases (.ci/oldest-constraints.txt) =="
	@# tests/docs builds its own venv from the wheel, whatever runs it: once is enough
	$(OLDEST_VENV)/bin/python -m pytest --ignore=tests/docs

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

## A short run of every headline ratio (a few minutes); writes benchmarks/results.md. CI prints
## it and never gates on it: shared machines are noisy.
bench-quick: $(STAMP)
	$(PY) benchmarks/run_all.py --quick
