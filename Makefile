# trialproof: make install | demo | demo-anchors | test | test-fast | bench | lint | airflow | serve | lock | clean
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
UV_VERSION := 0.13.8

.PHONY: install demo demo-anchors test test-fast bench airflow serve lint lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(UV): | $(BIN)/python
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)

# The lock pins every package; merkletools is a test peer whose pysha3 dependency
# does not build on Python >= 3.10, so it goes in without dependencies.
STAMP := $(VENV)/.installed

# Bytecode is compiled here, once: Python never has to compile Airflow, Great Expectations
# and the rest at start-up, even where PYTHONDONTWRITEBYTECODE keeps it from caching them.
$(STAMP): requirements.lock pyproject.toml package-lock.json Makefile | $(UV)
	$(UV) pip sync --compile-bytecode --python $(BIN)/python requirements.lock
	npm ci --no-audit --no-fund --loglevel=error
	$(UV) pip install --python $(BIN)/python --no-deps -e .
	$(UV) pip install --compile-bytecode --python $(BIN)/python --no-deps merkletools==1.0.3
	$(COMPILE_SOURCES)
	@touch $(STAMP)
	@echo "installed into $(VENV)"

install: $(STAMP)

# The product's own modules, compiled when they changed (a stat per file otherwise).
COMPILE_SOURCES = @$(BIN)/python -m compileall -q -j 0 anchoring pipeline dags tests bench

lock: $(UV)
	$(UV) pip compile pyproject.toml --all-extras --no-header --python $(BIN)/python -o requirements.lock

demo: $(STAMP)
	$(COMPILE_SOURCES)
	$(BIN)/python -m pipeline.demo

# anvil, two witnesses and a TSA on loopback; anchor to all and verify a record proof
demo-anchors: $(STAMP)
	$(COMPILE_SOURCES)
	$(BIN)/python -m pipeline.demo_anchors

# Tests run in one pytest-xdist worker per CPU (at most 4), a test file per worker at a
# time (the end-to-end files start their own services), in the order tests/conftest.py
# gives: the longest first. TEST_JOBS=0 runs them in-process.
TEST_JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)
PYTEST := $(BIN)/pytest -q -p no:cacheprovider -n $(TEST_JOBS) --dist loadfile \
	--no-loadscope-reorder

# pytest caches its assertion-rewritten modules only where Python may write bytecode:
# allow it for the test run (the caches are git-ignored), or every run rewrites them all;
# every process of the run then caches the bytecode of the modules it imports, too.
test test-fast: export PYTHONDONTWRITEBYTECODE :=

test: $(STAMP)
	$(PYTEST)

# The inner loop: everything but the tests marked slow or scaleout (real Airflow end to end).
test-fast: $(STAMP)
	$(PYTEST) -m "not slow and not scaleout"

bench: $(STAMP)
	$(COMPILE_SOURCES)
	$(BIN)/python -m bench.run

airflow: $(STAMP)
	$(COMPILE_SOURCES)
	bash scripts/airflow_standalone.sh

serve: $(STAMP)
	$(COMPILE_SOURCES)
	$(BIN)/trialproof serve

lint: $(STAMP)
	$(BIN)/ruff check anchoring pipeline dags tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .trialproof .airflow .mypy_cache .ruff_cache .pytest_cache
