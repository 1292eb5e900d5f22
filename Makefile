# trialproof: make install | demo | test | bench | lint | airflow
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
UV_VERSION := 0.13.8

.PHONY: install demo test test-fast bench lint lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(UV): | $(BIN)/python
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)

# The lock pins every package; merkletools is a test peer whose pysha3 dependency
# does not build on Python >= 3.10, so it goes in without dependencies.
install: $(UV)
	$(UV) pip sync --python $(BIN)/python requirements.lock
	$(UV) pip install --python $(BIN)/python --no-deps -e .
	$(UV) pip install --python $(BIN)/python --no-deps merkletools==1.0.3
	@echo "installed into $(VENV)"

lock: $(UV)
	$(UV) pip compile pyproject.toml --all-extras --no-header --python $(BIN)/python -o requirements.lock

demo:
	$(BIN)/python -m pipeline.demo

test:
	$(BIN)/pytest -q -p no:cacheprovider

bench:
	$(BIN)/python -m bench.run

lint:
	$(BIN)/ruff check anchoring pipeline dags tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .trialproof .mypy_cache .ruff_cache .pytest_cache
