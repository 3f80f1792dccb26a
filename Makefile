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
gpu-check: ## every GPU goal in one run (<= 8 min, one H100): docs/gpu_check.json + docs/benchmarks.md section
	$(PYTHON) scripts/gpu_check.py --data-dir $(DATA) --json docs/gpu_check.json --doc docs/benchmarks.md

SETTING ?= memorise_cifar10
TRIALS ?= 8
COARSE ?= 5
tune: ## tune every method, same budget: make tune SETTING=memorise_cifar10 TRIALS=8 COARSE=5 (writes conf/tuned/)
	OMP_NUM_THREADS=1 $(PYTHON) scripts/tune.py --setting $(SETTING) --trials $(TRIALS) --coarse $(COARSE) --data-dir $(DATA)

results: ## regenerate docs/results.md (the CPU-scale benchmark, 3 seeds, defaults and tuned rows)
	OMP_NUM_THREADS=1 $(PYTHON) scripts/results_table.py --data-dir $(DATA)

PROTOCOL ?= salun_cifar10
paper: ## a paper's protocol, sweep + report (GPU): make paper PROTOCOL=salun_cifar10|imu_cifar10|gradtau_cifar10|mnemonic_cifar10|mnemonic_mnist
	$(PYTHON) scripts/paper.py $(PROTOCOL) paths.data_dir=$(DATA)

report: ## aggregate results: make report RUNS=outputs/multirun/<sweep>
	unlearn-report $(or $(RUNS),outputs/multirun)

format: ## format the code
	$(PYTHON) -m ruff format unlearnbench tests scripts

lint: ## lint and check the formatting (as CI does)
	$(PYTHON) -m ruff check unlearnbench tests scripts
	$(PYTHON) -m ruff format --check unlearnbench tests scripts

.PHONY: help install test smoke bench gpu-check tune results paper report format lint
