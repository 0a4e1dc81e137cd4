# bangfu: `make run` sets everything up and starts the system on the embedded default;
# `make test` sets up and runs every check (ruff, import-linter, mypy, pytest).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup run test lint layers typecheck pytest bench demo clean oidc-provider

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/python -m workflow.entrypoints.run $(RUN_ARGS)

demo: setup
	$(BIN)/bangfu demo

lint: setup
	$(BIN)/ruff check .

layers: setup
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy states workflow notifications worker.py

# The OpenID provider the single sign-on test starts (npm's oidc-provider, pinned by the lock
# file); skipped where Node.js is missing (the test then skips, or fails under REQUIRE_SERVICES=1).
OIDC_DIR   := tests/oidc
OIDC_STAMP := $(OIDC_DIR)/node_modules/.package-lock.json

$(OIDC_STAMP): $(OIDC_DIR)/package.json $(OIDC_DIR)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then cd $(OIDC_DIR) && npm ci --no-audit --no-fund --loglevel=error; \
	else echo "make: npm not found: the OpenID Connect test will be skipped"; fi

oidc-provider: $(OIDC_STAMP)

pytest: setup oidc-provider
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint layers typecheck pytest

BENCH_STAMP := $(VENV)/.bench-stamp

$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

bench: setup $(BENCH_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf var/ .pytest_cache .mypy_cache .ruff_cache
