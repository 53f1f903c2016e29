# driftloop — two commands: `make demo` and `make test`.
# TORCH_SPEC is installed before the package so pip never pulls a multi-GB CUDA build onto a
# CPU machine; on a GPU machine choose another, e.g. `make demo TORCH_SPEC="torch==2.13.0"` with
# the CUDA index of your choice in PIP_INDEX_URL.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test test-lowest install lint clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml ci/dev-constraints.txt
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -c ci/dev-constraints.txt -e ".[dev,postgres,s3]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/driftloop demo

# the whole suite on SQLite, then the store-backed tests again on a real PostgreSQL server that
# tests/pg_server.py starts (skipped when Debian's postgresql is missing, failed under CI)
PG_TESTS := tests/store tests/registry tests/serve tests/monitor tests/loop tests/governance tests/features
test: $(STAMP)
	$(BIN)/python -m pytest
	DRIFTLOOP_TEST_STORE=postgresql $(BIN)/python -m pytest -q $(PG_TESTS)

# the architecture's import contracts live in pyproject.toml ([tool.importlinter])
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports --no-cache

# the dependency floors in pyproject.toml, proved: its own venv (.venv-lowest) with numpy, scipy,
# pandas, scikit-learn, pyarrow and river pinned to them (ci/lowest-constraints.txt), then the
# monitor and evaluation tests
test-lowest:
	PYTHON="$(PYTHON)" TORCH_SPEC="$(TORCH_SPEC)" bash ci/test-lowest.sh

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_train.py

clean:
	rm -rf $(VENV) .venv-lowest .driftloop driftloop-demo
