# Cascade — the two commands are `make demo` and `make test`; both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PLOOMBER_STATS_ENABLED := false
export PLOOMBER_VERSION_CHECK_DISABLED := true
# Bytecode is compiled at setup; let Python cache what changes later too (many short-lived processes).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup demo test check lock clean bench fuzz docs up-core down stack-up stack-down soak

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	$(BIN)/python -m compileall -q workbench
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	$(BIN)/python -m workbench.lab install-config >/dev/null
	touch $(STAMP)

lock:
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

demo: setup
	$(BIN)/cascade demo

test: setup
	$(BIN)/python -m pytest

# the Hypothesis fuzz suite with a longer budget than `make test` (counts in build/fuzz-counts.json)
fuzz: setup
	mkdir -p build
	CASCADE_FUZZ_EXAMPLES=$${CASCADE_FUZZ_EXAMPLES:-100} CASCADE_FUZZ_REPORT=build/fuzz-counts.json \
		$(BIN)/python -m pytest tests/ingest/test_fuzz.py -q -s

check: setup
	$(BIN)/ruff check workbench tests bench
	$(BIN)/ruff format --check workbench tests bench
	$(BIN)/mypy workbench
	$(BIN)/python -m pytest

docs: setup
	$(BIN)/cascade docs build

bench: setup
	$(BIN)/python bench/run_all.py

# The stack profile with Docker (stack/compose.yaml); without Docker use `make stack-up` (native).
# `cascade stack secrets` generates the credentials as the native launcher does and prints its env file.
up-core: setup
	docker compose -f stack/compose.yaml --env-file .env --env-file "$$($(BIN)/cascade stack secrets)" up -d --wait

down: setup
	docker compose -f stack/compose.yaml --env-file .env --env-file "$$($(BIN)/cascade stack secrets)" down

stack-up: setup
	$(BIN)/cascade stack up

stack-down: setup
	$(BIN)/cascade stack down

# the full soak test: >= 50 scheduled runs through a simulated week (`make test` runs the short form)
soak: setup
	CASCADE_SOAK=full $(BIN)/python -m pytest tests/pipeline/test_soak.py -q -s

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
