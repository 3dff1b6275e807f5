# The two commands of the quick start, and the checks CI runs.
.PHONY: demo test lint stack-up stack-down bench

UV ?= $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")

.venv/.synced: pyproject.toml uv.lock
	@command -v $(UV) >/dev/null 2>&1 || python3 -m pip install --quiet --user uv
	$(UV) sync --frozen
	@touch $@

## demo: start the local stack and run the pipeline on it
demo: .venv/.synced
	$(UV) run optibid demo

## test: the whole suite (starts the local stack for the integration tests when it is down)
test: .venv/.synced
	$(UV) run pytest

## lint: ruff (lint + format) and mypy --strict over the whole tree
lint: .venv/.synced
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy .

stack-up: .venv/.synced
	$(UV) run optibid stack up

stack-down: .venv/.synced
	$(UV) run optibid stack down
