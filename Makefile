# distrl_jax: `make run` trains on simphone; `make test` runs the tests. Both set themselves up.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
ARGS ?=

.PHONY: setup run test test-fast lint bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the package with its test tools

run: $(STAMP)  ## the main job on simphone (see README)
	$(BIN)/python -m distrl_jax.launch --accel=cpu --config=smoke $(ARGS)

test: $(STAMP)  ## the whole test suite (slow end-to-end tests included)
	JAX_PLATFORMS=cpu $(BIN)/python -m pytest -q $(ARGS)

test-fast: $(STAMP)  ## without the tests marked slow
	JAX_PLATFORMS=cpu $(BIN)/python -m pytest -q -m "not slow" $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks configs
	$(BIN)/ruff format --check src tests benchmarks configs

bench: $(STAMP)  ## every benchmark, full size (see benchmarks/README.md)
	@for b in benchmarks/*.py; do echo "== $$b"; JAX_PLATFORMS=cpu $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
