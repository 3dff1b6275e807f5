# The two commands of the quick start, and the checks CI runs. Each installs what it needs first
# (ops/setup.sh: system packages through apt, uv with pip); uv runs as `python3 -m uv`, so
# nothing depends on where pip put its binary or on PATH.
.PHONY: demo test lint stack-up stack-down setup-demo setup-test

PYTHON ?= python3
UV := $(PYTHON) -m uv

setup-demo:
	@PYTHON=$(PYTHON) sh ops/setup.sh demo

setup-test:
	@PYTHON=$(PYTHON) sh ops/setup.sh test

.venv/.synced: pyproject.toml uv.lock
	@PYTHON=$(PYTHON) sh ops/setup.sh uv
	$(UV) sync --frozen
	@touch $@

## demo: start the local stack and run the pipeline on it (DEMO_ARGS="--duration 60" stops it)
demo: setup-demo .venv/.synced
	$(UV) run optibid demo $(DEMO_ARGS)

## test: the whole suite (starts the local stack for the integration tests when it is down), on
## TimescaleDB where the server has it; then the projection, rebuild and API tests again on the
## plain-partition path (a database of the same server without the extension)
PARTITION_TESTS := tests/integration/test_projections.py tests/integration/test_api.py
test: setup-test .venv/.synced
	$(UV) run pytest
	OPTIBID_TEST_READ_MODELS=partitions $(UV) run pytest $(PARTITION_TESTS)

## lint: ruff (lint + format) and mypy --strict over the whole tree
lint: .venv/.synced
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy .

stack-up: .venv/.synced
	$(UV) run optibid stack up

stack-down: .venv/.synced
	$(UV) run optibid stack down
