.DEFAULT_GOAL := help
PYTHON ?= python

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-10s %s\n", $$1, $$2}'

install: ## install the project with its dev tools (editable)
	$(PYTHON) -m pip install -e ".[dev]"

test: ## run the test suite (the README's test command)
	$(PYTHON) -m pytest -q -n 2

smoke: ## tiny end-to-end run on digits
	unlearn experiment=digits_smoke trainer=debug

bench: ## speed benchmarks (prints side-by-side ratios)
	$(PYTHON) scripts/benchmark.py all

DATA ?= ../shared/data
gpu-check: ## every GPU goal in one run (<= 8 min, one H100): outputs/gpu_check.json + docs/benchmarks.md section
	$(PYTHON) scripts/gpu_check.py --data-dir $(DATA) --json outputs/gpu_check.json --doc docs/benchmarks.md

report: ## aggregate results: make report RUNS=outputs/multirun/<sweep>
	unlearn-report $(or $(RUNS),outputs/multirun)

format: ## format the code
	$(PYTHON) -m ruff format unlearnbench tests scripts

lint: ## lint the code
	$(PYTHON) -m ruff check unlearnbench tests scripts

.PHONY: help install test smoke bench gpu-check report format lint
