# distrl_jax: `make run` trains on simphone; `make test` runs the tests. Both set themselves up.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
ARGS ?=

.PHONY: setup run test test-all test-fast lint bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev,export,notebooks]"
	$(BIN)/python -m pip install -q --no-deps "jax2onnx>=0.17.1,<0.18"
	@# Debian's adb client, for the test that lists and shells the test ADB server's devices
	@# (skipped with its reason when it cannot be installed: not root, or no apt).
	-@command -v adb >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& (apt-get install -y -q adb >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 \
		&& apt-get install -y -q adb >/dev/null 2>&1)); } || true
	@touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the package with its test tools

run: $(STAMP)  ## the main job on simphone (see README)
	$(BIN)/python -m distrl_jax.launch --accel=cpu --config=smoke $(ARGS)

test: $(STAMP)  ## the test suite, slow end-to-end tests included (about 15 minutes on 2 cores)
	JAX_PLATFORMS=cpu $(BIN)/python -m pytest -q -m "not extended" --durations=15 $(ARGS)

test-all: $(STAMP)  ## everything, with the extended checks (benchmark smoke runs, repeated kills, the full flood, quantized export)
	JAX_PLATFORMS=cpu $(BIN)/python -m pytest -q $(ARGS)

test-fast: $(STAMP)  ## without the tests marked slow
	JAX_PLATFORMS=cpu $(BIN)/python -m pytest -q -m "not slow" $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks configs examples actors notebooks/*.py
	$(BIN)/ruff format --check src tests benchmarks configs examples actors notebooks/*.py

bench: $(STAMP)  ## every benchmark, full size (see benchmarks/README.md)
	@for b in benchmarks/*.py; do echo "== $$b"; JAX_PLATFORMS=cpu $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
